"""Every registered backbone: the split contract on random-init models, and equality with the official networks.

* The contract tests build each backbone of ``tami.backbones.names()`` at a tiny configuration (``SMALL``) with
  random weights, so they run in every clone; a backbone registered without an entry in ``SMALL`` fails.
* A fresh interpreter checks the full set of registered names: backbones register as an import side effect of
  ``tami.backbones``, and test modules that import a backbone module directly would hide a missing import.
* The official checks are parametrized over the vendored manifests (``tests/fixtures/backbones``): key names,
  shapes and parameter counts always run; output equality needs the fixture tensors (see ``conftest.py``).

Retinexformer specifics (operation orders, autograd path, bfloat16) are at the end.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import torch
from conftest import (
    FIXTURES,
    MANIFESTS,
    fixture_archs,
    fixture_variants,
    load_fixture_tensors,
    load_meta,
    missing_fixtures,
)

import tami.backbones as tb
from tami.backbones.checkpoints import detect_arch
from tami.errors import InputError, OptionError

# Every registered backbone and the tiny configuration its contract tests use (official argument names).
SMALL: dict[str, dict] = {
    "hvi_cidnet": {"channels": [8, 8, 16, 32]},
    "llformer": {"dim": 8, "num_blocks": [1, 1, 1, 1], "num_refinement_blocks": 1},
    "restormer": {"dim": 8, "num_blocks": [1, 1, 1, 1], "num_refinement_blocks": 1},
    "retinexformer": {"n_feat": 8, "num_blocks": [1, 1, 1]},
    "snr_aware": {},  # the official network only runs at its released width (nf=64)
    "urwkv": {"dim": 8},
}

# Fixture variants whose output needs backbone-specific files (URWKV's saved random LAN layers): tested in the
# backbone's own file, not by the generic output test.
OWN_OUTPUT_TEST = {("urwkv", "released"): "tests/test_backbones_urwkv.py"}
# Files of a fixture folder the generic output test knows how to use.
GENERIC_FILES = {"meta.json", "state_dict.safetensors", "io.safetensors", "intermediates.safetensors"}


def _all_variants() -> list[tuple[str, str]]:
    return [(a, v) for a in fixture_archs() for v in fixture_variants(a)]


def _io_variants() -> list[tuple[str, str]]:
    """Variants with official input/output tensors (their manifest records the input shape)."""
    return [(a, v) for a, v in _all_variants() if "input_shape" in load_meta(a, v)]


def _kwargs(meta: dict) -> dict:
    return {**meta["constructor_kwargs"], **meta.get("inference_overrides", {})}


def _official(arch: str, variant: str) -> tuple[tb.Backbone, dict[str, torch.Tensor]]:
    """The backbone of a fixture variant with its official weights loaded strictly, and the fixture tensors."""
    meta = load_meta(arch, variant)
    state = load_fixture_tensors(arch, variant, "state_dict")
    model = tb.create(arch, **_kwargs(meta)).eval()
    tb.load_state_dict(model, state)
    return model, load_fixture_tensors(arch, variant, "io")


# ------------------------------------------------------------------------------------------------- registration


def test_a_fresh_interpreter_registers_every_backbone():
    """Only ``import tami.backbones``: removing a backbone's import from the package's ``__init__`` fails here."""
    code = "import json, tami.backbones as tb; print(json.dumps([tb.names(), tb.preset_names()]))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    names, presets = json.loads(done.stdout)
    assert names == ["hvi_cidnet", "llformer", "restormer", "retinexformer", "snr_aware", "urwkv"]
    assert all(f"{arch}.released" in presets for arch in names), "every backbone has a 'released' preset"
    assert all(p.split(".", 1)[0] in names for p in presets), "a preset names an unregistered backbone"


def test_every_registered_backbone_has_a_contract_configuration():
    assert sorted(SMALL) == tb.names(), "add a tiny configuration for each new backbone to SMALL"


def test_every_official_manifest_names_a_registered_backbone():
    assert set(fixture_archs()) <= set(tb.names())


# --------------------------------------------------------------------------------- the split contract (random init)


@pytest.fixture(scope="module")
def contract_case(request) -> tuple[tb.Backbone, torch.Tensor, torch.Tensor]:
    """``(model, x, forward(x))``: a random-init backbone at its ``SMALL`` size on a 32x48 input (rounded up to
    ``multiple_of``), computed once per arch."""
    arch = request.param
    torch.manual_seed(0)
    model = tb.create(arch, **SMALL[arch]).eval()
    m = model.multiple_of
    h, w = -(-32 // m) * m, -(-48 // m) * m
    x = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return model, x, model(x)


def _noise_adapt(z: torch.Tensor) -> torch.Tensor:
    """A fixed, channel- and position-varying change (a constant shift can vanish in a following norm layer)."""
    return z + 0.5 * torch.randn(z.shape, generator=torch.Generator().manual_seed(2), dtype=z.dtype)


@pytest.mark.parametrize("contract_case", SMALL, indirect=True)
def test_split_reproduces_forward_exactly_and_applies_adapt(contract_case):
    model, x, expected = contract_case
    with torch.no_grad():
        enc = model.encode(x)
        assert torch.equal(model.decode(enc), expected)
        assert torch.equal(model.decode(model.encode(x), adapt=lambda z: z), expected)
        shifted = model.decode(model.encode(x), adapt=_noise_adapt)
    assert (shifted - expected).abs().max().item() > 1e-3, "adapt must change the output"
    h, w = x.shape[-2:]
    s = model.inject_stride
    assert enc.key.shape == (1, model.inject_channels, h // s, w // s)


@pytest.mark.parametrize("contract_case", SMALL, indirect=True)
def test_declared_attributes_output_and_configuration(contract_case):
    model, x, expected = contract_case
    arch = type(model).arch
    assert tb.BACKBONES.get(arch) is type(model)
    assert model.multiple_of >= 1 and model.multiple_of % model.inject_stride == 0, (
        "every size divisible by multiple_of must give a whole key grid")
    assert expected.shape == x.shape and expected.dtype == torch.float32
    assert torch.isfinite(expected).all()
    assert model.config == tb.registry.resolve(arch, **SMALL[arch])[1], "config records every constructor argument"
    rebuilt = tb.create(arch, **model.config)
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {k: v.shape for k, v in model.state_dict().items()}
    assert detect_arch(model.state_dict()) == arch, "detect_keys must recognise the backbone's own state_dict"


@pytest.mark.parametrize("contract_case", SMALL, indirect=True)
def test_gradient_reaches_the_injection_point(contract_case):
    """The adapter trains through ``decode``: the loss must depend on what ``adapt`` returns."""
    model, x, _ = contract_case
    seen = []

    def adapt(z: torch.Tensor) -> torch.Tensor:
        z = z.detach().requires_grad_(True)
        seen.append(z)
        return z

    model.decode(model.encode(x), adapt=adapt).square().mean().backward()
    model.zero_grad(set_to_none=True)
    assert len(seen) == 1 and seen[0].grad is not None and seen[0].grad.abs().sum() > 0


@pytest.mark.parametrize("contract_case", SMALL, indirect=True)
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


@pytest.mark.parametrize("contract_case", SMALL, indirect=True)
def test_save_and_load_round_trip_is_exact(contract_case, tmp_path):
    model, x, expected = contract_case
    loaded = tb.load(tb.save(model, tmp_path / "backbone.safetensors")).eval()
    assert type(loaded) is type(model) and loaded.config == model.config
    with torch.no_grad():
        assert torch.equal(loaded(x), expected)


@pytest.mark.parametrize("contract_case", SMALL, indirect=True)
def test_any_size_is_padded_inside_and_cropped_back(contract_case):
    model, x, _ = contract_case
    m = model.multiple_of
    odd = torch.rand(1, 3, x.shape[-2] - m + 1, x.shape[-1] - 1)  # neither side a multiple of m (m > 1)
    padded, size = tb.pad_to_multiple(odd, m)
    with torch.no_grad():
        out = model(odd)
        enc = model.encode(odd)
        assert out.shape == odd.shape and enc.size == (odd.shape[-2], odd.shape[-1])
        assert enc.key.shape[-2:] == (padded.shape[-2] // model.inject_stride, padded.shape[-1] // model.inject_stride)
        assert torch.equal(out, tb.crop_to(model(padded), size))
    with pytest.raises(InputError, match="expects a"):
        model.encode(torch.rand(1, 4, 4 * m, 4 * m))
    with pytest.raises(InputError, match="expects a"):
        model.encode(x[0])
    with pytest.raises(InputError, match="floating-point"):
        model.encode((x * 255).to(torch.uint8))


def test_unknown_names_and_options_are_usage_errors():
    with pytest.raises(KeyError, match="did you mean retinexformer"):
        tb.create("retinexformr")
    with pytest.raises(KeyError, match="unknown backbone preset 'retinexformer.nope'"):
        tb.create("retinexformer.nope")
    with pytest.raises(OptionError, match="backbone 'urwkv' has no option 'width'; its options are dim, lan_seed"):
        tb.create("urwkv", width=4)
    assert tb.create_backbone is tb.create and tb.list_backbones() == tb.names()
    assert tb.list_backbone_presets("urwkv.*") == tb.preset_names("urwkv.*")


# ------------------------------------------------------------------------------------------- official networks


def test_vendored_manifests_equal_the_shared_fixtures():
    """``tests/fixtures/backbones`` holds copies of the official manifests: they must not drift from the source."""
    shared = sorted(str(p.relative_to(FIXTURES)) for p in FIXTURES.glob("*/*/meta.json"))
    if not shared:
        missing_fixtures(f"no official fixtures in {FIXTURES}")
    vendored = sorted(str(p.relative_to(MANIFESTS)) for p in MANIFESTS.glob("*/*/meta.json"))
    assert vendored == shared, "copy the manifests again (tests/fixtures/backbones/README.md)"
    for name in shared:
        assert (MANIFESTS / name).read_bytes() == (FIXTURES / name).read_bytes(), f"{name} differs from {FIXTURES}"


@pytest.mark.parametrize(("arch", "variant"), _all_variants(), ids=[f"{a}/{v}" for a, v in _all_variants()])
def test_keys_shapes_and_parameter_count_match_official(arch, variant):
    meta = load_meta(arch, variant)
    with torch.device("meta"):
        model = tb.create(arch, **_kwargs(meta))
    state = model.state_dict()
    assert list(state) == list(meta["keys"]), "state_dict keys or their order differ from the official ones"
    assert {k: list(v.shape) for k, v in state.items()} == meta["keys"]
    assert tb.count_parameters(model) == meta["num_parameters"]
    assert detect_arch(meta["keys"]) == arch, "detect_keys must recognise the official key set as this arch"


_GENERIC_IO = [v for v in _io_variants() if v not in OWN_OUTPUT_TEST]


@pytest.mark.parametrize(("arch", "variant"), _GENERIC_IO, ids=[f"{a}/{v}" for a, v in _GENERIC_IO])
def test_output_matches_official(arch, variant):
    model, io = _official(arch, variant)
    extra = sorted({p.name for p in (FIXTURES / arch / variant).iterdir()} - GENERIC_FILES)
    assert not extra, f"{arch}/{variant} has files this test ignores ({', '.join(extra)}); add it to OWN_OUTPUT_TEST"
    with torch.no_grad():
        out = model(io["input"])
    assert out.shape == io["output"].shape
    assert (out - io["output"]).abs().max().item() <= 1e-4


@pytest.mark.parametrize("arch", fixture_archs())
def test_released_preset_and_defaults_have_the_official_parameter_count(arch):
    meta = load_meta(arch, "released")
    with torch.device("meta"):
        assert tb.count_parameters(tb.create(arch)) == meta["num_parameters"]
        assert tb.count_parameters(tb.create(f"{arch}.released")) == meta["num_parameters"]


# ---------------------------------------------------------------------------------------------- Retinexformer


@pytest.fixture(scope="module")
def retinex_variant() -> tuple[tb.Backbone, dict[str, torch.Tensor]]:
    return _official("retinexformer", "variant")


@pytest.fixture(scope="module")
def retinex_random() -> tuple[tb.Backbone, torch.Tensor]:
    """The small Retinexformer variant, randomly initialised, and a random input of its fixture's shape: for the
    tests of the split's own consistency, which need no official values."""
    meta = load_meta("retinexformer", "variant")
    torch.manual_seed(5)
    return tb.create("retinexformer", **_kwargs(meta)).eval(), torch.rand(meta["input_shape"])


@pytest.mark.parametrize("variant", fixture_variants("retinexformer"))
def test_retinexformer_reference_order_is_the_official_order(variant):
    model, io = _official("retinexformer", variant)
    model.fast = False
    with torch.no_grad():
        out = model(io["input"])
    assert (out - io["output"]).abs().max().item() <= 1e-5


def test_retinexformer_autograd_path_matches_inference_and_backpropagates(retinex_random):
    model, x = retinex_random
    x = x[..., :64, :64].contiguous()
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


def test_retinexformer_split_point_and_skips(retinex_random):
    model, x = retinex_random
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
