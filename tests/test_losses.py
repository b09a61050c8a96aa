"""Losses: each TAMI term is zero on its ideal case and positive otherwise; gradients reach the adapter only."""

from __future__ import annotations

import pytest
import torch
from toy_backbone import ToyBackbone, one_thread, small_config  # noqa: F401

from tami.adapter import TAMI
from tami.adapter.frame_aux import FrameAux
from tami.errors import InputError
from tami.losses import build_loss, charbonnier, l_i3a, l_im, l_sm, l_sm_centred, ssim_loss, temporal_difference


def _frames(t=3, ideal=True, seed=0):
    """Hand-built per-frame FrameAux on a 4x5 grid with batch 2."""
    g = torch.Generator().manual_seed(seed)
    shared = torch.randn(2, 6, 4, 5, generator=g)
    frames = []
    for i in range(t):
        feat = shared if ideal else torch.randn(2, 6, 4, 5, generator=g)
        illu = torch.rand(2, 1, 4, 5, generator=g)
        grey_lq = torch.rand(2, 1, 4, 5, generator=g) * 0.3
        grey_hq = torch.rand(2, 1, 4, 5, generator=g)
        frames.append(
            FrameAux(
                f_ls=feat,
                key=feat,
                f_hs=feat if ideal else torch.randn(2, 6, 4, 5, generator=g),
                prior=illu if (ideal or i == 0) else torch.rand(2, 1, 4, 5, generator=g),
                illu=illu,
                memory_frames=i,
                lq_small=grey_lq.expand(2, 3, 4, 5),
                hq_small=grey_hq.expand(2, 3, 4, 5),
                illu_lq=grey_lq if ideal else torch.rand(2, 1, 4, 5, generator=g),
                illu_hq=grey_hq,
            )
        )
    return frames


@pytest.mark.parametrize("term", [l_sm, l_sm_centred, l_i3a, l_im])
def test_tami_terms_zero_on_ideal_case_and_positive_otherwise(term):
    assert term(_frames(ideal=True)).abs().item() < 1e-10
    assert term(_frames(ideal=False)).item() > 1e-4


def _sm_frames(f_ls, f_hs=None, t=2):
    zero = torch.zeros(())
    return [FrameAux(f_ls=f_ls, key=zero, prior=zero, memory_frames=0, f_hs=f_ls if f_hs is None else f_hs)
            for _ in range(t)]


def test_l_sm_is_zero_on_collapsed_identical_tokens_and_l_sm_centred_is_not():
    # Every cell of both maps holds the same vector: all cosines are 1, symmetric with a unit diagonal.
    token = torch.tensor([0.3, -1.2, 2.0, 0.5], dtype=torch.float64)
    collapsed = token.view(1, 4, 1, 1).expand(2, 4, 3, 5).contiguous()
    assert l_sm(_sm_frames(collapsed, collapsed * 2.5)).item() == pytest.approx(0.0, abs=1e-12)
    # Centred, every token is zero: S = 0, symmetric, but MSE(diag S, 1) = 1 on each written frame; / T frames.
    assert l_sm_centred(_sm_frames(collapsed, collapsed * 2.5)).item() == pytest.approx(1.0, abs=1e-12)
    assert l_sm_centred(_sm_frames(collapsed, t=3)[:1] + [FrameAux(collapsed, collapsed, collapsed, 0)] * 2).item() == pytest.approx(1 / 3)


def test_l_sm_and_centred_are_zero_when_f_ls_equals_f_hs_with_varied_tokens():
    varied = torch.randn(2, 6, 4, 5, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    for term in (l_sm, l_sm_centred):
        assert term(_sm_frames(varied, t=1)).item() == pytest.approx(0.0, abs=1e-12)
        assert term(_sm_frames(varied, t=3)).item() == pytest.approx(0.0, abs=1e-12)  # same map every frame
    # Hand case on a 1x2 grid: tokens (1, 0) and (0, 1) centre to (0.5, -0.5) and (-0.5, 0.5): cosine -1 between
    # them, 1 on the diagonal, so with F_hs swapped for (0, 1), (1, 0) the centred S is [[-1, 1], [1, -1]]:
    # symmetric, diagonal off by 2 -> MSE(diag, 1) = 4.
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]]).view(1, 2, 1, 2)
    swapped = a.flip(-1)
    assert l_sm_centred(_sm_frames(a, swapped, t=1)).item() == pytest.approx(4.0)
    assert l_sm(_sm_frames(a, swapped, t=1)).item() == pytest.approx(1.0)  # S = [[0, 1], [1, 0]]: diag off by 1


def test_i3a_ignores_frames_without_memory():
    frames = _frames(t=1, ideal=False)
    frames[0].prior = torch.zeros_like(frames[0].prior)
    assert l_i3a(frames).item() == 0.0


def test_reconstruction_terms():
    x = torch.rand(2, 3, 3, 16, 16)
    y = (x + 0.1).clamp(0, 1)
    assert charbonnier(x, x).item() == pytest.approx(1e-3)
    assert ssim_loss(x.flatten(0, 1), x.flatten(0, 1)).abs().item() < 1e-6
    loss = build_loss({"charbonnier": 1.0, "l1": 2.0, "mse": 1.0, "ssim": 0.5, "l_sm": 1.0})
    total, logs = loss(y, x)
    assert set(logs) == {"loss/charbonnier", "loss/l1", "loss/mse", "loss/ssim", "loss/total"}
    expected = logs["loss/charbonnier"] + 2 * logs["loss/l1"] + logs["loss/mse"] + 0.5 * logs["loss/ssim"]
    torch.testing.assert_close(total.detach(), expected)
    assert logs["loss/ssim"] > 0
    image_total, _ = loss(y[:, 0], x[:, 0])
    assert image_total > 0


def test_temporal_difference_ignores_a_constant_error_and_scores_a_changing_one():
    gt = torch.rand(2, 4, 3, 8, 8)
    constant = gt + 0.2 * torch.rand(2, 1, 3, 8, 8)  # the same error on every frame
    assert temporal_difference(constant, gt).item() == pytest.approx(1e-3)  # charbonnier's floor eps
    flicker = gt + torch.tensor([0.0, 0.1, 0.0, 0.1]).view(1, 4, 1, 1, 1)
    # every consecutive difference is off by exactly 0.1: sqrt(0.1^2 + eps^2)
    assert temporal_difference(flicker, gt).item() == pytest.approx((0.1**2 + 1e-6) ** 0.5, rel=1e-5)
    loss = build_loss({"tdiff": 1.0})
    assert loss(flicker, gt)[1]["loss/tdiff"] > 0.09
    assert "loss/tdiff" not in loss(flicker[:, 0], gt[:, 0])[1]  # images have no time axis: skipped
    with pytest.raises(InputError, match="tdiff expects clips"):
        temporal_difference(gt[:, 0], gt[:, 0])


def test_build_loss_rejects_unknown_terms():
    with pytest.raises(InputError, match="l_foo"):
        build_loss({"l_foo": 1.0})
    with pytest.raises(InputError, match="non-negative"):
        build_loss({"l1": -1.0})


@pytest.mark.parametrize("term", ["l_im", "l_sm", "l_sm_centred", "l_i3a"])
def test_tami_terms_train_the_adapter_only(term):
    model = TAMI(ToyBackbone(), small_config()).train()
    torch.nn.init.normal_(model.igfe.gamma, std=0.1)
    lq = torch.rand(2, 3, 3, 16, 16) * 0.3
    out, aux = model.forward_clip(lq, loss_terms=True)
    total, logs = build_loss({term: 1.0})(out, lq * 3, aux)
    assert logs[f"loss/{term}"] > 0
    total.backward()
    assert all(p.grad is None for p in model.backbone.parameters())
    grads = [p.grad for p in model.adapter_parameters() if p.grad is not None]
    assert grads and any(g.abs().sum() > 0 for g in grads)
    if term == "l_im":
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.icmem.illu_encoder.parameters())


def test_inference_computes_no_loss_tensors_and_l_im_says_how_to_get_them():
    model = TAMI(ToyBackbone(), small_config()).eval()
    lq = torch.rand(1, 2, 3, 16, 16) * 0.3
    with torch.no_grad():
        out, aux = model.forward_clip(lq)
        _, _, step_aux = model.step(lq[:, 0], model.init_state(1))
    for frame in (*aux, step_aux):
        assert frame.written and frame.illu is not None
        assert frame.lq_small is None and frame.illu_lq is None and frame.hq_small is None and frame.illu_hq is None
    with pytest.raises(InputError, match="loss_terms=True"):
        build_loss({"l_im": 1.0})(out, lq, aux)
    with torch.no_grad():
        _, full = model.forward_clip(lq, loss_terms=True)
    assert all(f.illu_lq is not None and f.illu_hq is not None for f in full)
    torch.testing.assert_close(full[1].prior, aux[1].prior, rtol=0, atol=0)  # same inference either way
