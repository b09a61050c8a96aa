"""`tami train` as a researcher drives it: stop, Ctrl-C, resume from the run folder, failed resumes, config paths."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
from toy_backbone import one_thread  # noqa: F401  (one torch thread for the module: tiny tensors gain nothing from more)
import yaml

from tami.cli.main import main
from tami.train import checkpoint as ckpt
from tami.train.logs import read_log

RECIPE = {
    "stage": "image", "device": "cpu", "seed": 3,
    "model": {"backbone": "retinexformer", "backbone_options": {"n_feat": 8, "num_blocks": [1, 1, 1]}},
    "data": {"synthetic": {"videos": 2, "frames": 3, "size": [32, 32], "seed": 1}, "clip_len": 2},
    "loss": {"charbonnier": 1.0},
    "optim": {"lr": 1e-3},
    "train": {"iterations": 6, "batch_size": 1, "log_every": 1, "checkpoint_every": 2},
    "val": {"data": None},
}




def recipe(folder: Path, **changes: object) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump({**RECIPE, **changes}))
    return path


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def losses(run: Path) -> list[tuple[int, float]]:
    return [(e["step"], e["loss/total"]) for e in read_log(run / "log.jsonl")]


def test_a_failed_resume_leaves_the_run_folder_byte_identical_and_the_run_folder_resumes_from_anywhere(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = recipe(tmp_path / "cfg")
    run = tmp_path / "run"
    assert main(["train", str(config), "--set", "data.synthetic.videos=3", "--stop-at", "2", "-o", str(run)]) == 0
    out = capsys.readouterr().out
    assert f"Stopped at iteration 2 of 6; continue with: tami train {run} --resume auto" in out
    before = snapshot(run)

    # The recipe without the --set of the first call: other data, which the checkpoint cannot continue.
    assert main(["train", str(config), "--resume", "auto", "-o", str(run)]) == 2
    err = capsys.readouterr().err
    assert "data.synthetic.videos: 3 there vs 2 now" in err and f"tami train {run} --resume auto" in err
    assert snapshot(run) == before
    # A missing weights file is found before anything is written.
    assert main(["train", str(run), "--resume", "auto", "--set", "model.backbone_weights=nowhere.pth"]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert snapshot(run) == before

    # The hint as printed works from another folder: the run's config.yaml holds absolute paths.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["-q", "train", str(run), "--resume", "auto", "--set", "train.iterations=7"]) == 0
    assert [step for step, _ in losses(run)] == list(range(1, 8))
    assert (run / "export" / "backbone.safetensors").is_file()
    assert len((run / "commands.txt").read_text().splitlines()) == 2


def test_ctrl_c_checkpoints_and_the_resumed_run_matches_an_uninterrupted_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tami.train.stages import ImageStage

    config = recipe(tmp_path / "cfg")
    straight = tmp_path / "straight"
    assert main(["-q", "train", str(config), "-o", str(straight)]) == 0

    original = ImageStage.compute_loss

    def ctrl_c_at_step_3(self, lq, gt, *, step, **kwargs):
        if step == 2:
            os.kill(os.getpid(), signal.SIGINT)
        return original(self, lq, gt, step=step, **kwargs)

    monkeypatch.setattr(ImageStage, "compute_loss", ctrl_c_at_step_3)
    before = signal.getsignal(signal.SIGINT)
    run = tmp_path / "run"
    assert main(["train", str(config), "-o", str(run)]) == 0
    assert signal.getsignal(signal.SIGINT) is before
    assert f"Stopped at iteration 3 of 6; continue with: tami train {run} --resume auto" in capsys.readouterr().out
    assert ckpt.load_checkpoint(run / "checkpoints" / "last.pt")["step"] == 3  # not the step-2 periodic one
    monkeypatch.setattr(ImageStage, "compute_loss", original)
    assert main(["-q", "train", str(run), "--resume", "auto"]) == 0
    assert losses(run) == losses(straight)


def test_a_second_ctrl_c_aborts_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tami.train.stages import ImageStage

    original = ImageStage.compute_loss

    def ctrl_c_twice_at_step_3(self, lq, gt, *, step, **kwargs):
        if step == 2:
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
        return original(self, lq, gt, step=step, **kwargs)

    monkeypatch.setattr(ImageStage, "compute_loss", ctrl_c_twice_at_step_3)
    before = signal.getsignal(signal.SIGINT)
    run = tmp_path / "run"
    assert main(["-q", "train", str(recipe(tmp_path / "cfg")), "-o", str(run)]) == 1
    assert "Stopped" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGINT) is before
    assert ckpt.load_checkpoint(run / "checkpoints" / "last.pt")["step"] == 2  # no checkpoint after the abort


def test_config_paths_are_relative_to_the_config_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tami.data.synthetic import generate_dataset

    generate_dataset(tmp_path / "data" / "train", videos=2, frames=3, size=(32, 32), seed=1, sources="builtin:train")
    config = recipe(tmp_path / "cfg", data={"root": "../data/train", "clip_len": 2}, train={**RECIPE["train"],
                                                                                          "iterations": 1})
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert main(["-q", "train", str(config), "-o", "run"]) == 0
    recorded = yaml.safe_load((elsewhere / "run" / "config.yaml").read_text())
    assert recorded["data"]["root"] == str(tmp_path / "data" / "train")
    # --set paths are relative to the current folder.
    assert main(["-q", "train", str(config), "--set", "data.root=../data/train", "-o", "run2"]) == 0
    assert main(["-q", "train", str(config), "--set", "data.root=data/train", "-o", "run3"]) == 1
    assert f"dataset root {elsewhere / 'data' / 'train'} is not a folder" in capsys.readouterr().err


@pytest.mark.parametrize(
    "overrides, code, message",
    [
        (["data.synthetic=null", "data.root=nowhere"], 1, "is not a folder"),
        (["val.every=1", "val.data={synthetic: {videos: 1, frames: 3, size: [32, 32]}, clip_len: 8}"], 1,
         "no video has 8 frames (the longest has 3); lower val.data.clip_len"),
        (["loss={charbonier: 1.0}"], 2, "charbonier"),
    ],
)
def test_a_failed_train_leaves_no_run_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], overrides: list[str], code: int, message: str
) -> None:
    run = tmp_path / "run"
    args = [arg for item in overrides for arg in ("--set", item)]
    assert main(["-q", "train", str(recipe(tmp_path / "cfg")), *args, "-o", str(run)]) == code
    assert message in capsys.readouterr().err
    assert not run.exists()


def test_a_run_folder_or_its_config_is_its_own_default_output(tmp_path: Path) -> None:
    from tami.cli.train import config_and_run_dir
    from tami.errors import UsageError

    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("{}")
    assert config_and_run_dir(run, None) == (run / "config.yaml", run)
    assert config_and_run_dir(run / "config.yaml", None) == (run / "config.yaml", Path("runs/config"))
    (run / "commands.txt").write_text("")  # what makes it a run folder
    assert config_and_run_dir(run / "config.yaml", None) == (run / "config.yaml", run)
    assert config_and_run_dir(run, tmp_path / "other") == (run / "config.yaml", tmp_path / "other")
    assert config_and_run_dir(Path("configs/x.yaml"), None) == (Path("configs/x.yaml"), Path("runs/x"))
    with pytest.raises(UsageError, match="is a folder without config.yaml"):
        config_and_run_dir(tmp_path, None)


def test_without_tensorboard_the_run_says_once_that_logs_are_jsonl_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import importlib.util

    from tami.train.logs import RunLog

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else real(name, *a))
    with caplog.at_level("INFO", logger="tami.train.logs"):
        log = RunLog(tmp_path)
        log.write(1, {"loss/total": 0.5})
        log.write(2, {"loss/total": 0.25})
        log.close()
    said = [r.getMessage() for r in caplog.records if "TensorBoard" in r.getMessage()]
    assert said == [f"logging to {tmp_path / 'log.jsonl'} only (JSONL); for TensorBoard, pip install 'tami[tensorboard]'"]
    assert not (tmp_path / "tensorboard").exists()


def test_ctrl_c_in_a_terminal_checkpoints_with_loader_workers(tmp_path: Path) -> None:
    """A terminal sends SIGINT to the whole process group, data-loading workers included."""
    import subprocess
    import sys
    import time

    config = recipe(tmp_path / "cfg", train={**RECIPE["train"], "iterations": 100000, "checkpoint_every": None,
                                              "workers": 2, "log_every": 1})
    run = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "tami.cli.main", "train", str(config), "-o", str(run)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not (run / "log.jsonl").is_file() or not (run / "log.jsonl").read_text().strip():
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1][-2000:]
            time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, err[-2000:]
    step = ckpt.load_checkpoint(run / "checkpoints" / "last.pt")["step"]
    assert step >= 1 and f"Stopped at iteration {step} of 100000; continue with: tami train {run} --resume auto" in out
