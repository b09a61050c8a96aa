"""TAMI model: identity at init, clip == steps, training moves the adapter only, sizes, batches, streaming."""

from __future__ import annotations

import copy
import os

import pytest
import torch
from conftest import fixture_variants, load_meta
from toy_backbone import ToyBackbone, one_thread, small_config  # noqa: F401

from tami import backbones
from tami.adapter import TAMI, TAMIConfig
from tami.adapter.presets import ADAPTER_PRESETS
from tami.backbones import crop_to, pad_to_multiple
from tami.errors import InputError
from tami.losses import build_loss


def _small_backbone(arch: str) -> backbones.Backbone:
    """The smallest fixture configuration of ``arch`` (or its defaults when it has no fixtures)."""
    best = None
    for variant in fixture_variants(arch):
        meta = load_meta(arch, variant)
        if best is None or meta["num_parameters"] < best["num_parameters"]:
            best = meta
    kwargs = {} if best is None else dict(best["constructor_kwargs"])
    return backbones.create(arch, **kwargs).eval()


def _model_for(arch: str) -> tuple[TAMI, int]:
    if arch == "toy":
        return TAMI(ToyBackbone(), small_config()), 30
    backbone = _small_backbone(arch)
    model = TAMI.from_preset(backbone) if arch in ADAPTER_PRESETS else TAMI(backbone, small_config())
    m = backbone.multiple_of
    return model, m * max(1, -(-48 // m))


def _backbone_only(model: TAMI, x: torch.Tensor) -> torch.Tensor:
    padded, size = pad_to_multiple(x, model.backbone.multiple_of)
    return crop_to(model.backbone(padded), size)


ARCHS = ["toy", *backbones.names()]


@pytest.mark.parametrize("arch", ARCHS)
def test_fresh_adapter_reproduces_backbone_exactly(arch):
    model, size = _model_for(arch)
    lq = torch.rand(1, 4, 3, size, size + 2 * model.backbone.multiple_of)
    with torch.no_grad():
        out, aux = model.forward_clip(lq)
        for t in range(4):
            assert torch.equal(out[:, t], _backbone_only(model, lq[:, t])), f"frame {t} differs from the backbone"
    assert aux[3].memory_frames == min(3, model.config.memory_frames)


@pytest.mark.parametrize("arch", ARCHS)
def test_forward_clip_equals_stepping_frame_by_frame(arch):
    model, size = _model_for(arch)
    torch.nn.init.normal_(model.igfe.gamma, std=0.5)  # make the adapter matter
    lq = torch.rand(2, 3, 3, size, size)
    with torch.no_grad():
        clip, aux = model.forward_clip(lq)
        assert torch.equal(model(lq)[0], clip)
        state = model.init_state(2)
        for t in range(3):
            out, state, step_aux = model.step(lq[:, t], state)
            torch.testing.assert_close(out, clip[:, t], atol=1e-6, rtol=0)
            torch.testing.assert_close(step_aux.prior, aux[t].prior, atol=1e-6, rtol=0)
        assert not torch.equal(clip[:, 2], _backbone_only(model, lq[:, 2]))


def test_forward_clip_carries_out_a_teacher_mask_like_stepping():
    model = TAMI(ToyBackbone(), small_config())
    torch.nn.init.normal_(model.igfe.gamma, std=0.5)
    lq, gt = torch.rand(2, 4, 3, 32, 32), torch.rand(2, 4, 3, 32, 32)
    mask = torch.tensor([[True, False, True, False], [False, False, True, True]])
    with torch.no_grad():
        clip, aux = model.forward_clip(lq, gt, teacher_mask=mask)
        state = model.init_state(2)
        for t in range(4):
            out, state, step_aux = model.step(lq[:, t], state, gt[:, t], teacher_mask=mask[:, t])
            torch.testing.assert_close(out, clip[:, t], atol=1e-6, rtol=0)
        assert torch.equal(torch.stack([f.teacher for f in aux], 1), mask)
        own, _ = model.forward_clip(lq)
        assert not torch.equal(own[:, 3], clip[:, 3])  # the ground truth written earlier changes later frames


def test_training_moves_adapter_only():
    torch.manual_seed(0)
    model = TAMI(ToyBackbone(), small_config())
    frozen = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    loss_fn = build_loss({"charbonnier": 1.0, "l_im": 1.0, "l_sm": 1.0, "l_i3a": 1.0})
    optimizer = torch.optim.Adam(model.adapter_parameters(), lr=1e-2)
    lq = torch.rand(2, 3, 3, 32, 32) * 0.3
    gt = (lq * 3).clamp(0, 1)
    model.train()
    for _ in range(4):
        optimizer.zero_grad()
        out, aux = model.forward_clip(lq, gt, teacher_mask=torch.tensor([[True, False, True]] * 2),
                                      loss_terms=True)
        loss, _ = loss_fn(out, gt, aux)
        loss.backward()
        optimizer.step()
    assert not model.backbone.training
    no_grad = [
        n
        for n, p in model.named_parameters()
        if not n.startswith("backbone.") and (p.grad is None or not p.grad.abs().sum() > 0)
    ]
    assert not no_grad, f"no gradient reached {no_grad}"
    assert all(p.grad is None and not p.requires_grad for p in model.backbone.parameters())
    for k, v in model.backbone.state_dict().items():
        assert torch.equal(v, frozen[k]), f"backbone tensor {k} changed"
    with torch.no_grad():
        out, _ = model.forward_clip(lq)
        assert (out[:, 1] - model.backbone(lq[:, 1])).abs().max() > 1e-4
    names = {id(p) for p in model.adapter_parameters()}
    assert not any(id(p) in names for p in model.backbone.parameters())


def test_odd_sizes_are_padded_inside_and_cropped_back():
    model = TAMI(ToyBackbone(), small_config(memory_scale=0.5))
    lq = torch.rand(1, 2, 3, 33, 47)
    with torch.no_grad():
        out, aux = model.forward_clip(lq)
        padded, size = pad_to_multiple(lq[:, 0], 4)
        assert out.shape == lq.shape
        assert torch.equal(out[:, 0], crop_to(model.backbone(padded), size))
    assert aux[1].prior.shape[-2:] == model.working_grid(36, 48) == (4, 6)


def test_batch_samples_are_independent():
    model = TAMI(ToyBackbone(), small_config())
    torch.nn.init.normal_(model.igfe.gamma, std=0.5)
    lq = torch.rand(2, 4, 3, 32, 32)
    with torch.no_grad():
        both, _ = model.forward_clip(lq)
        for b in range(2):
            alone, _ = model.forward_clip(lq[b : b + 1])
            torch.testing.assert_close(both[b : b + 1], alone, atol=1e-5, rtol=1e-5)


def test_memory_never_exceeds_k_frames_and_pins_first():
    model = TAMI(ToyBackbone(), small_config(memory_frames=3, pin_first=True))
    state = model.init_state(1)
    frames = torch.rand(7, 1, 3, 16, 16)
    with torch.no_grad():
        for t in range(7):
            _, state, aux = model.step(frames[t], state)
            assert state.memory.ring_frames <= 3 and len(state.memory) <= 4
            assert aux.memory_frames == min(t, 4)
        first_key = model.icmem.key_projector(
            model.icmem.lq_encoder(model.backbone.encode(frames[0]).key)
        ).flatten(2).transpose(1, 2)
    torch.testing.assert_close(state.memory.keys[:, 0], first_key)


def test_non_recurrent_adapter_reaches_earlier_frames_only_through_the_memory():
    frames = torch.rand(3, 1, 3, 16, 16)
    outs = {}
    for recurrent in (True, False):
        torch.manual_seed(0)
        model = TAMI(ToyBackbone(), small_config(recurrent=recurrent)).eval()
        torch.nn.init.normal_(model.igfe.gamma, std=0.5)  # make the adapter matter
        with torch.no_grad():
            state = model.init_state(1)
            for t in range(2):
                _, state, _ = model.step(frames[t], state)
            other = copy.deepcopy(state)
            other.hidden = torch.randn_like(other.hidden)  # a different past in the hidden state alone
            out, _, _ = model.step(frames[2], state)
            scrambled, _, _ = model.step(frames[2], other)
        outs[recurrent] = (out, scrambled)
    assert not torch.allclose(*outs[True])  # the reference carries the hidden state into the next frame
    torch.testing.assert_close(*outs[False], rtol=0, atol=0)


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc to read the resident set size")
def test_long_stream_memory_is_flat():
    # 256 tokens x (8 + 64 + 1) floats = 73 KiB per stored frame: an unbounded memory would add 14 MiB here
    model = TAMI(ToyBackbone(), small_config(memory_frames=3, value_dim=64)).eval()
    state = model.init_state(1)
    frame = torch.rand(1, 3, 64, 64)
    rss, held = [], []
    with torch.no_grad():
        for t in range(200):
            _, state, _ = model.step(frame * (0.5 + 0.5 * (t % 7) / 7), state)
            rss.append(_rss_bytes())
            held.append(state.memory.nbytes())
    full = 3 + 1
    assert len(set(held[full:])) == 1, "memory buffers grew after the memory was full"
    baseline = max(rss[full : full + 20])
    assert max(rss[full + 20 :]) <= baseline + 2 * 2**20, "resident memory grows with the stream length"


def test_encoder_runs_twice_per_frame():
    backbone = ToyBackbone()
    calls = []
    encode = backbone.encode
    backbone.encode = lambda x: (calls.append(tuple(x.shape[-2:])), encode(x))[1]
    model = TAMI(backbone, small_config(memory_scale=0.5))
    with torch.no_grad():
        model.forward_clip(torch.rand(1, 3, 3, 32, 32))
    assert calls == [(32, 32), (16, 16)] * 3  # the input, then the output at the working resolution


def test_eval_stream_keeps_no_graph_across_frames():
    model = TAMI(ToyBackbone(), small_config()).eval()
    state = model.init_state(1)
    for _ in range(3):
        out, state, _ = model.step(torch.rand(1, 3, 16, 16), state)
    assert out.requires_grad  # gradients within a frame still work
    assert not state.memory.keys.requires_grad and not state.hidden.requires_grad


def test_bad_inputs_raise_input_error():
    model = TAMI(ToyBackbone(), small_config())
    with pytest.raises(InputError, match="B, T, 3, H, W"):
        model.forward_clip(torch.rand(2, 3, 16, 16))
    with pytest.raises(InputError, match="needs gt"):
        model.forward_clip(torch.rand(1, 2, 3, 16, 16), teacher_mask=torch.ones(1, 2, dtype=torch.bool))
    with pytest.raises(InputError, match=r"shape \(B, T\) = \(1, 2\)"):
        model.forward_clip(torch.rand(1, 2, 3, 16, 16), torch.rand(1, 2, 3, 16, 16), teacher_mask=torch.ones(2))
    with pytest.raises(InputError, match="made for 1 videos"):
        model.step(torch.rand(2, 3, 16, 16), model.init_state(1))
    state = model.init_state(1)
    with torch.no_grad():
        model.step(torch.rand(1, 3, 16, 16), state)
        with pytest.raises(InputError, match="init_state"):
            model.step(torch.rand(1, 3, 32, 32), state)
    with pytest.raises(InputError, match="igfe_dim"):
        TAMIConfig(igfe_dim=12)


def test_backbone_stays_frozen_in_train_mode():
    model = TAMI(ToyBackbone(), small_config()).train()
    assert model.training and not model.backbone.training
    assert all(not p.requires_grad for p in model.backbone.parameters())
    adapter = [n for n, _ in model.named_parameters() if not n.startswith("backbone.")]
    assert len(model.adapter_parameters()) == len(adapter) > 0


def test_memory_frames_zero_is_the_same_adapter_without_temporal_context():
    memory = TAMI(ToyBackbone(), small_config(memory_frames=2))
    control = TAMI(ToyBackbone(), small_config(memory_frames=0))
    assert sum(p.numel() for p in control.adapter_parameters()) == sum(p.numel() for p in memory.adapter_parameters())
    control.load_state_dict(memory.state_dict())
    with torch.no_grad():  # make the adapter act (gamma 0 would hide any difference)
        for m in (memory, control):
            m.igfe.gamma.fill_(0.5)
    lq = torch.rand(1, 5, 3, 24, 28)
    with torch.no_grad():
        out, aux = control.forward_clip(lq)
        fresh = [memory.step(lq[:, t], memory.init_state(1), write=False)[0] for t in range(5)]
        with_memory, _ = memory.forward_clip(lq)
    for t in range(5):  # every frame of the control equals the memory model run on that frame alone
        assert torch.equal(out[:, t], fresh[t])
        assert aux[t].memory_frames == 0 and aux[t].value is None
    assert not torch.equal(with_memory[:, 3], out[:, 3])  # while the memory model does use its context
    with pytest.raises(InputError, match="memory_frames must be 0"):
        small_config(memory_frames=-1)
