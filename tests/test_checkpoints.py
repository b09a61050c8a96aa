"""Reading official checkpoints safely, tami's own backbone files, and the ``tami convert`` command.

Loading mechanics (wrappers, prefixes, recognition by keys and shapes, strictness, refusing code, errors) need the
official layout, not the official values: those tests run on random tensors under the official keys and shapes of
the vendored manifests (``tests/fixtures/backbones``), so a clone without ``../shared`` runs them. Only the test
that compares a converted file's output with the official output needs the fixture tensors.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from conftest import load_fixture_tensors, load_meta, official_layout
from safetensors.torch import save_file

import tami.backbones as tb
from tami.backbones.checkpoints import read_checkpoint
from tami.cli.main import main
from tami.errors import CheckpointError

VARIANT = "variant"  # small Retinexformer fixture (n_feat 16, stage 2): no preset matches it


@pytest.fixture(scope="module")
def released() -> dict[str, torch.Tensor]:
    return official_layout("retinexformer", "released", seed=1)


@pytest.fixture(scope="module")
def small() -> tuple[dict, dict[str, torch.Tensor]]:
    return load_meta("retinexformer", VARIANT)["constructor_kwargs"], official_layout("retinexformer", VARIANT, seed=2)


def test_the_official_layout_is_the_models_and_not_its_initialisation(released, small):
    """The random states stand in for official files: same keys and shapes as the model, other values."""
    for model, state in ((tb.create("retinexformer"), released), (tb.create("retinexformer", **small[0]), small[1])):
        own = model.state_dict()
        assert {k: v.shape for k, v in own.items()} == {k: v.shape for k, v in state.items()}
        assert not _same_weights(model, state)


def _same_weights(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> bool:
    own = model.state_dict()
    return own.keys() == state.keys() and all(torch.equal(own[k], state[k]) for k in own)


WRAPPERS = {
    "plain": lambda sd: sd,
    "params_ema": lambda sd: {"params_ema": sd, "params": {k: v * 0 for k, v in sd.items()}},
    "params": lambda sd: {"params": sd, "iter": 5},
    "state_dict": lambda sd: {"state_dict": sd, "epoch": 3},
    "model": lambda sd: {"model": sd},
    "module_prefix": lambda sd: {f"module.{k}": v for k, v in sd.items()},
    "nested_module_prefix": lambda sd: {"state_dict": {f"module.{k}": v for k, v in sd.items()}},
}


@pytest.mark.parametrize("wrapper", list(WRAPPERS))
def test_every_torch_wrapper_loads(tmp_path, small, wrapper):
    kwargs, state = small
    path = tmp_path / "ckpt.pth"
    torch.save(WRAPPERS[wrapper](state), path)
    model = tb.load(path, "retinexformer", **kwargs)
    assert model.arch == "retinexformer"
    assert _same_weights(model, state), "params_ema must win over params; prefixes must be stripped"


@pytest.mark.parametrize("prefix", ["", "module."])
def test_safetensors_loads(tmp_path, small, prefix):
    kwargs, state = small
    path = tmp_path / "ckpt.safetensors"
    save_file({prefix + k: v.contiguous() for k, v in state.items()}, str(path))
    assert _same_weights(tb.load(path, "retinexformer", **kwargs), state)


def test_official_file_is_recognised_by_keys_and_shapes(tmp_path, released):
    path = tmp_path / "RetinexFormer_SDSD_indoor.pth"
    torch.save({"params": released}, path)
    model = tb.load(path)
    assert model.arch == "retinexformer"
    assert model.config == tb.registry.resolve("retinexformer.released")[1]
    assert _same_weights(model, released)


def test_unknown_configuration_asks_for_it(tmp_path, small):
    kwargs, state = small
    path = tmp_path / "custom.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match="match none of its presets"):
        tb.load(path)
    assert tb.load(path, **kwargs).config["n_feat"] == kwargs["n_feat"]


def test_convert_then_load_needs_no_hints(tmp_path, released):
    src, out = tmp_path / "official.pth", tmp_path / "converted.safetensors"
    torch.save({"params_ema": released}, src)
    assert main(["-q", "convert", str(src), str(out), "--backbone", "retinexformer"]) == 0
    _, metadata = read_checkpoint(out)
    assert metadata["arch"] == "retinexformer"
    model = tb.load(out)
    assert model.config["n_feat"] == 40 and model.config["num_blocks"] == [1, 2, 2]
    assert _same_weights(model, released)


def test_a_converted_official_file_gives_the_official_output(tmp_path):
    """Needs the official tensors: the released weights, converted, reproduce the official forward."""
    official = load_fixture_tensors("retinexformer", "released", "state_dict")
    src, out = tmp_path / "official.pth", tmp_path / "converted.safetensors"
    torch.save({"params_ema": official}, src)
    assert main(["-q", "convert", str(src), str(out), "--backbone", "retinexformer"]) == 0
    model = tb.load(out)
    io = load_fixture_tensors("retinexformer", "released", "io")
    with torch.no_grad():
        assert (model.eval()(io["input"]) - io["output"]).abs().max().item() <= 1e-4


def test_save_and_load_round_trip_keeps_a_custom_configuration(tmp_path, small):
    kwargs, state = small
    model = tb.load_state_dict(tb.create("retinexformer", **kwargs), state)
    path = tb.save(model, tmp_path / "mine.safetensors")
    again = tb.load(path)
    assert again.config == model.config
    assert _same_weights(again, state)
    assert not list(tmp_path.glob(".*partial*")), "save must not leave temporary files"


class _Payload:
    """Unpickling this runs a shell command (what a malicious checkpoint would do)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("suffix", [".pth", ".pt", ".ckpt"])
def test_pickle_that_runs_code_is_refused(tmp_path, released, suffix):
    marker = tmp_path / "pwned"
    path = tmp_path / f"evil{suffix}"
    torch.save({"params": released, "extra": _Payload(marker)}, path)
    with pytest.raises(CheckpointError, match="refusing to load"):
        tb.load(path)
    assert not marker.exists(), "the payload must never run"


def test_mismatched_checkpoint_lists_every_problem_at_once(released):
    state = dict(released)
    del state["body.0.denoiser.mapping.weight"]
    state["body.0.denoiser.extra.weight"] = torch.zeros(3)
    state["body.0.estimator.conv2.bias"] = torch.zeros(5)
    with pytest.raises(CheckpointError) as info:
        tb.load_state_dict(tb.create("retinexformer"), state)
    msg = str(info.value)
    assert "\n" not in msg
    for part in ("missing: body.0.denoiser.mapping.weight", "unexpected: body.0.denoiser.extra.weight",
                 "mis-shaped: body.0.estimator.conv2.bias: file (5,) vs model (3,)"):
        assert part in msg


def test_wrong_preset_names_the_mismatch(tmp_path, small):
    _, state = small
    path = tmp_path / "small.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match="mis-shaped"):
        tb.load(path, "retinexformer.released")


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (None, "does not exist"),
        (b"not a checkpoint at all", "cannot read"),
        ({"a.b": torch.zeros(2)}, "cannot tell which backbone"),
        ({"epoch": 3}, "no state_dict"),
    ],
    ids=["missing", "garbage", "unknown-keys", "no-tensors"],
)
def test_unreadable_or_unknown_files_raise_checkpoint_error(tmp_path, content, match):
    path = tmp_path / "x.pth"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        torch.save(content, path)
    with pytest.raises(CheckpointError, match=match):
        tb.load(path)


def test_corrupt_safetensors_raises_checkpoint_error(tmp_path):
    path = tmp_path / "x.safetensors"
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{broken json}")
    with pytest.raises(CheckpointError, match="safetensors"):
        tb.load(path)
