"""Every registered backbone against the official fixtures, and the split contract every backbone must keep.

Parametrized over the fixture folders (``<arch>/<variant>``) and over ``tami.backbones.names()``, so backbones added
later are covered without editing this file; variants of architectures that are not registered yet are skipped.
Retinexformer specifics (operation orders, autograd path, bfloat16) are at the end.
"""

from __future__ import annotations

import math

import pytest
import torch
from conftest import FIXTURES, fixture_variants, load_fixture_tensors, load_meta

import tami.backbones as tb
from tami.backbones.checkpoints import detect_arch
from tami.errors import InputError

# Files of a fixture folder the generic output test knows how to use; anything else needs the backbone's own test.
GENERIC_FILES = {"meta.json", "state_dict.safetensors", "io.safetensors", "intermediates.safetensors"}


def _fixture_archs() -> list[str]:
    return sorted(p.name for p in FIXTURES.iterdir() if p.is_dir()) if FIXTURES.is_dir() else []


def _all_variants() -> list[tuple[str, str]]:
    return [(a, v) for a in _fixture_archs() for v in fixture_variants(a)]


def _io_variants() -> list[tuple[str, str]]:
    return [(a, v) for a, v in _all_variants() if (FIXTURES / a / v / "io.safetensors").is_file()]


def _kwargs(meta: dict) -> dict:
    return {**meta["constructor_kwargs"], **meta.get("inference_overrides", {})}


def _require(arch: str) -> None:
    if arch not in tb.names():
        pytest.skip(f"backbone {arch!r} is not registered (registered: {', '.join(tb.names())})")


def _official(arch: str, variant: str) -> tuple[tb.Backbone, dict[str, torch.Tensor]]:
    """The backbone of a fixture variant with its official weights loaded strictly, and the fixture tensors."""
    meta = load_meta(arch, variant)
    model = tb.create(arch, **_kwargs(meta)).eval()
    tb.load_state_dict(model, load_fixture_tensors(arch, variant, "state_dict"))
    return model, load_fixture_tensors(arch, variant, "io")


def _smallest_io_variant(arch: str) -> str:
    variants = [v for a, v in _io_variants() if a == arch]
    if not variants:
        pytest.skip(f"no fixture with tensors for {arch}")
    return min(variants, key=lambda v: load_meta(arch, v)["num_parameters"])


@pytest.fixture(scope="module")
def contract_case(request) -> tuple[tb.Backbone, torch.Tensor, torch.Tensor]:
    """``(model, x, forward(x))`` on the smallest fixture variant of an arch, computed once per arch."""
    arch = request.param
    _require(arch)
    model, io = _official(arch, _smallest_io_variant(arch))
    # A 32x48 crop (rounded up to multiple_of) keeps the six forwards per arch cheap.
    size = -(-32 // model.multiple_of) * model.multiple_of
    x = io["input"][..., :size, : size * 3 // 2].contiguous()
    with torch.no_grad():
        return model, x, model(x)


@pytest.mark.parametrize(("arch", "variant"), _all_variants(), ids=[f"{a}/{v}" for a, v in _all_variants()])
def test_keys_shapes_and_parameter_count_match_official(arch, variant):
    _require(arch)
    meta = load_meta(arch, variant)
    with torch.device("meta"):
        model = tb.create(arch, **_kwargs(meta))
    state = model.state_dict()
    assert list(state) == list(meta["keys"]), "state_dict keys or their order differ from the official ones"
    assert {k: list(v.shape) for k, v in state.items()} == meta["keys"]
    assert tb.count_parameters(model) == meta["num_parameters"]
    assert detect_arch(meta["keys"]) == arch, "detect_keys must recognise the official key set as this arch"


@pytest.mark.parametrize(("arch", "variant"), _io_variants(), ids=[f"{a}/{v}" for a, v in _io_variants()])
def test_output_matches_official(arch, variant):
    _require(arch)
    extra = sorted({p.name for p in (FIXTURES / arch / variant).iterdir()} - GENERIC_FILES)
    if extra:
        pytest.skip(f"{arch}/{variant} needs backbone-specific fixture files ({', '.join(extra)}): own test file")
    model, io = _official(arch, variant)
    with torch.no_grad():
        out = model(io["input"])
    assert out.shape == io["output"].shape
    assert (out - io["output"]).abs().max().item() <= 1e-4


@pytest.mark.parametrize("arch", _fixture_archs())
def test_released_preset_and_defaults_have_the_official_parameter_count(arch):
    _require(arch)
    meta = load_meta(arch, "released")
    with torch.device("meta"):
        assert tb.count_parameters(tb.create(arch)) == meta["num_parameters"]
        assert tb.count_parameters(tb.create(f"{arch}.released")) == meta["num_parameters"]


@pytest.mark.parametrize("contract_case", tb.names(), indirect=True)
def test_split_reproduces_forward_exactly_and_applies_adapt(contract_case):
    model, x, expected = contract_case
    with torch.no_grad():
        enc = model.encode(x)
        assert torch.equal(model.decode(enc), expected)
        assert torch.equal(model.decode(model.encode(x), adapt=lambda z: z), expected)
        shifted = model.decode(model.encode(x), adapt=lambda z: z + 0.5)
    assert not torch.allclose(shifted, expected), "adapt must change the output"
    h, w = x.shape[-2:]
    s = model.inject_stride
    assert enc.key.shape == (1, model.inject_channels, h // s, w // s)


@pytest.mark.parametrize("contract_case", tb.names(), indirect=True)
def test_batch_float64_and_channels_last_agree_with_float32(contract_case):
    model, x, expected = contract_case
    other = (x * 0.5).flip(-1)
    with torch.no_grad():
        batch = model(torch.cat([x, other]))
        single_other = model(other)
        cl = model(x.contiguous(memory_format=torch.channels_last))
        double = model.to(torch.float64)(x.double())
    model.float()
    assert batch.shape[0] == 2
    assert (batch[0] - expected).abs().max().item() <= 1e-5
    assert (batch[1] - single_other).abs().max().item() <= 1e-5
    assert (cl - expected).abs().max().item() <= 1e-5
    assert double.dtype == torch.float64
    assert (double - expected.double()).abs().max().item() <= 1e-4


@pytest.mark.parametrize("arch", tb.names())
def test_size_not_divisible_raises_input_error(arch):
    model = tb.create(arch, **_small_kwargs(arch)).eval()
    m = model.multiple_of
    if m == 1:
        pytest.skip(f"{arch} accepts every size")
    with torch.no_grad(), pytest.raises(InputError, match=str(m)):
        model(torch.rand(1, 3, 4 * m, 4 * m + 1))
    with pytest.raises(InputError):
        model.encode(torch.rand(1, 4, 4 * m, 4 * m))


def _small_kwargs(arch: str) -> dict:
    """Configuration of the smallest fixture variant (cheap to build), or the defaults."""
    variants = fixture_variants(arch)
    if not variants:
        return {}
    return _kwargs(min((load_meta(arch, v) for v in variants), key=lambda m: m["num_parameters"]))


# ---------------------------------------------------------------------------------------------- Retinexformer


@pytest.fixture(scope="module")
def retinex_variant() -> tuple[tb.Backbone, dict[str, torch.Tensor]]:
    return _official("retinexformer", "variant")


@pytest.mark.parametrize("variant", fixture_variants("retinexformer"))
def test_retinexformer_reference_order_is_the_official_order(variant):
    model, io = _official("retinexformer", variant)
    model.fast = False
    with torch.no_grad():
        out = model(io["input"])
    assert (out - io["output"]).abs().max().item() <= 1e-5


def test_retinexformer_autograd_path_matches_inference_and_backpropagates(retinex_variant):
    model, io = retinex_variant
    x = io["input"][..., :64, :64].contiguous()
    with torch.no_grad():
        expected = model(x)
    z_seen = []

    def adapt(z: torch.Tensor) -> torch.Tensor:
        z = z.detach().requires_grad_(True)
        z_seen.append(z)
        return z

    out = model.decode(model.encode(x), adapt=adapt)
    assert (out - expected).abs().max().item() <= 1e-5
    out.square().mean().backward()
    assert z_seen[0].grad is not None and z_seen[0].grad.abs().sum() > 0


def test_retinexformer_split_point_and_skips(retinex_variant):
    model, io = retinex_variant
    x = io["input"]
    n_feat = model.config["n_feat"]
    with torch.no_grad():
        enc = model.encode(x)
        lit, encoder_feats, illu = enc.skips
        # The key is the output of the last encoder level's down-sampling of the last stage.
        stage = model.body[-1]
        assert torch.allclose(enc.key, stage.denoiser.encoder_layers[-1][1](encoder_feats[-1]), atol=1e-6)
        first = model.body[0](x) if model.stage > 1 else x
        illu_fea, illu_map = stage.estimator(first)
    assert model.inject_channels == 4 * n_feat and model.inject_stride == 4 and model.multiple_of == 4
    assert torch.allclose(illu[0], illu_fea, atol=1e-6)
    assert torch.allclose(lit, first * illu_map + first, atol=1e-6)
    assert [t.shape[1] for t in illu] == [n_feat, 2 * n_feat, 4 * n_feat]


def test_retinexformer_bf16_path_is_close_and_float32(retinex_variant):
    model, io = retinex_variant
    with torch.no_grad():
        out = model.forward_bf16(io["input"])
    assert out.dtype == torch.float32
    err = (out - io["output"]).abs().max().item()
    assert 0 < err < 0.05, f"bfloat16 error {err} outside the documented range"


def test_retinexformer_presets_cover_every_released_checkpoint():
    expected = {"released", "sdsd_indoor", "sdsd_outdoor", "lol_v1", "lol_v2_real", "lol_v2_synthetic", "sid",
                "smid", "fivek", "ntire"}
    presets = {p.split(".", 1)[1] for p in tb.preset_names("retinexformer.*")}
    assert expected <= presets
    with torch.device("meta"):
        for tag in expected:
            model = tb.create(f"retinexformer.{tag}")
            assert tb.count_parameters(model) == 1_605_701
            assert tb.PRESETS.get(f"retinexformer.{tag}").description


def test_retinexformer_rejects_bad_configuration():
    with pytest.raises(InputError, match="divisible by 4"):
        tb.create("retinexformer", n_feat=31)
    with pytest.raises(TypeError, match="n_feat"):
        tb.create("retinexformer", width=40)
    assert math.isclose(tb.create("retinexformer", n_feat=8, num_blocks=[1, 1, 1]).inject_channels, 32)
