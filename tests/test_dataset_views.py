"""Evaluate's dataset folders in the viewers: `report`/`timeslice` per video or by --video, `evaluate --report`,
and evaluate's output rules (no silent overwrite, ranks at the displayed precision, the frames really scored)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import pytest
from test_evaluate import _dataset

from tami.cli.main import main


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _dataset(tmp_path_factory.mktemp("views") / "data", frames=3, size=(32, 40))


def _methods(root: Path) -> list[str]:
    return ["--method", f"good={root / 'good'}", "--method", f"flicker={root / 'flicker'}"]


def test_report_on_dataset_folders_one_page_per_video_or_the_picked_one(root: Path, tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "all"
    assert main(["-q", "report", *_methods(root), "--gt", str(root / "GT"), "--metrics", "psnr", "-o", str(out)]) == 0
    index = (out / "index.html").read_text()
    assert 'href="v1/index.html"' in index and 'href="v2/index.html"' in index and "2 videos" in index
    for video in ("v1", "v2"):
        page = (out / video / "index.html").read_text()
        assert f"tami comparison: {video}" in page and "PSNR" in page
        assert len(list((out / video / "frames").rglob("*.jpg"))) == 3 * 3  # good, flicker, GT
    one = tmp_path / "one"
    assert main(["-q", "report", *_methods(root), "--gt", str(root / "GT"), "--video", "v2", "--no-metrics",
                 "-o", str(one)]) == 0
    assert "tami comparison: v2" in (one / "index.html").read_text() and not (one / "v2").exists()
    assert main(["-q", "report", *_methods(root), "--video", "v3", "-o", str(tmp_path / "x")]) == 2
    assert "no video 'v3' in the dataset folders (videos: v1, v2)" in capsys.readouterr().err
    assert main(["-q", "report", "--method", f"good={root / 'good'}", "--method", f"one={root / 'good' / 'v1'}",
                 "-o", str(tmp_path / "x")]) == 2
    assert "is a single video but other inputs are dataset folders" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_an_unknown_video_is_one_usage_error_in_evaluate_and_report(root: Path, tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """Both commands pick videos by name through evaluation.pick_videos: exit 2, one line, the videos there are."""
    out = tmp_path / "out"
    assert main(["-q", "evaluate", "--gt", str(root / "GT"), *_methods(root), "--videos", "v2,v3", "--metrics",
                 "psnr", "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.endswith(f"no video 'v3' in the GT folder {root / 'GT'} (videos: v1, v2); "
                                            "pick from these")
    assert main(["-q", "report", *_methods(root), "--gt", str(root / "GT"), "--video", "v2", "--video", "v3",
                 "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.endswith("no video 'v3' in the dataset folders (videos: v1, v2); pick from these")
    assert not out.exists()


def test_pick_videos_keeps_the_dataset_order_and_lists_at_most_eight() -> None:
    from tami.errors import UsageError
    from tami.evaluation import pick_videos

    names = [f"v{i}" for i in range(1, 11)]
    assert pick_videos(names, None, where="x") == names == pick_videos(names, [], where="x")
    assert pick_videos(names, ["v3", "v1"], where="x") == ["v1", "v3"]
    with pytest.raises(UsageError) as info:
        pick_videos(names, ["v1", "v11"], where="the GT folder GT")
    assert str(info.value) == ("no video 'v11' in the GT folder GT (videos: v1, v2, v3, v4, v5, v6, v7, v8, "
                               "and 2 more); pick from these")
    assert info.value.exit_code == 2


def test_timeslice_on_dataset_folders(root: Path, tmp_path: Path) -> None:
    out = tmp_path / "ts"
    assert main(["-q", "timeslice", *_methods(root), "--method", f"GT={root / 'GT'}", "--x", "20", "-o", str(out)]) == 0
    assert 'src="v1/grid.png"' in (out / "index.html").read_text()
    for video in ("v1", "v2"):
        assert cv2.imread(str(out / video / "good_slice.png")).shape == (32, 3, 3)
    picked = tmp_path / "picked"
    assert main(["-q", "timeslice", *_methods(root), "--video", "v1", "--y", "5", "-o", str(picked)]) == 0
    assert (picked / "grid.png").is_file() and not (picked / "index.html").exists()


def test_evaluate_report_force_and_the_frames_really_scored(root: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "eval"
    args = ["-q", "evaluate", "--gt", str(root / "GT"), *_methods(root), "--metrics", "psnr,mabd", "--frames", "20",
            "--no-plots", "-o", str(out)]
    assert main([*args, "--report"]) == 0
    assert capsys.readouterr().out == ""  # -q: no tables
    result = json.loads((out / "results.json").read_text())
    assert result["protocol"]["frames"] == "first 3 frames"
    index = (out / "report" / "index.html").read_text()
    assert "Avg. Rank" in index and 'href="v2/index.html"' in index
    assert "PSNR" in (out / "report" / "v1" / "index.html").read_text()
    before = (out / "results.json").read_bytes()
    assert main(args) == 2
    assert "holds the results of an earlier evaluation; choose another -o or pass --force" in capsys.readouterr().err
    assert (out / "results.json").read_bytes() == before
    assert main([*args, "--force"]) == 0


def test_ranks_compare_the_displayed_values(root: Path, tmp_path: Path) -> None:
    twin = tmp_path / "twin"
    shutil.copytree(root / "good", twin)
    frame = cv2.imread(str(twin / "v1" / "0000.png"))
    frame[0, 0, 0] = min(255, int(frame[0, 0, 0]) + 1)  # a PSNR difference far below the table's 3 decimals
    cv2.imwrite(str(twin / "v1" / "0000.png"), frame)
    out = tmp_path / "eval"
    assert main(["-q", "evaluate", "--gt", str(root / "GT"), "--method", f"good={root / 'good'}", "--method",
                 f"twin={twin}", "--metrics", "psnr", "--no-plots", "-o", str(out)]) == 0
    methods = {m["name"]: m for m in json.loads((out / "results.json").read_text())["methods"]}
    assert methods["good"]["dataset"]["psnr"] != methods["twin"]["dataset"]["psnr"]
    assert methods["good"]["ranks"]["psnr"] == methods["twin"]["ranks"]["psnr"] == 1.5
