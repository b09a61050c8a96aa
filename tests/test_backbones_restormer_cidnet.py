"""Restormer and HVI-CIDNet specifics the generic fixture test cannot know.

Split positions checked against the modules' own outputs, the copy-free attention against the normalise-first
formula, the HVI transform against ``colorsys``, the absence of host synchronisation (meta-device forward), the
inference switches of HVI-CIDNet, and cross-architecture checkpoint errors.
"""

from __future__ import annotations

import colorsys
import math

import pytest
import torch
import torch.nn.functional as F
from conftest import fixture_variants, load_fixture_tensors, load_meta

import tami.backbones as bb
from tami.backbones.checkpoints import detect_arch
from tami.backbones.hvi_cidnet import RGB_HVI
from tami.backbones.restormer import Attention, LayerNorm
from tami.errors import CheckpointError, InputError

SMALL_RESTORMER = {"dim": 8, "num_blocks": [1, 1, 1, 1], "num_refinement_blocks": 1}
SMALL_CIDNET = {"channels": [8, 8, 16, 32]}


def _perturb(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Move every parameter away from its initial value (norm weights 1, temperatures 1, ...)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.05)
    return model.eval()


def _capture(module: torch.nn.Module, *, inputs: bool = False) -> tuple[list, torch.utils.hooks.RemovableHandle]:
    seen: list = []
    if inputs:
        handle = module.register_forward_pre_hook(lambda m, args: seen.append(args))
    else:
        handle = module.register_forward_hook(lambda m, args, out: seen.append(out))
    return seen, handle


# ----------------------------------------------------------------------------------------------------- Restormer


@pytest.mark.parametrize("kind", ["WithBias", "BiasFree"])
def test_restormer_layer_norm_formulas(kind):
    norm = LayerNorm(6, kind)
    with torch.no_grad():
        norm.body.weight.copy_(torch.linspace(0.5, 1.5, 6))
        if norm.body.bias is not None:
            norm.body.bias.copy_(torch.linspace(-0.2, 0.2, 6))
    x = torch.randn(2, 6, 5, 7, dtype=torch.float64) + 3.0
    mean = x.mean(1, keepdim=True)
    var = x.var(1, keepdim=True, unbiased=False)
    w = norm.body.weight.double()[:, None, None]
    if kind == "WithBias":
        expected = (x - mean) / torch.sqrt(var + 1e-5) * w + norm.body.bias.double()[:, None, None]
    else:  # the mean is not removed from x, only inside the variance
        expected = x / torch.sqrt(var + 1e-5) * w
    torch.testing.assert_close(norm.double()(x), expected, rtol=1e-12, atol=1e-12)
    assert [k for k in norm.state_dict()] == (["body.weight", "body.bias"] if kind == "WithBias" else ["body.weight"])


@pytest.mark.parametrize("channels_last", [False, True])
def test_restormer_attention_equals_official_order(channels_last):
    attn = Attention(12, 3, bias=True).double()
    with torch.no_grad():
        for p in attn.parameters():
            p.copy_(torch.randn(p.shape, dtype=torch.float64) * 0.3 + (1.0 if p.dim() == 3 else 0.0))
        # an all-zero q channel: F.normalize's clamp must be reproduced (cosine 0, no NaN)
        attn.qkv.weight[0] = 0.0
        attn.qkv.bias[0] = 0.0
        attn.qkv_dwconv.bias[0] = 0.0
    x = torch.randn(2, 12, 6, 10, dtype=torch.float64)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    # the official operation order: normalise q and k over the pixels, attend, then project
    b, c, h, w = x.shape
    q, k, v = (t.reshape(b, 3, 4, h * w) for t in attn.qkv_dwconv(attn.qkv(x)).chunk(3, dim=1))
    q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
    weights = ((q @ k.transpose(-2, -1)) * attn.temperature).softmax(dim=-1)
    expected = attn.project_out((weights @ v).reshape(b, c, h, w))
    with torch.no_grad():
        torch.testing.assert_close(attn(x), expected, rtol=1e-12, atol=1e-12)


def test_restormer_key_is_latent_input_and_adapt_sees_latent_output():
    net = _perturb(bb.create("restormer", **SMALL_RESTORMER))
    x = torch.rand(2, 3, 16, 24)
    down_out, h1 = _capture(net.down3_4)
    latent_out, h2 = _capture(net.latent)
    with torch.no_grad():
        reference = net(x)
    h1.remove()
    h2.remove()
    seen = []
    with torch.no_grad():
        enc = net.encode(x)
        out = net.decode(enc, lambda z: seen.append(z) or z)
    assert torch.equal(enc.key, down_out[0])  # memory key: inp_enc_level4, before the latent blocks
    assert enc.key.shape == (2, net.inject_channels, 2, 3) and net.inject_channels == 64
    assert len(seen) == 1 and torch.equal(seen[0], latent_out[0])  # injection: after the latent blocks
    assert not torch.equal(seen[0], enc.key)
    assert torch.equal(out, reference)
    with torch.no_grad():
        moved = net.decode(enc, lambda z: z + 0.5)
    assert (moved - reference).abs().max() > 1e-3


def test_restormer_single_and_dual_pixel_channel_presets():
    grey = _perturb(bb.create("restormer.gaussian_gray_denoising", **SMALL_RESTORMER))
    x = torch.rand(1, 1, 16, 16)
    with torch.no_grad():
        assert grey(x).shape == (1, 1, 16, 16)
    with pytest.raises(InputError, match=r"\(B, 1, H, W\)"):
        grey(torch.rand(1, 3, 16, 16))

    dual = _perturb(bb.create("restormer.dual_pixel_defocus_deblurring", **SMALL_RESTORMER))
    assert "skip_conv.weight" in dual.state_dict()
    x = torch.rand(1, 6, 16, 16)
    with torch.no_grad():
        enc = dual.encode(x)
        out = dual.decode(enc)
        # no global residual: output = output_conv(refined + skip_conv(embedding)), checked by zeroing the skip
        dual.skip_conv.weight.zero_()
        without_skip = dual(x)
    assert out.shape == (1, 3, 16, 16)
    assert not torch.allclose(out, without_skip)


def test_restormer_takes_sizes_not_divisible_by_8():
    net = bb.create("restormer", **SMALL_RESTORMER)
    with torch.no_grad():
        assert net(torch.rand(1, 3, 20, 16)).shape == (1, 3, 20, 16)  # padded to 24x16 inside, cropped back


# ---------------------------------------------------------------------------------------------------- HVI-CIDNet


def test_hvi_transform_matches_colorsys_and_round_trips():
    trans = RGB_HVI()
    with torch.no_grad():
        trans.density_k.fill_(0.35)
    g = torch.Generator().manual_seed(1)
    pixels = torch.rand(40, 3, generator=g, dtype=torch.float64) * 0.9 + 0.05
    pixels[0] = torch.tensor([0.4, 0.4, 0.4])  # grey: hue 0
    pixels[1] = torch.tensor([0.7, 0.7, 0.2])  # red/green tie: red wins
    img = pixels.T.reshape(1, 3, 5, 8)
    hvi = trans.double().HVIT(img)
    k = 0.35
    for n, (r, gr, b) in enumerate(pixels.tolist()):
        h, s, v = colorsys.rgb_to_hsv(r, gr, b)
        scale = (math.sin(v * math.pi / 2) + 1e-8) ** k * s
        expected = [scale * math.cos(2 * math.pi * h), scale * math.sin(2 * math.pi * h), v]
        got = hvi[0, :, n // 8, n % 8].tolist()
        assert got == pytest.approx(expected, abs=1e-7), (n, r, gr, b)
    # sqrt(H^2 + V^2 + 1e-8) leaves grey pixels a saturation of 1e-4, hence the tolerance
    torch.testing.assert_close(trans.PHVIT(hvi), img, rtol=0, atol=1e-4)


@pytest.mark.parametrize(("arch", "kwargs"), [("hvi_cidnet", SMALL_CIDNET), ("restormer", SMALL_RESTORMER)])
def test_forward_runs_on_the_meta_device(arch, kwargs):
    # On the meta device every data-dependent step (.item(), boolean-mask indexing) raises: passing proves the
    # forward never waits for the accelerator.
    with torch.device("meta"):
        net = bb.create(arch, **kwargs)
        out = net(torch.empty(2, 3, 16, 24))
    assert out.shape == (2, 3, 16, 24) and out.device.type == "meta"


def test_hvi_cidnet_forward_has_no_host_sync(monkeypatch):

    def no_sync(*args, **kwargs):
        raise AssertionError("host synchronisation inside forward")

    net = _perturb(bb.create("hvi_cidnet", **SMALL_CIDNET, gated=True))
    monkeypatch.setattr(torch.Tensor, "item", no_sync)
    monkeypatch.setattr(torch.Tensor, "tolist", no_sync)
    with torch.no_grad():
        assert torch.isfinite(net(torch.rand(1, 3, 16, 16))).all()


def test_hvi_cidnet_split_on_hv_branch_only():
    net = _perturb(bb.create("hvi_cidnet", **SMALL_CIDNET))
    x = torch.rand(1, 3, 16, 24)
    hv_lca3, h1 = _capture(net.HV_LCA3)
    i_lca3, h2 = _capture(net.I_LCA3)
    with torch.no_grad():
        reference = net(x)
    h1.remove()
    h2.remove()
    with torch.no_grad():
        enc = net.encode(x)
    assert torch.equal(enc.key, hv_lca3[0]) and enc.key.shape == (1, net.inject_channels, 2, 3)

    # both consumers layer-normalise the feature over channels, so the change must vary across channels
    ramp = torch.linspace(-0.5, 0.5, net.inject_channels)[:, None, None]
    hv_in, h3 = _capture(net.HV_LCA4, inputs=True)
    i_in, h4 = _capture(net.I_LCA4, inputs=True)
    with torch.no_grad():
        identity = net.decode(enc, lambda z: z)
        shifted = net.decode(enc, lambda z: z + ramp)
    h3.remove()
    h4.remove()
    assert torch.equal(identity, reference)
    assert (shifted - reference).abs().max() > 1e-3
    # the adapted HV feature replaces HV_LCA3's output in both of its uses; the I-branch feature is the untouched
    # output of I_LCA3
    torch.testing.assert_close(hv_in[1][0], hv_lca3[0] + ramp, rtol=0, atol=0)
    torch.testing.assert_close(i_in[1][1], hv_lca3[0] + ramp, rtol=0, atol=0)
    assert torch.equal(i_in[1][0], i_lca3[0]) and torch.equal(hv_in[1][1], i_lca3[0])


def test_hvi_cidnet_inference_switches():
    base = _perturb(bb.create("hvi_cidnet", **SMALL_CIDNET))
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        plain = base(x)
        base.trans.gated2, base.trans.alpha = True, 0.5
        torch.testing.assert_close(base(x), plain * 0.5, rtol=0, atol=0)
        base.trans.gated2, base.trans.gated, base.trans.alpha_s = False, True, 1.0
        torch.testing.assert_close(base(x), plain, rtol=0, atol=0)
        base.trans.alpha_s = 1.3
        assert (base(x) - plain).abs().max() > 1e-4

    with torch.device("meta"):
        preset = bb.create("hvi_cidnet.lol_v2_real")
        gated = bb.create("hvi_cidnet.lol_v1")
    assert (preset.trans.gated2, preset.trans.alpha, preset.config["alpha"]) == (True, 0.84, 0.84)
    assert (gated.trans.gated, gated.trans.gated2) == (True, False)


def test_hvi_cidnet_lol_v1_preset_reproduces_gated_fixture():
    meta = load_meta("hvi_cidnet", "released_gated")
    assert meta["inference_overrides"] == {"gated": True}
    state = load_fixture_tensors("hvi_cidnet", "released_gated", "state_dict")
    net = bb.load_state_dict(bb.create("hvi_cidnet.lol_v1"), state).eval()
    io = load_fixture_tensors("hvi_cidnet", "released_gated", "io")
    with torch.no_grad():
        assert (net(io["input"]) - io["output"]).abs().max() <= 1e-4


def test_hvi_cidnet_switches_survive_save_and_load(tmp_path):
    net = _perturb(bb.create("hvi_cidnet", **SMALL_CIDNET, gated2=True, alpha=0.8))
    path = bb.save(net, tmp_path / "cid.safetensors")
    back = bb.load(path)
    assert (back.trans.gated2, back.trans.alpha, back.config["channels"]) == (True, 0.8, [8, 8, 16, 32])
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(back.eval()(x), net(x))


# ------------------------------------------------------------------------------------ cross-architecture loading


def _state_dict(name: str, **kwargs) -> dict[str, torch.Tensor]:
    return bb.create(name, **kwargs).state_dict()


def test_detect_keys_identify_each_architecture():
    assert detect_arch(_state_dict("restormer", **SMALL_RESTORMER)) == "restormer"
    assert detect_arch(_state_dict("restormer", **SMALL_RESTORMER, LayerNorm_type="BiasFree")) == "restormer"
    assert detect_arch(_state_dict("hvi_cidnet", **SMALL_CIDNET, norm=True)) == "hvi_cidnet"
    others = [(arch, v) for arch in ("llformer", "retinexformer", "snr_aware", "urwkv") for v in fixture_variants(arch)]
    assert len(others) == 6
    for arch, variant in others:  # LLFormer shares many key names with Restormer
        assert detect_arch(load_meta(arch, variant)["keys"]) not in ("restormer", "hvi_cidnet"), (arch, variant)


@pytest.mark.parametrize(
    ("source", "target", "named"),
    [
        ("restormer", "retinexformer", "Restormer"),
        ("restormer", "hvi_cidnet", "Restormer"),
        ("hvi_cidnet", "restormer", "CIDNet"),
    ],
)
def test_checkpoint_of_another_backbone_is_named(tmp_path, source, target, named):
    kwargs = SMALL_RESTORMER if source == "restormer" else SMALL_CIDNET
    state = _state_dict(source, **kwargs)
    with torch.device("meta"):  # the error comes from the key sets; no need for real weights
        model = bb.create(target)
    with pytest.raises(CheckpointError, match=named) as err:
        bb.load_state_dict(model, state)
    assert repr(source) in str(err.value)
    path = tmp_path / "official.pth"
    torch.save({"params": state}, path)
    with pytest.raises(CheckpointError, match=named):
        bb.load(path, target)
