"""tami.data.check, tami.data.sdsd_convert and the `tami data` / `tami synth` commands."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from tami.cli import data as data_cli
from tami.cli import synth as synth_cli
from tami.data.datasets import build_dataset
from tami.data.sdsd_convert import convert_sdsd
from tami.data.check import validate
from tami.errors import InputError


def _npy_video(folder: Path, frames: int, value: int, size: tuple[int, int] = (6, 8)) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(frames):
        bgr = np.zeros((*size, 3), np.uint8)
        bgr[..., 0], bgr[..., 2] = value, i  # blue = value, red = frame index (stored BGR, as SDSD does)
        np.save(folder / f"{i:04d}.npy", bgr)


def _sdsd_tree(root: Path) -> Path:
    for name in ("pair13", "pair2"):
        _npy_video(root / "indoor_np" / "input" / name, 3, 10)
        _npy_video(root / "indoor_np" / "GT" / name, 3, 200)
    return root


def _parse(module, argv: list[str], quiet: bool = True) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("-q", "--quiet", action="store_true")
    module.add_arguments(parser)
    return parser.parse_args(["-q", *argv] if quiet else argv)


def test_clean_dataset_passes(tmp_path: Path) -> None:
    report = validate(_sdsd_tree(tmp_path), "sdsd")
    assert report.ok and report.videos == report.pairs == 2 and report.frames == 6 and report.checked == 12
    assert "no problems found" in report.summary()


def test_problems_are_each_reported(tmp_path: Path) -> None:
    root = _sdsd_tree(tmp_path)
    gt = root / "indoor_np" / "GT"
    (gt / "pair2" / "0002.npy").unlink()  # count mismatch + missing pair
    (gt / "pair13" / "0001.npy").write_bytes(b"\x93NUMPY truncated")  # unreadable
    np.save(gt / "pair13" / "0000.npy", np.zeros((7, 8, 3), np.uint8))  # size mismatch
    _npy_video(root / "indoor_np" / "input" / "pair99", 2, 10)  # input without GT
    report = validate(root, "sdsd")
    kinds = report.counts()
    assert kinds == {"count_mismatch": 1, "missing_frames": 1, "unreadable": 1, "size_mismatch": 1,
                     "missing_video": 1}
    text = "\n".join(map(str, report.issues))
    assert "pair2: 3 input vs 2 GT frames" in text and "no GT for 0002.npy" in text
    assert "pair13" in text and "0001.npy" in text and "pair99: no GT folder" in text
    quick = validate(root, "sdsd", decode=False)
    assert "unreadable" not in quick.counts() and quick.checked == 0
    with pytest.raises(InputError, match="no input/ and GT/"):
        validate(tmp_path / "indoor_np" / "input", "generic")


def test_cli_check_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _sdsd_tree(tmp_path)
    assert data_cli.run(_parse(data_cli, ["check", str(root), "--layout", "sdsd"], quiet=False)) == 0
    assert "no problems found" in capsys.readouterr().out
    assert data_cli.run(_parse(data_cli, ["check", str(root), "--layout", "sdsd"])) == 0
    assert capsys.readouterr().out == ""  # -q: no summary
    (root / "indoor_np" / "GT" / "pair2" / "0000.npy").unlink()
    assert data_cli.run(_parse(data_cli, ["check", str(root), "--layout", "sdsd"], quiet=False)) == 1
    out = capsys.readouterr().out
    assert "count mismatch: pair2: 3 input vs 2 GT frames" in out and "1 count mismatch" in out
    assert data_cli.run(_parse(data_cli, ["check", str(root), "--layout", "sdsd"])) == 1
    assert capsys.readouterr().out.splitlines() == [  # -q: the problems only
        "count mismatch: pair2: 3 input vs 2 GT frames", "missing frames: pair2: no GT for 0000.npy"]


def test_sdsd_convert_to_png_splits_by_protocol_and_flips_bgr(tmp_path: Path) -> None:
    root = _sdsd_tree(tmp_path / "sdsd")
    out = tmp_path / "png"
    assert data_cli.run(_parse(data_cli, ["convert", str(root), str(out), "--workers", "2"])) == 0
    pngs = sorted(str(p.relative_to(out)) for p in out.rglob("*.png"))
    assert len(pngs) == 12 and "eval/input/pair13/0001.png" in pngs and "train/GT/pair2/0002.png" in pngs
    rgb = cv2.imread(str(out / "eval" / "input" / "pair13" / "0001.png"))[:, :, ::-1]
    assert tuple(rgb[0, 0]) == (1, 0, 10)  # red = frame index, blue = 10: BGR npy became an RGB png
    original = build_dataset("sdsd", root, split="test", clip_len=3)
    converted = build_dataset("sdsd", out, split="test", clip_len=3)
    assert converted.videos == ["pair13"] and (original[0]["lq"] == converted[0]["lq"]).all()
    with pytest.raises(InputError, match="already exists"):
        convert_sdsd(root, out)


def test_synth_cli_writes_a_loadable_dataset(tmp_path: Path) -> None:
    out = tmp_path / "synth"
    args = _parse(synth_cli, [str(out), "--sources", "builtin:test", "--videos", "2", "--frames", "3",
                              "--size", "24", "32", "--seed", "4", "--flicker", "0.1"])
    assert synth_cli.run(args) == 0
    meta = json.loads((out / "synth.json").read_text())
    assert meta["config"]["flicker"] == 0.1 and len(meta["videos"]) == 2
    ds = build_dataset("generic", out, clip_len=3)
    assert len(ds.videos) == 2 and ds[0]["gt"].shape == (3, 3, 24, 32)
