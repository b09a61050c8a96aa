"""`tami demo` and its held-out clips: what the README's main command writes and reports."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from tami.cli.main import main
from tami.data.synthetic import builtin_images, srgb_to_linear
from tami.data.video import open_video, open_writer
from tami.demo import heldout_clip, run_demo, score
from tami.bundled import load_enhancement_model
from tami.enhance import EnhanceOptions

_METRICS = {"psnr", "ssim", "ewarp", "mabd"}


def _dark_video(path: Path, frames: int, size: int = 48) -> Path:
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    with open_writer(path, fps=12) as writer:
        for t in range(frames):
            luma = 0.12 + 0.08 * np.sin((xx + 2 * t) / 5.0) * np.cos(yy / 6.0)
            writer.write(np.repeat(luma[..., None], 3, axis=-1))
    return path


def test_heldout_clips_are_reproducible_and_use_only_held_out_photographs() -> None:
    name, lq, gt = heldout_clip(2, frames=3, size=(32, 40))
    again = heldout_clip(2, frames=3, size=(32, 40))
    assert np.array_equal(lq, again[1]) and np.array_equal(gt, again[2])
    assert lq.shape == gt.shape == (3, 32, 40, 3) and lq.dtype == np.float32
    assert name[3:] in {n for n, _ in builtin_images("test")}
    other = heldout_clip(0, frames=3, size=(32, 40))  # same photograph (they cycle), another seed
    assert other[0][3:] == name[3:] and not np.array_equal(other[2], gt)


def test_heldout_degradation_overrides_reach_the_generator() -> None:
    _, lq, gt = heldout_clip(1, frames=6, size=(32, 32))
    _, clean, gt_clean = heldout_clip(1, frames=6, size=(32, 32), shot_noise=(1e-12, 1e-12))
    _, steady, _ = heldout_clip(1, frames=6, size=(32, 32), shot_noise=(1e-12, 1e-12), flicker=1e-9, drift=0.0,
                                ae_rate=0.0)
    assert np.array_equal(gt, gt_clean)  # the scene and camera path do not depend on the degradation
    ref = srgb_to_linear(gt)

    def fit(video: np.ndarray) -> tuple[np.ndarray, float]:
        """Per-frame, per-channel gains of the clip as the ground truth darkened, and the RMS misfit (linear)."""
        lin = srgb_to_linear(video)
        gain = (lin * ref).sum(axis=(1, 2), keepdims=True) / (ref * ref).sum(axis=(1, 2), keepdims=True)
        return gain.reshape(len(video), 3), float(np.sqrt(((lin - gain * ref) ** 2).mean()))

    (gains, clean_misfit), (steady_gains, _) = fit(clean), fit(steady)
    assert clean_misfit < 0.25 * fit(lq)[1]  # without noise the clip is the ground truth darkened
    assert np.log(gains).std(axis=0).min() > 0.03  # jitter and drift: the exposure changes from frame to frame
    assert np.log(steady_gains).std(axis=0).max() < 0.01


def test_demo_writes_every_output_and_scores_both_runs(tmp_path: Path) -> None:
    result = run_demo(tmp_path / "demo", frames=4, size=(64, 64), options=EnhanceOptions(device="cpu"))
    out = tmp_path / "demo"
    for name in ("input.mp4", "gt.mp4", "backbone.mp4", "tami.mp4", "compare.mp4", "metrics.md", "metrics.json",
                 "timeslice/grid.png", "report/index.html"):
        assert (out / name).is_file(), name
    assert all(path.is_file() for path in result.files)

    saved = json.loads((out / "metrics.json").read_text())
    assert saved["frames"] == result.frames == 4 and saved["metrics"] == result.metrics
    rows = result.metrics
    assert set(rows) == {"input", "backbone", "tami"} and all(set(r) == _METRICS for r in rows.values())
    assert rows["backbone"]["psnr"] > rows["input"]["psnr"] + 8.0  # the bundled backbone really brightens
    assert "| tami |" in (out / "metrics.md").read_text()

    backbone = load_enhancement_model().backbone.eval()
    _, lq, gt = heldout_clip(0, frames=4, size=(64, 64))
    with torch.no_grad():
        expected = backbone(torch.from_numpy(lq).permute(0, 3, 1, 2)).clamp(0, 1).permute(0, 2, 3, 1).numpy()
    # the "backbone" row scores the frozen backbone alone, frame by frame
    assert rows["backbone"]["psnr"] == pytest.approx(score(expected, gt)["psnr"], abs=1e-3)
    written = np.stack(list(open_video(out / "backbone.mp4")))  # H.264 4:2:0 at CRF 18: close, not exact
    assert written.shape == expected.shape
    assert 10 * np.log10(1.0 / np.mean((written - expected) ** 2)) > 28.0
    compare = next(iter(open_video(out / "compare.mp4")))
    assert compare.shape == (64, 4 * 64, 3)  # input | backbone | TAMI | GT


def test_demo_on_a_user_video_scores_only_the_reference_free_ewarp(tmp_path: Path) -> None:
    video = _dark_video(tmp_path / "dark.mp4", frames=5)
    result = run_demo(tmp_path / "demo", video, frames=3, options=EnhanceOptions(device="cpu"))
    assert result.frames == 3 and set(result.metrics) == {"backbone", "tami"}
    assert all(set(row) == {"ewarp"} for row in result.metrics.values())
    assert not (tmp_path / "demo" / "gt.mp4").exists()
    assert sum(1 for _ in open_video(tmp_path / "demo" / "tami.mp4")) == 3
    assert next(iter(open_video(tmp_path / "demo" / "compare.mp4"))).shape == (48, 3 * 48, 3)


def test_demo_command_prints_the_table_and_the_comparison(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo"
    assert main(["demo", "-o", str(out), "--frames", "3", "--size", "64", "64", "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "| backbone |" in printed and "| tami |" in printed
    assert "TAMI vs backbone alone: E_warp" in printed and str(out) in printed


def test_demo_on_a_one_frame_video_is_one_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    video = _dark_video(tmp_path / "still.mp4", frames=1)
    assert main(["-q", "demo", str(video), "-o", str(tmp_path / "demo")]) == 1
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and "at least 2 frames" in lines[0], lines


def test_demo_replaces_an_earlier_demo_whole(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    run_demo(out, frames=3, size=(48, 48), options=EnhanceOptions(device="cpu"))
    assert (out / "gt.mp4").is_file()
    run_demo(out, _dark_video(tmp_path / "dark.mp4", frames=3), options=EnhanceOptions(device="cpu"))
    assert not (out / "gt.mp4").exists()  # nothing stale from the synthetic run beside the new one
    assert json.loads((out / "metrics.json").read_text())["source"].endswith("dark.mp4")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dark.mp4", "demo"]


def test_demo_leaves_a_foreign_folder_alone(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    assert main(["-q", "demo", "-o", str(out), "--frames", "2", "--size", "32", "32", "--device", "cpu"]) == 1
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and "not an earlier demo's output" in lines[0], lines
    assert [p.name for p in out.iterdir()] == ["notes.txt"]
    assert main(["-q", "demo", "-o", str(out / "notes.txt"), "--frames", "2", "--device", "cpu"]) == 1
    assert "is a file" in capsys.readouterr().err and (out / "notes.txt").read_text() == "keep me"


def test_demo_interrupted_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import tami.demo

    def interrupt(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(tami.demo, "_report", interrupt)  # the last output written
    with pytest.raises(KeyboardInterrupt):
        run_demo(tmp_path / "demo", frames=2, size=(32, 32), options=EnhanceOptions(device="cpu"))
    assert list(tmp_path.iterdir()) == []


def test_demo_table_uses_the_metric_registry_labels_and_precision() -> None:
    from tami.demo import metrics_table

    table = metrics_table({"input": {"psnr": 10.123456, "ssim": 0.5, "ewarp": 0.0123, "mabd": 0.00045},
                           "tami": {"ewarp": float("inf")}})
    assert table.splitlines() == [
        "| method | PSNR | SSIM | E_warp×10³ | MABD×10³ |",
        "|---|---:|---:|---:|---:|",
        "| input | 10.123 | 0.500 | 12.300 | 0.4500 |",
        "| tami | - | - | inf | - |",
    ]


def _control_file(path: Path) -> Path:
    """A no-memory control built from the bundled model's weights (memory_frames 0: it runs stateless)."""
    from dataclasses import replace

    from tami.adapter import TAMI
    from tami.adapter.io import save_model

    net = load_enhancement_model()
    control = TAMI(net.backbone, replace(net.config, memory_frames=0))
    control.load_state_dict(net.state_dict())
    return save_model(control, path)


def test_demo_runs_the_no_memory_control_beside_tami(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    control = _control_file(tmp_path / "control.safetensors")
    result = run_demo(tmp_path / "demo", frames=4, size=(48, 48), control=control,
                      options=EnhanceOptions(device="cpu"))
    out = tmp_path / "demo"
    assert set(result.metrics) == {"input", "backbone", "control", "tami"}
    assert (out / "control.mp4").is_file() and "| control |" in (out / "metrics.md").read_text()
    assert next(iter(open_video(out / "compare.mp4"))).shape == (48, 5 * 48, 3)  # input|backbone|control|TAMI|GT
    # the control is the bundled adapter without memory: it scores like TAMI run stateless, not like TAMI
    stateless = run_demo(tmp_path / "stateless", frames=4, size=(48, 48),
                         options=EnhanceOptions(device="cpu", memory=0)).metrics["tami"]
    assert result.metrics["control"]["psnr"] == pytest.approx(stateless["psnr"], abs=1e-6)

    cli_out = tmp_path / "cli"
    assert main(["demo", "-o", str(cli_out), "--frames", "3", "--size", "32", "32", "--device", "cpu",
                 "--control", str(control)]) == 0
    printed = capsys.readouterr().out
    assert "TAMI vs no-memory control: E_warp" in printed and "TAMI vs backbone alone: E_warp" in printed


def test_a_control_with_memory_is_refused_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tami.adapter.io import save_model

    memory_model = save_model(load_enhancement_model(), tmp_path / "with_memory.safetensors")
    assert main(["-q", "demo", "-o", str(tmp_path / "demo"), "--frames", "2", "--size", "32", "32",
                 "--device", "cpu", "--control", str(memory_model)]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and "memory_frames: 0" in lines[0], lines
    assert not (tmp_path / "demo").exists()
