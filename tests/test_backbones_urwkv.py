"""URWKV specifics: the official fixture with its saved LAN layers, the injection feature, the split, the WKV
operator against a slow float64 transcription of the kernel's closed form, and determinism of the LAN projections.
"""

from __future__ import annotations

import math

import pytest
import torch
from conftest import load_fixture_tensors, load_meta

import tami.backbones as bb
from tami.backbones import urwkv_wkv
from tami.backbones.urwkv import LLENet, lan_layers, load_lan_layers, q_shift
from tami.backbones.urwkv_wkv import bi_wkv
from tami.errors import CheckpointError, InputError

SMALL = {"dim": 8}


def reference_wkv(w: torch.Tensor, u: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """The kernel's result as the fixture note states it, token by token in float64 (slow, tiny T only)."""
    b_size, t, c_size = k.shape
    length = -(-t // 32)
    y = torch.zeros(b_size, t, c_size, dtype=torch.float64)
    for b in range(b_size):
        for c in range(c_size):
            wc, uc = float(w[c]), float(u[c])
            kk, vv = k[b, :, c].tolist(), v[b, :, c].tolist()
            for i in range(t):
                s = (i // length) * length
                num = den = 0.0
                o2 = -1e38  # kernel offset of the left sums: largest log-weight accumulated so far
                for j in range(t):
                    if j == i:
                        continue
                    if j < s:
                        lw = kk[j] - wc * (i - j)
                    elif j < i:
                        lw = kk[j] - wc * (i - j - 1)
                    else:
                        lw = kk[j] - wc * (j - i)
                    num, den = num + math.exp(lw) * vv[j], den + math.exp(lw)
                    if j < i:
                        o2 = max(o2, lw)
                for j in range(s + 1, i + 1):
                    r = math.exp(kk[j] + wc * (i - j)) * (1 - math.exp(wc))
                    num, den = num + r * vv[j], den + r
                o1 = max(kk[j] - wc * (j - s) for j in range(s, t))  # kernel offset of the right sums at s ...
                for step in range(s, i):  # ... and its updates while moving to i
                    o1 = max(o1 + wc, kk[step + 1] + wc)
                bonus = math.exp(uc + kk[i])
                eps = 1e-6 * math.exp(max(o1, uc + kk[i], o2))
                y[b, i, c] = (num + bonus * vv[i]) / (den + bonus + eps)
    return y


def plain_bidirectional_wkv(w, u, k, v):
    """The same weights without chunk effects or eps: e^(k_j - w|i-j|) for j != i, e^(u + k_i) for j = i."""
    t = k.shape[1]
    dist = (torch.arange(t)[:, None] - torch.arange(t)[None, :]).abs().double()
    logits = k[:, None, :, :] - w * dist[None, :, :, None]  # (B, i, j, C)
    diag = torch.eye(t, dtype=torch.bool)[None, :, :, None]
    weights = torch.where(diag, (u + k)[:, None, :, :].expand_as(logits), logits).exp()
    return (weights * v[:, None]).sum(2) / weights.sum(2)


def _random_wkv_inputs(t: int, b: int = 2, c: int = 3, seed: int = 0, decay: float = 3.0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    k = torch.randn(b, t, c, generator=g, dtype=torch.float64) * 2
    v = torch.randn(b, t, c, generator=g, dtype=torch.float64)
    w = torch.randn(c, generator=g, dtype=torch.float64) * decay / t
    u = torch.randn(c, generator=g, dtype=torch.float64) / t
    return [x.to(dtype) for x in (w, u, k, v)]


# -------------------------------------------------------------------------------------------------- fixture


@pytest.fixture(scope="module")
def released():
    meta = load_meta("urwkv", "released")
    state = load_fixture_tensors("urwkv", "released", "state_dict")
    io = load_fixture_tensors("urwkv", "released", "io")
    saved_lan = load_fixture_tensors("urwkv", "released", "lan_random_layers")
    inter = load_fixture_tensors("urwkv", "released", "intermediates")
    model = bb.create("urwkv", **meta["constructor_kwargs"])
    bb.load_state_dict(model, state)
    default_lan = lan_layers(model)
    load_lan_layers(model, saved_lan)
    model.eval()
    with torch.no_grad():
        enc = model.encode(io["input"])
        out = model.decode(enc)
    return {"meta": meta, "model": model, "io": io, "inter": inter, "enc": enc, "out": out,
            "saved_lan": saved_lan, "default_lan": default_lan}


def test_released_keys_parameters_and_output(released):
    meta, model = released["meta"], released["model"]
    state = model.state_dict()
    assert list(state) == list(meta["keys"])
    assert all(list(state[k].shape) == s for k, s in meta["keys"].items())
    assert bb.count_parameters(model) == meta["num_parameters"] == 2_819_507
    assert model.inject_channels == 128 and model.inject_stride == 8 and model.multiple_of == 8
    err = (released["out"] - released["io"]["output"]).abs().max().item()
    assert err < 1e-4, f"output differs from the official fixture by {err}"


def test_injection_feature_is_the_last_encoder_output(released):
    key = released["enc"].key
    expected = released["inter"]["encode_list.3"]
    assert key.shape == expected.shape == (1, 128, 16, 24)
    assert (key - expected).abs().max().item() < 1e-5


def test_default_lan_layers_are_the_official_draw_after_manual_seed_0(released):
    """lan_seed=0 reproduces, bit for bit, the layers the official forward drew right after torch.manual_seed(0)."""
    saved, default = released["saved_lan"], released["default_lan"]
    assert len(released["meta"]["lan_random_layers"]["calls"]) * 9 == len(saved) == len(default)
    assert all(torch.equal(default[name], saved[name]) for name in saved)


def test_load_lan_layers_rejects_missing_and_misshaped():
    model = bb.create("urwkv", **SMALL)
    layers = lan_layers(model)
    missing = dict(layers)
    missing.pop("call03.linear_k3.bias")
    with pytest.raises(CheckpointError, match="call03.linear_k3.bias"):
        load_lan_layers(model, missing)
    layers["call00.conv_k5.weight"] = torch.zeros(1, 1, 2, 4)
    with pytest.raises(CheckpointError, match="shape"):
        load_lan_layers(model, layers)


# ------------------------------------------------------------------------------------------ contract / split


@pytest.fixture(scope="module")
def small_model():
    model = bb.create("urwkv", **SMALL)
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)
    return model.eval()


def test_split_is_exact_and_adapt_acts_on_the_decoder_input(small_model):
    x = torch.rand(2, 3, 16, 24, generator=torch.Generator().manual_seed(1))
    seen = []
    handle = small_model.decoder.register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    with torch.no_grad():
        full = small_model(x)
        enc = small_model.encode(x)
        split = small_model.decode(enc)
        shifted = small_model.decode(enc, adapt=lambda z: z + 0.1)
    handle.remove()
    assert torch.equal(full, split)
    assert enc.key.shape == (2, 32, 2, 3)
    assert seen[1] is enc.key  # the key is exactly what the decoder consumes
    assert (shifted - split).abs().max() > 1e-4


def test_output_does_not_depend_on_the_global_rng(small_model):
    """Unlike the official LAN, which draws new layers from the global RNG on every call."""
    x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.manual_seed(1)
        a = small_model(x)
        torch.manual_seed(2)
        b = small_model(x)
    assert torch.equal(a, b)


def test_lan_seed_selects_the_projections_and_is_saved(small_model, tmp_path):
    other = bb.create("urwkv", dim=8, lan_seed=5)
    other.load_state_dict(small_model.state_dict())
    x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        assert (other.eval()(x) - small_model(x)).abs().max() > 1e-4
        path = bb.save(other, tmp_path / "urwkv.safetensors")
        again = bb.load(path).eval()
        assert again.config["lan_seed"] == 5
        assert torch.equal(again(x), other(x))


def test_registry_presets_and_input_checks():
    assert "urwkv.released" in bb.preset_names("urwkv.*")
    assert {"urwkv.lol_v1", "urwkv.lol_v2_real", "urwkv.lol_v2_syn", "urwkv.sdsd_indoor", "urwkv.smid"} <= set(
        bb.preset_names("urwkv.*"))
    model = bb.create("urwkv", **SMALL)
    with torch.no_grad():
        assert model.encode(torch.rand(1, 3, 20, 24)).key.shape[-2:] == (3, 3)  # padded to 24x24 inside
    with pytest.raises(InputError, match="divisible by 4"):
        LLENet(dim=6)


def test_q_shift_moves_each_channel_quarter_one_pixel():
    x = torch.arange(2 * 3 * 4 * 9, dtype=torch.float32).view(2, 12, 9)  # (B, H*W, C) with H, W = 3, 4
    out = q_shift(x, (3, 4)).view(2, 3, 4, 9)
    img = x.view(2, 3, 4, 9)
    assert torch.equal(out[:, :, 1:, 0:2], img[:, :, :-1, 0:2]) and not out[:, :, 0, 0:2].any()
    assert torch.equal(out[:, :, :-1, 2:4], img[:, :, 1:, 2:4]) and not out[:, :, -1, 2:4].any()
    assert torch.equal(out[:, 1:, :, 4:6], img[:, :-1, :, 4:6]) and not out[:, 0, :, 4:6].any()
    assert torch.equal(out[:, :-1, :, 6:8], img[:, 1:, :, 6:8]) and not out[:, -1, :, 6:8].any()
    assert torch.equal(out[..., 8], img[..., 8])


# --------------------------------------------------------------------------------------------- WKV operator


@pytest.mark.parametrize("t", [1, 7, 33, 70, 100])
def test_wkv_matches_the_kernel_formula(t):
    """Chunks of ceil(T/32): T=7 and 33 give one-token chunks, 70 chunks of 3 with a 1-token tail, 100 chunks of 4."""
    w, u, k, v = _random_wkv_inputs(t)
    expected = reference_wkv(w, u, k, v)
    assert (bi_wkv(w, u, k, v) - expected).abs().max().item() < 1e-10
    got32 = bi_wkv(*(x.float() for x in (w, u, k, v)))
    assert got32.dtype == torch.float32
    assert (got32.double() - expected).abs().max().item() < 1e-6


def test_wkv_chunking_and_eps_matter():
    """The reference is sensitive to what the operator must reproduce: chunk boundaries and the eps term."""
    w, u, k, v = _random_wkv_inputs(70, decay=20.0)
    assert (reference_wkv(w, u, k, v) - plain_bidirectional_wkv(w, u, k, v)).abs().max() > 1e-3
    w, u, k, v = _random_wkv_inputs(1)
    u = torch.full_like(u, -12.0)  # the bonus weight e^(u+k) is then comparable to 1e-6 e^k
    expected = reference_wkv(w, u, k, v)
    assert (expected - v).abs().max() > 0.1
    # eps dominates the denominator here, so the rounding of the kernel's running subtraction shows (~1e-10)
    assert (bi_wkv(w, u, k, v) - expected).abs().max().item() < 1e-8


def test_wkv_channel_slices_and_half_precision_inputs(monkeypatch):
    w, u, k, v = _random_wkv_inputs(300, b=2, c=5, dtype=torch.float32)
    whole = bi_wkv(w, u, k, v)
    monkeypatch.setattr(urwkv_wkv, "_SLICE_ELEMENTS", 2 * 300 * 2)  # two channels per slice
    assert torch.equal(bi_wkv(w, u, k, v), whole)
    channels_first = urwkv_wkv.bi_wkv_channels_first(w, u, k.transpose(1, 2), v.transpose(1, 2))
    assert torch.equal(channels_first.transpose(1, 2), whole)
    half = bi_wkv(w, u, k.bfloat16(), v.bfloat16())
    assert half.dtype == torch.bfloat16 and (half.float() - whole).abs().max() < 0.1


def test_wkv_gradients():
    w, u, k, v = _random_wkv_inputs(9, b=1, c=2, seed=1)
    inputs = [x.clone().requires_grad_(True) for x in (w, u, k, v)]
    assert torch.autograd.gradcheck(bi_wkv, inputs, eps=1e-6, atol=1e-6, rtol=1e-4)
