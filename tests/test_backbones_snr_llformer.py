"""SNR-Aware and LLFormer specifics the generic fixture test cannot know.

The in-network SNR map against the official map of the fixture, the masked patch attention against the official
masked-softmax formula (the fixture's map masks every patch, so only this test covers partial masks), the axis
attention against its row/column formula on non-square maps, split exactness and where the split sits, official
LLFormer checkpoint files (``{'state_dict': {'module.…'}}``), architecture detection, configuration errors, and a
meta-device forward (no ``.cuda()``, no host synchronisation).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import load_fixture_tensors, load_meta, official_layout

import tami.backbones as bb
from tami.backbones.checkpoints import detect_arch
from tami.backbones import llformer
from tami.backbones.llformer import AxisAttention, softmax_attention
from tami.backbones.snr_aware import snr_map
from tami.errors import InputError

SMALL_LLFORMER = {"dim": 8, "num_blocks": [1, 1, 1, 1], "num_refinement_blocks": 1}


@pytest.fixture(scope="module")
def snr_model() -> bb.Backbone:
    torch.manual_seed(0)
    return bb.create("snr_aware.released").eval()


def _perturb(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Move every parameter away from its initial value (norm weights 1, ``fac``/temperatures 1, coefficients 1)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)
    return model.eval()


# ---------------------------------------------------------------------------------------------------- SNR-Aware


def test_snr_map_equals_official_map():
    io = load_fixture_tensors("snr_aware", "released", "io")
    mask = snr_map(io["input"])
    assert mask.shape == io["mask"].shape == (1, 1, *io["input"].shape[-2:])
    torch.testing.assert_close(mask, io["mask"], rtol=0, atol=1e-6)
    assert snr_map(io["input"].double()).dtype == torch.float64


def test_snr_map_formula_on_a_flat_and_a_noisy_image():
    flat = torch.full((1, 3, 8, 8), 0.25)
    noisy = flat + 0.01 * torch.randn(1, 3, 8, 8)
    # A flat image has no noise anywhere: every pixel reaches the maximum, i.e. 1 after normalisation.
    torch.testing.assert_close(snr_map(flat), torch.ones(1, 1, 8, 8), atol=1e-6, rtol=0)
    batch = snr_map(torch.cat([flat, noisy]))
    torch.testing.assert_close(batch[1:], snr_map(noisy))  # normalised per image, not per batch
    assert batch.min() >= 0 and batch.max() <= 1 and batch[1].std() > 0.01


def test_snr_explicit_mask_equals_computed_and_is_used(snr_model):
    x = torch.rand(1, 3, 32, 32) * 0.3
    with torch.no_grad():
        auto = snr_model(x)
        explicit = snr_model(x, snr_map(x))
        other = snr_model(x, torch.ones(1, 1, 32, 32))
    torch.testing.assert_close(explicit, auto, rtol=0, atol=0)
    assert (other - auto).abs().max() > 1e-3


def _official_patch_transformer(transformer, tokens, patch_snr):
    """The official layers: per-input layer norm, q/√d_k·kᵀ, masked_fill(mask == 0, -1e9), softmax, fc, FFN."""
    mask = patch_snr[:, None, None, :]
    x = tokens
    for layer in transformer.layer_stack:
        att, ffn = layer.slf_attn, layer.pos_ffn
        b, n, _ = x.shape
        y = att.layer_norm(x)
        q, k, v = (w(y).view(b, n, 8, 64).transpose(1, 2) for w in (att.w_qs, att.w_ks, att.w_vs))
        logits = torch.matmul(q / 8.0, k.transpose(2, 3)).masked_fill(mask == 0, -1e9)
        out = torch.matmul(F.softmax(logits, dim=-1), v).transpose(1, 2).reshape(b, n, -1)
        x = att.fc(out) + x
        x = ffn.w_2(F.relu(ffn.w_1(ffn.layer_norm(x)))) + x
    return x


def test_snr_patch_attention_equals_official_masked_softmax(snr_model):
    transformer = snr_model.transformer
    tokens = torch.randn(3, 10, 1024)
    patch_snr = torch.zeros(3, 10)
    patch_snr[0, [1, 4, 7]] = torch.tensor([0.6, 0.9, 0.7])  # some patches take part
    patch_snr[2] = 0.8  # every patch takes part; image 1 has none (uniform weights in the official code)
    with torch.no_grad():
        ours = transformer(tokens, patch_snr)
        official = _official_patch_transformer(transformer, tokens, patch_snr)
        unmasked = transformer(tokens, torch.ones(3, 10))
    torch.testing.assert_close(ours, official, rtol=1e-5, atol=1e-4)
    assert (ours[0] - unmasked[0]).abs().max() > 1e-3  # the partial mask matters
    assert (ours[1] - unmasked[1]).abs().max() > 1e-3  # so does the fully masked image
    torch.testing.assert_close(ours[2], unmasked[2], rtol=1e-5, atol=1e-5)


def test_snr_split_is_exact_at_feature_extraction(snr_model):
    # 24x40: the H/4 map (6x10) is not a multiple of the 4x4 patches, as with LOL's 400x600 frames.
    x = torch.rand(1, 3, 24, 40) * 0.3
    seen = []
    handle = snr_model.feature_extraction.register_forward_hook(lambda m, a, out: seen.append(out))
    try:
        with torch.no_grad():
            full = snr_model(x)
            enc = snr_model.encode(x)
            split = snr_model.decode(enc, lambda z: z)
            shifted = snr_model.decode(enc, lambda z: z + 0.5)
    finally:
        handle.remove()
    assert snr_model.inject_channels == 64 and snr_model.inject_stride == 4
    assert enc.key.shape == (1, 64, 6, 10)
    torch.testing.assert_close(enc.key, seen[-1], rtol=0, atol=0)
    torch.testing.assert_close(split, full, rtol=0, atol=0)
    assert full.shape == x.shape and torch.isfinite(full).all()
    assert (shifted - full).abs().max() > 1e-3


def test_snr_refuses_configurations_and_inputs_the_official_forward_cannot_run(snr_model):
    with pytest.raises(InputError, match="HR_in=True"):
        bb.create("snr_aware", HR_in=False)
    with pytest.raises(InputError, match="nf=64"):
        bb.create("snr_aware", nf=32)
    with torch.no_grad():
        assert snr_model(torch.rand(1, 3, 30, 48)).shape == (1, 3, 30, 48)  # any size: padded inside
    with pytest.raises(InputError, match=r"\(B, 1, H, W\)"):
        snr_model(torch.rand(2, 3, 32, 48), torch.rand(2, 3, 32, 48))


def test_snr_presets_are_the_released_configuration():
    meta = load_meta("snr_aware", "released")
    for name in bb.preset_names("snr_aware.*"):
        config = bb.registry.resolve(name)[1]
        assert {k: config[k] for k in meta["constructor_kwargs"]} == meta["constructor_kwargs"], name
    assert len(bb.preset_names("snr_aware.*")) == 8  # released + LOLv1, LOLv2 x2, SID, SMID, SDSD x2


# ----------------------------------------------------------------------------------------------------- LLFormer


def test_axis_attention_equals_its_formula_on_a_non_square_map():
    torch.manual_seed(1)
    att = _perturb(AxisAttention(6, num_heads=2, bias=True)).double()
    with torch.no_grad():
        att.fac.fill_(3.5)
    x = torch.randn(2, 6, 5, 9, dtype=torch.float64)
    n, c, h, w = x.shape
    q, k, v = att.q3(att.q2(att.q1(x))).chunk(3, dim=1)

    def rows(t):  # (n, heads*dh, h, w) -> (n, heads, h, w, dh): a sequence along w for every row
        return t.reshape(n, 2, 3, h, w).permute(0, 1, 3, 4, 2)

    logits = F.normalize(rows(q), dim=-1) @ F.normalize(rows(k), dim=-1).transpose(-2, -1) * 3.5
    out = (logits.softmax(-1) @ rows(v)).permute(0, 1, 4, 2, 3).reshape(n, c, h, w)
    with torch.no_grad():
        torch.testing.assert_close(att(x), att.fin(out), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("chunk", [60, 1 << 25])
def test_chunked_softmax_attention_equals_the_formula(monkeypatch, chunk):
    monkeypatch.setattr(llformer, "_CHUNK", chunk)  # 7 sequences of length 5: chunks of 2, or one chunk
    q, k, v = (torch.randn(7, 5, 4, dtype=torch.float64) for _ in range(3))
    expected = torch.softmax(q @ k.transpose(-2, -1), dim=-1) @ v
    torch.testing.assert_close(softmax_attention(q, k, v), expected, rtol=1e-10, atol=1e-10)


def test_llformer_split_is_exact_after_the_bottleneck():
    model = _perturb(bb.create("llformer", **SMALL_LLFORMER))
    x = torch.rand(1, 3, 32, 48)
    inputs, outputs = [], []
    h1 = model.decoder_level4.register_forward_pre_hook(lambda m, a: inputs.append(a[0]))
    h2 = model.decoder_level4.register_forward_hook(lambda m, a, out: outputs.append(out))
    received = []
    try:
        with torch.no_grad():
            full = model(x)
            enc = model.encode(x)
            split = model.decode(enc, lambda z: received.append(z) or z)
            shifted = model.decode(enc, lambda z: z + 0.5)
    finally:
        h1.remove()
        h2.remove()
    assert model.inject_channels == 128 and model.inject_stride == 16
    assert enc.key.shape == (1, 128, 2, 3)
    torch.testing.assert_close(enc.key, inputs[-1], rtol=0, atol=0)  # key = the bottleneck's input
    torch.testing.assert_close(received[0], outputs[-1], rtol=0, atol=0)  # adapt sees the bottleneck's output
    torch.testing.assert_close(split, full, rtol=0, atol=0)
    assert (shifted - full).abs().max() > 1e-3


def _official_checkpoint(state_dict: dict, dtype: torch.dtype = torch.float32) -> dict:
    """What the official train.py writes: epoch, DataParallel-prefixed state_dict, optimizer state."""
    return {
        "epoch": 7,
        "state_dict": {f"module.{k}": v.to(dtype) for k, v in state_dict.items()},
        "optimizer": {"state": {}, "param_groups": [{"lr": 1e-4, "betas": (0.9, 0.999), "params": [0, 1]}]},
    }


def test_llformer_official_checkpoint_file_loads_strictly(tmp_path):
    meta = load_meta("llformer", "small")
    state = official_layout("llformer", "small", seed=3)  # the official file's layout; the values do not matter here
    path = tmp_path / "model_bestPSNR.pth"
    torch.save(_official_checkpoint(state), path)
    model = bb.load(path, "llformer", **meta["constructor_kwargs"])
    loaded = model.state_dict()
    assert list(loaded) == list(meta["keys"])
    for key, value in state.items():
        torch.testing.assert_close(loaded[key], value, rtol=0, atol=0)


def test_llformer_released_checkpoint_is_recognised_without_arguments(tmp_path):
    source = bb.create("llformer.released")
    path = tmp_path / "LOL.pth"
    torch.save(_official_checkpoint(source.state_dict(), torch.float16), path)
    model = bb.load(path)
    assert model.arch == "llformer" and list(model.config["num_blocks"]) == [2, 4, 8, 16]
    assert bb.count_parameters(model) == 24_549_014
    key = "decoder_level4.15.ffn.project_out.weight"
    torch.testing.assert_close(model.state_dict()[key], source.state_dict()[key].half().float(), rtol=0, atol=0)


@pytest.mark.parametrize("arch,variant", [("snr_aware", "released"), ("llformer", "released")])
def test_official_key_sets_are_recognised(arch, variant):
    assert detect_arch(load_meta(arch, variant)["keys"]) == arch


def test_llformer_refuses_bad_inputs():
    model = bb.create("llformer", **SMALL_LLFORMER)
    with torch.no_grad():
        assert model(torch.rand(1, 3, 24, 32)).shape == (1, 3, 24, 32)  # any size: padded to 32x32 inside
    with pytest.raises(InputError, match=r"\(B, 3, H, W\)"):
        model(torch.rand(1, 4, 32, 32))
    with pytest.raises(InputError, match="LayerNorm_type"):
        bb.create("llformer", LayerNorm_type="Batch")


@pytest.mark.parametrize("name", ["snr_aware.released", "llformer.released"])
def test_forward_runs_on_the_meta_device(name):
    """No ``.cuda()``, numpy or host round trip anywhere in the forward: it runs on tensors without data."""
    with torch.device("meta"):
        model = bb.create(name)
        out = model(torch.empty(2, 3, 64, 96))
    assert out.shape == (2, 3, 64, 96) and out.device.type == "meta"
