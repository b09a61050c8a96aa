"""tami.train.config, schedule and checkpoint files: parsing, overrides, errors, LR shape, atomic writes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from tami.errors import CheckpointError, InputError
from tami.train import checkpoint as ckpt
from tami.train.config import dump_yaml, from_dict, load_config, read_yaml, to_dict
from tami.train.schedule import WarmupCosine, build_scheduler, retarget

REPO = Path(__file__).resolve().parents[1]
MINIMAL = {"data": {"synthetic": {"videos": 2}}}


@pytest.mark.parametrize("path", sorted((REPO / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_parse(path: Path) -> None:
    def placeholders(node, where=""):
        if isinstance(node, dict):
            return [k for key, value in node.items() for k in placeholders(value, f"{where}{key}.")]
        return [where.rstrip(".")] if isinstance(node, str) and "SET_ME" in node else []

    keys = placeholders(read_yaml(path))
    overrides = []
    if keys:
        # Every placeholder is reported at once, by its dotted key.
        with pytest.raises(InputError, match=f"the config still has {len(keys)} placeholders? to fill in") as exc:
            load_config(path)
        assert all(f"{key}=SET_ME" in str(exc.value) for key in keys), str(exc.value)
        overrides = [f"{key}=/data/x" for key in keys]
    config = load_config(path, overrides)
    assert config.stage in ("image", "video")
    # The resolved dump loads back to the same config.
    assert from_dict(read_yaml_text(dump_yaml(config, "x"))) == config


def read_yaml_text(text: str) -> dict:
    import yaml

    return yaml.safe_load(text)


def test_overrides_are_yaml_values_and_reach_nested_and_free_form_keys(tmp_path: Path) -> None:
    cfg_file = tmp_path / "c.yaml"
    cfg_file.write_text("data: {synthetic: {videos: 2}}\nloss: {charbonnier: 1.0}\n")
    config = load_config(cfg_file, ["optim.lr=1e-4", "train.detach_every=null", "data.crop=64",
                                    "model.backbone_options.num_blocks=[1, 1, 1]", "loss.l_sm=0.5",
                                    "val.metrics=[psnr, mabd]", "val.best=mabd"])
    assert config.optim.lr == pytest.approx(1e-4) and isinstance(config.optim.lr, float)
    assert config.train.detach_every is None and config.data.crop == 64
    assert config.model.backbone_options == {"num_blocks": [1, 1, 1]}
    assert config.loss == {"charbonnier": 1.0, "l_sm": 0.5}
    assert config.val.metrics == ("psnr", "mabd")


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["optim.lrr=1"], "did you mean lr"),
        (["optim.lr=abc"], "optim.lr' must be a number"),
        (["train.iterations=1.5"], "must be an integer"),
        (["stage=images"], "must be one of"),
        (["optim.betas=[0.9]"], "list of 2 values"),
        (["train.teacher_forcing=2"], "probability"),
        (["val.data={synthetic: {videos: 1}}", "val.best=ewarp"], "must be one of val.metrics"),
        (["optim"], "KEY=VALUE"),
        (["data.synthetic=null"], "data.root is not set"),
    ],
)
def test_bad_settings_raise_one_clear_input_error(overrides: list[str], message: str) -> None:
    with pytest.raises(InputError, match=message):
        from_dict_with(overrides)


def from_dict_with(overrides: list[str]):
    from tami.train.config import apply_overrides

    return from_dict(apply_overrides(MINIMAL, overrides))


def test_missing_or_invalid_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a\n- b\n")
    with pytest.raises(InputError, match="mapping"):
        read_yaml(bad)


def test_config_is_frozen() -> None:
    config = from_dict(MINIMAL)
    with pytest.raises(AttributeError):
        config.seed = 3  # type: ignore[misc]
    assert to_dict(config)["data"]["synthetic"]["size"] == [128, 128]


def test_warmup_then_cosine_to_floor() -> None:
    f = WarmupCosine(warmup=4, total=20, floor=0.01)
    ramp = [f(s) for s in range(4)]
    assert ramp == [0.25, 0.5, 0.75, 1.0]
    assert f(4) == pytest.approx(1.0)
    assert f(12) == pytest.approx(0.01 + 0.99 * 0.5)
    assert f(20) == pytest.approx(0.01) and f(50) == pytest.approx(0.01)
    decay = [f(s) for s in range(4, 21)]
    assert all(a >= b for a, b in zip(decay, decay[1:]))
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=0.1)
    sched = build_scheduler(opt, warmup=0, total=10, lr=0.1, min_lr=0.0)
    lrs = []
    for _ in range(10):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(0.1) and lrs[5] == pytest.approx(0.05)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)
    # The schedule is part of the scheduler state (a resumed run continues it).
    assert sched.state_dict()["last_epoch"] == 10


def test_resumed_schedule_follows_a_longer_run() -> None:
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=0.1)
    sched = build_scheduler(opt, warmup=0, total=4, lr=0.1, min_lr=0.0)
    for _ in range(2):
        opt.step()
        sched.step()
    state = sched.state_dict()
    restored = build_scheduler(opt, warmup=0, total=4, lr=0.1, min_lr=0.0)
    restored.load_state_dict(state)
    assert not retarget(restored, warmup=0, total=4, lr=0.1, min_lr=0.0)  # exact resume: untouched
    assert retarget(restored, warmup=0, total=8, lr=0.1, min_lr=0.0)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 * WarmupCosine(0, 8, 0.0)(2))
    restored.step()
    assert restored.last_epoch == 3 and opt.param_groups[0]["lr"] == pytest.approx(0.1 * WarmupCosine(0, 8, 0.0)(3))


def test_rng_state_round_trip() -> None:
    import random

    import numpy as np

    state = ckpt.rng_state()
    a = (random.random(), float(np.random.rand()), float(torch.rand(1)))
    ckpt.set_rng_state(state)
    assert (random.random(), float(np.random.rand()), float(torch.rand(1))) == a


def test_failed_write_keeps_the_previous_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "checkpoints" / "last.pt"
    ckpt.save_checkpoint({"step": 1, "w": torch.arange(4.0)}, path)

    def dies_mid_write(state, stream):
        stream.write(b"PK\x03\x04 half a checkpoint")
        raise KeyboardInterrupt

    monkeypatch.setattr(ckpt, "_write", dies_mid_write)
    with pytest.raises(KeyboardInterrupt):
        ckpt.save_checkpoint({"step": 2, "w": torch.zeros(4)}, path)
    state = ckpt.load_checkpoint(path)
    assert state["step"] == 1 and torch.equal(state["w"], torch.arange(4.0))
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.pt"]


KILLED_WRITER = textwrap.dedent(
    """
    import sys, torch
    from tami.train import checkpoint as ckpt
    path = sys.argv[1]
    step = 0
    while True:
        step += 1
        ckpt.save_checkpoint({"step": step, "w": torch.full((2_000_000,), float(step))}, path)
        print(step, flush=True)
    """
)


def test_killed_writer_never_leaves_a_corrupt_latest(tmp_path: Path) -> None:
    path = tmp_path / "last.pt"
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        # Wait for a few complete checkpoints, then kill the writer (most likely in the middle of one).
        for _ in range(3):
            assert proc.stdout is not None and proc.stdout.readline()
        time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    state = ckpt.load_checkpoint(path)
    assert state["step"] >= 3
    assert torch.equal(state["w"], torch.full((2_000_000,), float(state["step"])))
    removed = ckpt.remove_partials(tmp_path)
    assert all(p.name.startswith(".") for p in removed)
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_load_rejects_foreign_and_corrupt_files(tmp_path: Path) -> None:
    other = tmp_path / "weights.pt"
    torch.save({"w": torch.ones(1)}, other)
    with pytest.raises(CheckpointError, match="not a tami training checkpoint"):
        ckpt.load_checkpoint(other)
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a zip")
    with pytest.raises(CheckpointError, match="cannot read"):
        ckpt.load_checkpoint(broken)
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        ckpt.resolve_resume(str(tmp_path / "missing.pt"), tmp_path)
    assert ckpt.resolve_resume("auto", tmp_path / "fresh") is None


def test_relative_paths_are_relative_to_the_config_file_and_set_values_to_the_current_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "recipes"
    folder.mkdir()
    (folder / "c.yaml").write_text("model: {backbone_weights: ../w/b.pth}\ndata: {root: data, synthetic: "
                                   "{sources: 'builtin:train'}}\nval: {data: {root: /abs/val}}\n")
    monkeypatch.chdir(tmp_path)
    config = load_config("recipes/c.yaml", ["model.adapter_weights=a.safetensors", "data.synthetic.sources=photos"])
    assert config.model.backbone_weights == str(tmp_path / "w" / "b.pth")
    assert config.data.root == str(folder / "data") and config.val.data.root == "/abs/val"
    assert config.model.adapter_weights == str(tmp_path / "a.safetensors")
    assert config.data.synthetic.sources == str(tmp_path / "photos")
    assert load_config("recipes/c.yaml").data.synthetic.sources == "builtin:train"
