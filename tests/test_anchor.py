"""The brightness anchor (``brightness_anchor``): identity at init, follows the memory when trained, learns to."""

from __future__ import annotations

import math

import pytest
import torch
from toy_backbone import ToyBackbone, one_thread, small_config  # noqa: F401

from tami.adapter import TAMI
from tami.adapter.anchor import EPS, BrightnessAnchor, GlobalBrightnessAnchor, log_level
from tami.adapter.io import load_adapter, save_adapter
from tami.errors import InputError
from tami.frames import LUMA_709


MODES = ("cells", "global", "exposure", "carry")


def _anchored(**overrides) -> TAMI:
    torch.manual_seed(0)
    return TAMI(ToyBackbone(), small_config(illumination="luma", brightness_anchor=True, **overrides))


def _luma(x: torch.Tensor) -> torch.Tensor:
    return (x * x.new_tensor(LUMA_709).view(1, 3, 1, 1)).sum(1).mean()


@pytest.mark.parametrize("mode", MODES)
def test_fresh_anchor_leaves_the_output_unchanged(mode):
    model = _anchored(anchor_mode=mode).eval()
    plain = TAMI(ToyBackbone(), small_config(illumination="luma"))
    plain.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("anchor.")})
    lq = torch.rand(1, 4, 3, 16, 24)
    with torch.no_grad():
        assert torch.equal(model.forward_clip(lq)[0], plain.eval().forward_clip(lq)[0])


def test_anchor_needs_the_luma_prior():
    with pytest.raises(InputError, match="brightness_anchor .* needs illumination 'luma'.*set illumination: luma"):
        small_config(brightness_anchor=True)


def test_anchor_with_unit_weight_on_the_mean_ratio_matches_the_memory_brightness():
    model = _anchored().eval()
    with torch.no_grad():
        model.anchor.to_gain.weight[0, 1, 1, 1] = 1.0  # c = mean(d): a global gain to the memory's brightness
        frame = torch.full((1, 3, 16, 16), 0.2)
        state = model.init_state(1)
        base, _, _ = model.step(frame, state, write=False)  # empty memory: the anchor is not applied
        gain = 1.5
        state = model.init_state(1)
        model.step(frame, state, gt=(gain * base).clamp(0, 1))  # the memory holds a frame `gain` times brighter
        out, _, _ = model.step(frame, state, write=False)
    # the toy backbone's output is near uniform, so d is the same in every cell: out = base * (P + eps) / (L + eps)
    expected = (gain * _luma(base) + EPS) / (_luma(base) + EPS)
    assert _luma(out) / _luma(base) == pytest.approx(float(expected), rel=2e-2)
    assert _luma(out) / _luma(base) > 1.4


@pytest.mark.parametrize("mode", MODES)
def test_anchor_learns_a_clip_gain_only_the_memory_knows(mode):
    """The failure behind seven Tier A rounds: a scalar prior that carries the gain must turn into brightness."""
    model = _anchored(memory_frames=2, anchor_mode=mode)
    for name, p in model.named_parameters():
        p.requires_grad_(name.startswith("anchor."))
    optim = torch.optim.Adam(model.anchor.parameters(), lr=0.01)
    torch.manual_seed(1)

    def smooth_frames(generator: torch.Generator | None = None) -> torch.Tensor:
        # a static clip: the memory's frame differs from the current one by the gain alone, so following it in
        # full is the optimum (with new content per frame the best weight shrinks and SGD wanders around it)
        coarse = torch.rand(1, 3, 4, 4, generator=generator).expand(3, -1, -1, -1)
        return torch.nn.functional.interpolate(coarse, size=(16, 16), mode="bilinear")[None] * 0.5 + 0.1

    def clip(gain: float, lq: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        lq = smooth_frames() if lq is None else lq
        with torch.no_grad():
            plain = torch.stack([model.backbone(lq[:, t]) for t in range(3)], 1)
        return lq, (gain * plain).clamp(0, 1)

    def slope() -> float:
        logs, fixed = [], smooth_frames(torch.Generator().manual_seed(9))
        with torch.no_grad():
            for gain in (0.8, 1.25):
                lq, gt = clip(gain, fixed)
                mask = torch.tensor([[True, False, False]])
                out, _ = model.forward_clip(lq, gt, teacher_mask=mask)
                logs.append(math.log(_luma(out[:, 2]) / _luma(gt[:, 2] / gain)))
        return (logs[1] - logs[0]) / (math.log(1.25) - math.log(0.8))

    assert abs(slope()) < 1e-4  # at init the output ignores the memory
    model.train()
    for _ in range(250):
        gain = float(torch.empty(1).uniform_(math.log(0.8), math.log(1.25)).exp())
        lq, gt = clip(gain)
        mask = torch.tensor([[True, False, False]])
        out, _ = model.forward_clip(lq, gt, teacher_mask=mask)
        loss = (out[:, 1:] - gt[:, 1:]).abs().mean()
        optim.zero_grad()
        loss.backward()
        optim.step()
    model.eval()
    assert slope() > 0.5


def test_global_anchor_with_unit_weight_matches_the_memory_brightness_on_any_frame():
    model = _anchored(anchor_mode="global").eval()
    with torch.no_grad():
        model.anchor.to_gain.weight[0, 0] = 1.0  # c = d: the frame takes the memory's mean brightness
        frame = torch.rand(1, 3, 16, 16)
        state = model.init_state(1)
        base, _, _ = model.step(frame, state, write=False)
        state = model.init_state(1)
        model.step(frame, state, gt=(1.5 * base).clamp(0, 1))
        out, state, aux = model.step(frame, state, write=False)
    expected = (aux.prior.mean() + EPS) / (_luma(base.clamp(0, 1)) + EPS)  # the toy output leaves [0, 1] a little
    assert _luma(out) / _luma(base) == pytest.approx(float(expected), rel=1e-5)
    assert _luma(out) / _luma(base) > 1.2


def test_global_anchor_has_no_contrast_bias_where_the_cell_anchor_has():
    """Round 8's flaw: against a flat prior as bright as the frame, mean(ln P - ln L) > 0 on a contrasty frame."""
    out = torch.zeros(1, 3, 8, 8)
    out[..., ::2, :] = 0.9  # stripes: mean luma 0.475, mean log luma far below log 0.475
    out[..., 1::2, :] = 0.05
    prior = torch.full((1, 1, 8, 8), 0.475 * float(sum(LUMA_709)))  # as bright as the frame on average
    assert abs(float(GlobalBrightnessAnchor().log_ratio(out, prior))) < 1e-6
    assert float(BrightnessAnchor().log_ratio(out, prior).mean()) > 0.3  # 0.73 before the +-ln 4 clamp


def test_anchor_mode_is_checked():
    with pytest.raises(InputError, match="anchor_mode must be one of cells, global, exposure, carry, got 'mean'"):
        small_config(illumination="luma", brightness_anchor=True, anchor_mode="mean")


@pytest.mark.parametrize("mode", MODES)
def test_anchor_weights_round_trip(tmp_path, mode):
    model = _anchored(anchor_mode=mode)
    with torch.no_grad():
        model.anchor.to_gain.weight.normal_()
    path = save_adapter(model, tmp_path / "adapter.safetensors")
    other = load_adapter(_anchored(anchor_mode=mode), path)
    torch.testing.assert_close(other.anchor.to_gain.weight, model.anchor.to_gain.weight, rtol=0, atol=0)


def test_exposure_anchor_carries_the_first_frames_correction_past_the_memory():
    """With unit weight on the memory's correction the ground truth's brightness survives its frame's eviction."""
    model = _anchored(anchor_mode="exposure", memory_frames=2).eval()
    with torch.no_grad():
        model.anchor.to_gain.weight[0, 0] = 1.0  # c = mean correction of the memory's frames
        frame = torch.full((1, 3, 16, 16), 0.3)
        base, _, _ = model.step(frame, model.init_state(1), write=False)
        assert 0 < base.min() and 1.3 * base.max() < 1  # no clipping, so brightness ratios are exact
        state = model.init_state(1)
        model.step(frame, state, gt=1.3 * base)  # frame 0 written from a ground truth 1.3x brighter
        outs = [model.step(frame, state)[0] for _ in range(6)]  # the ring holds 2: frame 0 is gone after frame 2
        correction = float(log_level(1.3 * base) - log_level(base))
    for out in outs:
        torch.testing.assert_close(out, base * math.exp(correction), rtol=1e-5, atol=1e-6)


def _follow_half_of_the_correction(mode: str, gt_gain: float | None, frames: int = 6) -> tuple[list, torch.Tensor]:
    """Outputs of a static clip through a model whose anchor applies half the memory's correction (plus a bias
    when there is no ground truth), and the un-anchored output."""
    model = _anchored(anchor_mode=mode, memory_frames=2).eval()
    with torch.no_grad():
        model.anchor.to_gain.weight[0, 0] = 0.5
        model.anchor.to_gain.bias[0] = 0.0 if gt_gain else 0.1
        frame = torch.full((1, 3, 16, 16), 0.3)
        base, _, _ = model.step(frame, model.init_state(1), write=False)
        state = model.init_state(1)
        first = model.step(frame, state, gt=gt_gain * base if gt_gain else None)[0]
        return [first] + [model.step(frame, state)[0] for _ in range(frames)], base


def test_carry_anchor_keeps_a_shrunk_correction_from_fading():
    """Round 10 wrote back the shrunk gain it applied, so the ground truth's correction faded; carry does not."""
    carried, base = _follow_half_of_the_correction("carry", 1.3)
    faded, _ = _follow_half_of_the_correction("exposure", 1.3)
    correction = float(log_level(1.3 * base) - log_level(base))
    for out in carried[1:]:  # frame 0 is gone from the two-frame ring after frame 2
        torch.testing.assert_close(out, base * math.exp(0.5 * correction), rtol=1e-5, atol=1e-6)
    levels = [float(log_level(out) - log_level(base)) for out in faded[1:]]
    assert levels[-1] < 0.5 * levels[0]  # exposure mode: 0.5 c, then 0.5 of the mean of c and 0.5 c, ...


def test_carry_anchor_without_ground_truth_does_not_drift_on_its_own_gain():
    """With no ground truth the memory's correction stays 0: a biased head moves every frame by its bias once,
    where round 10's write-back would add the bias to the memory and compound it."""
    carried, base = _follow_half_of_the_correction("carry", None)
    drifted, _ = _follow_half_of_the_correction("exposure", None)
    for out in carried[1:]:
        torch.testing.assert_close(out, base * math.exp(0.1), rtol=1e-5, atol=1e-6)
    assert float(log_level(drifted[-1]) - log_level(base)) > 0.15


def test_exposure_memory_numbers_are_evicted_with_their_frame():
    from tami.adapter.memory import KVMemory

    memory = KVMemory(2, pin_first=True)
    for k in range(4):
        memory.write(torch.zeros(1, 2, 2, 2), torch.zeros(1, 3, 2, 2), torch.zeros(1, 1, 2, 2),
                     torch.tensor([[float(k), -float(k)]]))
    assert memory.frame_exposure()[0, :, 0].tolist() == [0.0, 3.0, 2.0]  # pinned frame 0, then the ring
    with pytest.raises(InputError, match="exposure on every write"):
        memory.write(torch.zeros(1, 2, 2, 2), torch.zeros(1, 3, 2, 2), torch.zeros(1, 1, 2, 2))
