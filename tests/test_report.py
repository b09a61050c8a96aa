"""tami.report and `tami report` without a browser: size bound and subsampling, page content, metrics from arrays
and from folders, output-folder safety, input errors. The page in Chromium: tests/test_report_browser.py."""

from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from tami.cli.main import main
from tami.errors import InputError
from tami.report import ReportLimits, build_report
from tami.report.frames import choose_steps, page_size


def video(frames: int = 6, h: int = 24, w: int = 32, gain: float = 1.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = np.linspace(0, 1, h * w * 3, dtype=np.float32).reshape(h, w, 3)
    return np.stack([np.clip(np.roll(base, 2 * t, axis=1) * gain + 0.02 * rng.standard_normal(base.shape), 0, 1)
                     for t in range(frames)]).astype(np.float32)


def page_data(page: Path) -> dict:
    match = re.search(r'<script type="application/json" id="tami-data">(.*?)</script>', page.read_text(), re.S)
    assert match is not None
    return json.loads(match.group(1))


def test_page_size_and_step_choice() -> None:
    assert page_size(1080, 1920, 480) == (270, 480)
    assert page_size(40, 30, 480) == (40, 30)  # never enlarged
    limits = ReportLimits(max_frames=10, max_pixels=10**9)
    assert choose_steps(8, 3, (10, 10), limits) == list(range(8))
    steps = choose_steps(100, 3, (10, 10), limits)
    assert len(steps) == 10 and steps[0] == 0 and steps[-1] == 99
    assert np.ptp(np.diff(steps)) <= 1  # evenly spaced
    # the pixel budget: 4 methods x 100x100 px frames, 200k px -> 5 frames per method
    assert len(choose_steps(100, 4, (100, 100), ReportLimits(max_frames=150, max_pixels=200_000))) == 5


def test_report_from_arrays_with_metrics(tmp_path: Path) -> None:
    gt = video()
    methods = {"input": video(gain=0.2), "enhanced": video(seed=1)}
    page = build_report(methods, tmp_path / "rep", gt=gt, metrics=("psnr", "mabd"), fps=12.5, title="A <b> test")
    text = page.read_text()
    assert "<script src" not in text and "<link rel=\"stylesheet\"" not in text
    assert not re.search(r"(src|href)=\"https?:", text)
    assert "A &lt;b&gt; test" in text and "window.tamiReport" in text  # title escaped, script inlined
    data = page_data(page)
    assert [m["name"] for m in data["methods"]] == ["input", "enhanced", "GT"]
    assert data["fps"] == 12.5 and data["labels"] == [str(i) for i in range(6)] and data["alignment"] == "index"
    files = sorted((tmp_path / "rep" / "frames").rglob("*.jpg"))
    assert len(files) == 3 * 6 and data["bytes"] == sum(f.stat().st_size for f in files)
    first = cv2.imread(str(tmp_path / "rep" / data["methods"][2]["dir"] / "00000.jpg"))
    assert first.shape == (24, 32, 3) and np.abs(first[:, :, ::-1] / 255.0 - gt[0]).mean() < 0.03
    assert "<h2>Metrics</h2>" in text and "PSNR" in text and "enhanced" in text
    assert (tmp_path / "rep" / "metrics" / "results.json").is_file()
    results = json.loads((tmp_path / "rep" / "metrics" / "results.json").read_text())
    psnr = {m["name"]: m["dataset"]["psnr"] for m in results["methods"]}
    assert psnr["enhanced"] > psnr["input"] + 5


def test_report_bound_subsamples_frames(tmp_path: Path) -> None:
    page = build_report({"a": video(frames=20, h=60, w=100)}, tmp_path / "rep",
                        limits=ReportLimits(max_side=50, max_frames=5))
    data = page_data(page)
    assert data["positions"] == [0, 5, 10, 14, 19] and data["total"] == 20
    assert (data["width"], data["height"]) == (50, 30)
    assert len(list((tmp_path / "rep" / "frames" / "m0").iterdir())) == 5
    assert cv2.imread(str(tmp_path / "rep" / "frames" / "m0" / "00004.jpg")).shape == (30, 50, 3)


def test_report_output_folder_safety(tmp_path: Path) -> None:
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(InputError, match="not a tami report"):
        build_report({"a": video()}, other)
    assert (other / "keep.txt").read_text() == "mine"
    out = tmp_path / "rep"
    build_report({"a": video()}, out)
    build_report({"b": video(frames=3)}, out)  # an earlier report is replaced
    assert [m["name"] for m in page_data(out / "index.html")["methods"]] == ["b"]
    assert len(list((out / "frames").iterdir())) == 1


def test_report_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="one frame size"):
        build_report({"a": video(), "b": video(w=30)}, tmp_path / "r1")
    with pytest.raises(InputError, match="unknown length"):
        build_report({"a": (f for f in video())}, tmp_path / "r2")
    with pytest.raises(InputError, match="named 'GT'"):
        build_report({"GT": video()}, tmp_path / "r3", gt=video())
    assert not (tmp_path / "r1").exists() and not (tmp_path / "r2").exists()


def test_report_cli_with_folders(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clips = {"gt": video(), "low": video(gain=0.3), "tami": video(seed=2)}
    for name, clip in clips.items():
        folder = tmp_path / name
        folder.mkdir()
        for i, frame in enumerate(clip):
            cv2.imwrite(str(folder / f"{100 + i}.png"), np.rint(frame[:, :, ::-1] * 255).astype(np.uint8))
    out = tmp_path / "report"
    code = main(["report", "--method", f"low={tmp_path / 'low'}", "--method", f"tami={tmp_path / 'tami'}",
                 "--gt", str(tmp_path / "gt"), "--metrics", "psnr", "--frames", "1:5", "-o", str(out)])
    assert code == 0
    assert "file://" in capsys.readouterr().out
    data = page_data(out / "index.html")
    assert data["alignment"] == "name" and data["labels"] == ["101", "102", "103", "104"]
    summary = (out / "metrics" / "summary.csv").read_text()
    assert "low" in summary and "tami" in summary
    assert main(["-q", "report", "--method", "x", "-o", str(tmp_path / "bad")]) == 2
