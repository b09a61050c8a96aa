"""`tami evaluate` end to end on tiny generated PNG datasets; ranks; protocol selection; error messages."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from tami.cli.main import main
from tami.errors import InputError
from tami.metrics import create_metric
from tami.evaluation.evaluator import Evaluator
from tami.metrics.results import EvaluationReport, MethodScores, VideoScores, rank_values, ranks


def _texture(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = rng.random((h // 4, w // 4, 3))
    return cv2.GaussianBlur(cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC), (0, 0), 1.0)


def _write(folder: Path, frames: list[np.ndarray], names: list[str] | None = None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(frames):
        name = names[i] if names else f"{i:04d}"
        rgb = np.clip(np.rint(frame * 255), 0, 255).astype(np.uint8)
        cv2.imwrite(str(folder / f"{name}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def _dataset(root: Path, videos: tuple[str, ...] = ("v1", "v2"), frames: int = 4, size=(48, 64)) -> Path:
    """GT plus two methods: 'good' (slightly dim, steady) and 'flicker' (alternating gain)."""
    for k, video in enumerate(videos):
        base = _texture(size[0], size[1] + 3 * frames, seed=k)
        gt = [base[:, 3 * t:3 * t + size[1]] for t in range(frames)]
        _write(root / "GT" / video, gt)
        _write(root / "good" / video, [0.95 * f for f in gt])
        _write(root / "flicker" / video, [(0.7 if t % 2 else 0.95) * f for t, f in enumerate(gt)])
    return root


def test_evaluate_two_methods_writes_everything_and_ranks(tmp_path: Path, capsys) -> None:
    root = _dataset(tmp_path / "data")
    out = tmp_path / "out"
    cache = tmp_path / "flows"
    code = main(["evaluate", "--gt", str(root / "GT"), "--method", f"flicker={root / 'flicker'}",
                 "--method", f"good={root / 'good'}", "--flow-preset", "fast", "--flow-cache", str(cache),
                 "-o", str(out)])
    assert code == 0
    assert len(list(cache.glob("*.npz"))) == 2  # one GT flow file per video, shared by both methods
    for name in ("results.json", "summary.csv", "per_video.csv", "results.md", "plots/v1.png", "plots/v2.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    result = json.loads((out / "results.json").read_text())
    by_name = {m["name"]: m for m in result["methods"]}
    assert by_name["good"]["ranks"] == {"psnr": 1, "ssim": 1, "ewarp": 1, "mabd": 1, "average": 1}
    assert by_name["flicker"]["ranks"]["average"] == 2
    assert by_name["flicker"]["dataset"]["mabd"] > 10 * by_name["good"]["dataset"]["mabd"]
    assert "dis(preset=fast" in result["metrics"]["ewarp"]["settings"]
    video = by_name["good"]["videos"][0]
    assert len(video["per_frame"]["psnr"]) == 4 and len(video["per_frame"]["ewarp"]) == 3
    assert video["scores"]["psnr"] == pytest.approx(np.mean(video["per_frame"]["psnr"]))
    assert by_name["good"]["dataset"]["psnr"] == pytest.approx(
        np.mean([v["scores"]["psnr"] for v in by_name["good"]["videos"]]))
    rows = list(csv.DictReader((out / "per_video.csv").open()))
    assert {(r["method"], r["video"]) for r in rows} == {(m, v) for m in ("good", "flicker") for v in ("v1", "v2")}
    assert all("dis(preset=fast" in r["ewarp_settings"] for r in rows)
    summary = {r["method"]: r for r in csv.DictReader((out / "summary.csv").open())}
    assert float(summary["good"]["average_rank"]) == 1.0 and "dis(preset=fast" in summary["good"]["ewarp_settings"]
    md = (out / "results.md").read_text()
    assert "| method | PSNR | SSIM | E_warp×10³ | MABD×10³ | Avg. Rank |" in md
    printed = capsys.readouterr().out
    assert "Avg. Rank" in printed and "good: per video" in printed


def test_missing_video_and_frame_mismatch_name_the_video(tmp_path: Path, capsys) -> None:
    root = _dataset(tmp_path / "data", frames=3, size=(32, 40))
    (root / "good" / "v2" / "0002.png").unlink()
    code = main(["evaluate", "--gt", str(root / "GT"), "--pred", str(root / "good"), "--metrics", "psnr",
                 "-o", str(tmp_path / "o1")])
    err = capsys.readouterr().err
    assert code == 1 and "video 'v2'" in err and "has 2 frames, GT has 3" in err
    with pytest.raises(InputError, match="video 'v2'.*lacks frame '0002'"):  # found before any scoring
        Evaluator(root / "GT", {"good": root / "good"}, [create_metric("psnr")], frames=3)
    for png in (root / "flicker" / "v1").iterdir():
        png.unlink()
    (root / "flicker" / "v1").rmdir()
    code = main(["evaluate", "--gt", str(root / "GT"), "--pred", str(root / "flicker"), "--metrics", "psnr",
                 "-o", str(tmp_path / "o2")])
    err = capsys.readouterr().err
    assert code == 1 and "video 'v1' is missing from method 'flicker'" in err
    assert not (tmp_path / "o2").exists()


def test_protocol_selects_split_and_frame_range(tmp_path: Path, capsys) -> None:
    test_split = ("pair13", "pair15", "pair21", "pair23", "pair31", "pair33",
                  "pair50", "pair52", "pair58", "pair60", "pair68", "pair70")
    rng = np.random.default_rng(0)
    gt_root = tmp_path / "SDSD-indoor" / "GT"
    for video in (*test_split, "pair1"):  # pair1 is a training video: not scored
        frames = [rng.random((12, 16, 3)) for _ in range(35)]
        _write(gt_root / video, frames)
        _write(tmp_path / "pred" / video, frames[:30])  # outputs only for the 30 scored frames
    out = tmp_path / "out"
    code = main(["-q", "evaluate", "--gt", str(gt_root), "--pred", str(tmp_path / "pred"), "--metrics", "psnr,mabd",
                 "--protocol", "sdsd-dynamic", "--no-plots", "-o", str(out)])
    assert code == 0, capsys.readouterr().err
    result = json.loads((out / "results.json").read_text())
    assert result["protocol"]["name"] == "sdsd-dynamic" and result["protocol"]["subset"] == "indoor"
    videos = result["methods"][0]["videos"]
    assert [v["video"] for v in videos] == list(test_split)
    assert all(len(v["frames"]) == 30 and v["scores"]["psnr"] == "inf" for v in videos)
    (tmp_path / "pred" / "pair70" / "0029.png").unlink()
    code = main(["-q", "evaluate", "--gt", str(gt_root), "--pred", str(tmp_path / "pred"), "--metrics", "psnr",
                 "--protocol", "sdsd-dynamic", "--no-plots", "-o", str(out), "--force"])
    assert code == 1 and "video 'pair70'" in capsys.readouterr().err


def test_ranks_follow_metric_direction_and_share_ties() -> None:
    assert rank_values([27.0, 28.5, 26.0], lower_better=False) == [2, 1, 3]
    assert rank_values([0.2, 0.1, 0.2, float("nan")], lower_better=True) == [2.5, 1, 2.5, 4]
    metrics = [create_metric("psnr"), create_metric("mabd")]

    def method(name: str, psnr: float, mabd: float) -> MethodScores:
        scores = {"psnr": psnr, "mabd": mabd}
        return MethodScores(name, name, {"v": VideoScores("v", ["0"], {}, scores)})

    report = EvaluationReport(metrics, [method("a", 28.0, 0.002), method("b", 29.0, 0.004),
                                        method("c", 27.0, 0.001)], "gt")
    r = ranks(report)
    assert r["a"] == {"psnr": 2, "mabd": 2, "average": 2}
    assert r["b"] == {"psnr": 1, "mabd": 3, "average": 2}
    assert r["c"] == {"psnr": 3, "mabd": 1, "average": 2}


def test_gt_flow_is_computed_once_per_video_for_many_methods(tmp_path: Path) -> None:
    root = _dataset(tmp_path / "data", frames=3, size=(32, 40))
    methods = {"good": root / "good", "flicker": root / "flicker", "gt_copy": root / "GT"}
    ev = Evaluator(root / "GT", methods, [create_metric("ewarp", preset="ultrafast"), create_metric("mabd")])
    for video in ev.videos:
        ev.evaluate_video(video)
    assert (ev.cache.misses, ev.cache.hits) == (2, 4)
    report = ev.report()
    gt_copy = report.methods[2]
    assert all(v.scores["mabd"] == 0.0 for v in gt_copy.videos.values())
    assert ranks(report)["gt_copy"]["mabd"] == 1
