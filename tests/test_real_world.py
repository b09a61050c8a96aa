"""Real-world media through the commands: tolerant decoding that keeps the work, --strict that leaves nothing,
checks before the first frame, memory-bounded tiles (4K still and clip), global options anywhere, reporting."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest
from toy_backbone import one_thread  # noqa: F401  (one torch thread for the module: tiny tensors gain nothing from more)
import torch
from damaged_media import corrupt_packet, cut_tail, noisy_clip
from silent_audio import write_silent_aac
from toy_backbone import ToyBackbone, small_config

from tami.adapter import TAMI
from tami.adapter.io import save_model
from tami.backbones import create
from tami.budget import GIB
from tami.cli.main import build_parser, main
from tami.data.video import open_video, open_writer
from tami.enhance import EnhanceOptions, Enhancer
from tami.errors import InputError
from tami.tiling import TileBlender, tile_grid

av = pytest.importorskip("av")



def _tiny_model() -> TAMI:
    torch.manual_seed(0)
    bb = create("retinexformer", n_feat=8, num_blocks=[1, 1, 1])
    return TAMI.from_preset(bb, key_dim=8, value_dim=8, hidden_dim=8, illu_dim=8, igfe_blocks=1, igfe_dim=16,
                            heads=2, igfe_pool=2, memory_scale=0.5).eval()


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_model(_tiny_model(), tmp_path_factory.mktemp("model") / "tiny.safetensors")


def _everything(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


# -- options and reporting ----------------------------------------------------------------------------------------

def test_global_options_work_after_the_subcommand(tmp_path: Path, model_file: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    source = noisy_clip(tmp_path / "dark.mp4", 3)
    capsys.readouterr()
    assert main(["enhance", str(source), "-o", str(tmp_path / "a.mp4"), "--model", str(model_file), "-q"]) == 0
    assert capsys.readouterr().err == ""
    assert main(["-q", "enhance", str(source), "-o", str(tmp_path / "b.mp4"), "--model", str(model_file)]) == 0
    assert capsys.readouterr().err == ""
    assert main(["enhance", "missing.mp4", "--debug", "--model", str(model_file)]) == 1
    assert "Traceback" in capsys.readouterr().err  # --debug after the command is honoured too
    parser = build_parser()
    for argv in (["info", "-q"], ["-q", "info"], ["data", "check", "root", "--debug", "-q"],
                 ["data", "-q", "check", "r"], ["timeslice", "--method", "a=b", "--x", "1", "-o", "o", "-q", "--debug"]):
        args = parser.parse_args(argv)
        assert args.quiet and (args.debug == ("--debug" in argv)), argv
    assert not parser.parse_args(["info"]).quiet


def test_truncated_video_keeps_the_work_with_one_warning_and_a_report(tmp_path: Path, model_file: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    cut = cut_tail(noisy_clip(tmp_path / "ok.mp4", 8), tmp_path / "cut.mp4")
    held = sum(1 for _ in open_video(cut))
    assert 2 <= held < 8
    capsys.readouterr()
    assert main(["enhance", str(cut), "-o", str(tmp_path / "out.mp4"), "--model", str(model_file)]) == 0
    err = _lines(capsys.readouterr().err)
    warnings = [line for line in err if line.startswith("warning:")]
    assert len(warnings) == 1 and "claims 8 frames" in warnings[0] and f"holds {held}" in warnings[0], err
    report = [line for line in err if f"{held} frames read, " in line and f" skipped, {held} written, " in line]
    assert len(report) == 1 and "frames/s" in report[0], err
    assert any(line.startswith("Enhanced 1 of 1 inputs") for line in err), err
    assert sum(1 for _ in open_video(tmp_path / "out.mp4")) == held


def test_corrupt_packet_is_filled_and_the_output_keeps_source_timing(tmp_path: Path, model_file: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    audio = write_silent_aac(tmp_path / "sound.m4a")
    bad = corrupt_packet(noisy_clip(tmp_path / "ok.mp4", 8, audio=audio), tmp_path / "bad.mp4", 5)
    capsys.readouterr()
    assert main(["enhance", str(bad), "-o", str(tmp_path / "out.mp4"), "--model", str(model_file)]) == 0
    err = _lines(capsys.readouterr().err)
    assert any("7 frames read, 1 skipped, 8 written" in line for line in err), err
    source = [(f.pts * f.time_base) for f in open_video(bad).timed()]
    written = open_video(tmp_path / "out.mp4")
    assert [(f.pts * f.time_base) for f in written.timed()] == source  # same timing: in sync with the audio
    with av.open(str(tmp_path / "out.mp4")) as container:
        assert sorted(s.type for s in container.streams) == ["audio", "video"]
    assert main(["-q", "enhance", str(bad), "-o", str(tmp_path / "frames"), "--model", str(model_file)]) == 0
    names = sorted(p.name for p in (tmp_path / "frames").iterdir())
    assert len(names) == 8
    fill, before = (cv2.imread(str(tmp_path / "frames" / names[i])) for i in (5, 4))
    np.testing.assert_array_equal(fill, before)  # the skipped frame holds the previous enhanced frame


# -- strict: an error, and nothing written ---------------------------------------------------------------------

@pytest.mark.parametrize("damage", ["cut", "corrupt"])
def test_strict_failures_leave_nothing_behind(tmp_path: Path, model_file: Path, damage: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    clip = noisy_clip(tmp_path / "ok.mp4", 8)
    gt_dir, pred_dir = tmp_path / "gt", tmp_path / "pred"
    gt_dir.mkdir()
    pred_dir.mkdir()
    bad = (cut_tail(clip, gt_dir / "clip.mp4") if damage == "cut"
           else corrupt_packet(clip, gt_dir / "clip.mp4", 4))
    (pred_dir / "clip.mp4").write_bytes(clip.read_bytes())
    out = tmp_path / "out"
    out.mkdir()
    commands = [
        ["enhance", str(bad), "-o", str(out / "e.mp4"), "--model", str(model_file), "--compare"],
        ["enhance", str(bad), "-o", str(out / "frames"), "--model", str(model_file)],
        ["timeslice", "--method", f"a={bad}", "--method", f"b={clip}", "--x", "3", "-o", str(out / "slices")],
        ["report", "--method", f"a={bad}", "--method", f"b={clip}", "-o", str(out / "report")],
        ["evaluate", "--gt", str(gt_dir), "--pred", str(pred_dir), "--metrics", "psnr", "-o", str(out / "eval")],
        ["demo", str(bad), "-o", str(out / "demo"), "--frames", "8", "--device", "cpu", "--model", str(model_file)],
    ]
    word = "truncated" if damage == "cut" else "corrupt"
    for argv in commands:
        capsys.readouterr()
        assert main([*argv, "--strict", "-q"]) == 1, argv
        err = _lines(capsys.readouterr().err)
        assert len(err) == 1 and err[0].startswith("error: ") and word in err[0], (argv, err)
        assert _everything(out) == [], argv
    # Tolerant, the same calls use every decodable frame (the header's count is only a hint).
    assert main(["-q", "enhance", str(bad), "-o", str(out / "e.mp4"), "--model", str(model_file)]) == 0
    assert (out / "e.mp4").is_file()
    assert main(["-q", *commands[2]]) == 0 and (out / "slices" / "grid.png").is_file()
    slice_a = cv2.imread(str(out / "slices" / "a_slice.png"))
    assert slice_a.shape[1] == sum(1 for _ in open_video(bad))  # one column per frame that is there
    frames = str(slice_a.shape[1])  # the prediction holds all 8: score the GT's frames
    assert main(["-q", *commands[4], "--frames", frames]) == 0 and (out / "eval" / "results.json").is_file()


# -- checks before the first frame ---------------------------------------------------------------------------------

def test_everything_checkable_is_checked_before_the_first_frame(tmp_path: Path, model_file: Path,
                                                                capsys: pytest.CaptureFixture[str],
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    big = noisy_clip(tmp_path / "big.mp4", 2, size=(320, 480))
    small = noisy_clip(tmp_path / "small.mp4", 2)
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "broken.mp4").write_bytes(b"not a video" * 40)
    events: list[str] = []
    step, check = Enhancer.step, Enhancer.check
    monkeypatch.setattr(Enhancer, "step", lambda self, frame: events.append("step") or step(self, frame))
    monkeypatch.setattr(Enhancer, "check", lambda self, *a, **k: events.append("check") or check(self, *a, **k))
    out = tmp_path / "out"
    capsys.readouterr()
    # Every input is checked before the first frame of any is enhanced; the good one is still done.
    assert main(["-q", "enhance", str(small), str(tmp_path / "broken.mp4"), "-o", str(tmp_path / "all"),
                 "--model", str(model_file)]) == 1
    assert "broken.mp4" in capsys.readouterr().err
    assert events[:2] == ["check", "check"] and "step" in events and (tmp_path / "all" / "small.mp4").is_file()
    events.clear()
    assert main(["-q", "enhance", str(small), "-o", str(tmp_path / "a_file" / "x.mp4"), "--model",
                 str(model_file)]) == 1
    assert "cannot write" in capsys.readouterr().err and "step" not in events
    # Not even the smallest tiles fit: refused with a --max-side that fits, before any frame. 22 MiB: less than the
    # full-size frame buffers, codec queues and one 64-px tile of this model need, more than a 128-px frame does.
    assert main(["-q", "enhance", str(big), "-o", str(out / "o.mp4"), "--model", str(model_file),
                 "--memory-limit", "0.022"]) == 1
    err = _lines(capsys.readouterr().err)
    assert len(err) == 1 and "too little even for 64-px tiles" in err[0] and "--max-side" in err[0], err
    assert "step" not in events and not out.exists()
    enhancer = Enhancer(_tiny_model(), EnhanceOptions(device="cpu", memory_limit=0.022))
    with pytest.raises(InputError, match="--max-side"):
        enhancer.check(big, [out / "o.mp4"])
    hint = int(str(err[0]).rsplit("--max-side ", 1)[1].split()[0])
    fitted = Enhancer(_tiny_model(), EnhanceOptions(device="cpu", memory_limit=0.022, max_side=hint))
    fitted.check(big, [out / "o.mp4"])  # the suggested size does fit


def test_a_model_for_other_than_rgb_frames_is_refused_before_any_work() -> None:
    torch.manual_seed(0)
    raw = TAMI.from_preset(create("retinexformer", in_channels=4, n_feat=8, num_blocks=[1, 1, 1]))
    with pytest.raises(InputError, match="takes 4-channel input"):
        Enhancer(raw, EnhanceOptions(device="cpu"))


# -- tiles --------------------------------------------------------------------------------------------------------

def test_tile_grid_covers_the_frame_and_blending_is_seamless() -> None:
    tiles = tile_grid(100, 150, 64, 16)
    covered = np.zeros((100, 150), int)
    for t in tiles:
        covered[t.top:t.bottom, t.left:t.right] += 1
        assert t.bottom - t.top == 64 and t.right - t.left == 64
    assert covered.min() >= 1
    blender = TileBlender(100, 150, 64, 16)
    frame = np.random.default_rng(0).random((100, 150, 3), dtype=np.float32)
    np.testing.assert_allclose(blender.run(frame, lambda i, window: window), frame, atol=1e-6)
    # Each window returns its own constant: away from overlaps the output is that constant, and across an overlap
    # it ramps in steps of at most 1/16 of the difference (no seam).
    out = blender.run(frame, lambda i, window: np.full_like(window, float(i)))
    assert out[5, 5, 0] == 0.0 and out[-5, -5, 0] == len(tiles) - 1
    steps = max(np.abs(np.diff(out[:, :, 0], axis=0)).max(), np.abs(np.diff(out[:, :, 0], axis=1)).max())
    assert steps <= (len(tiles) - 1) / 16 + 1e-5
    with pytest.raises(InputError, match="cannot overlap"):
        tile_grid(10, 10, 32, 16)


def test_too_little_memory_for_a_whole_frame_gives_tiles_with_a_state_each(tmp_path: Path) -> None:
    probe = Enhancer(_tiny_model(), EnhanceOptions(device="cpu"))
    h, w = 240, 360
    whole = probe.memory_model().frame_bytes(h * w)
    limit = (0.6 * whole + 12 * 6 * h * w) / 0.9 / GIB  # room for 60 % of a whole frame
    enhancer = Enhancer(_tiny_model(), EnhanceOptions(device="cpu", memory_limit=limit, scene_cut=None))
    plan = enhancer.plan(h, w)
    assert plan.tile is not None and plan.need <= limit * GIB
    frame = np.random.default_rng(0).random((h, w, 3), dtype=np.float32) * 0.3
    tiled = enhancer.step(frame)
    assert tiled.shape == (h, w, 3)
    assert len(enhancer._states) == len(tile_grid(h, w, plan.tile, plan.overlap, 4))
    reference = Enhancer(_tiny_model(), EnhanceOptions(device="cpu", tile=max(h, w))).step(frame)  # one tile: whole
    assert np.abs(tiled - reference).mean() < 0.01  # the same enhancement, up to context at tile edges


def _toy_enhancer(**options: object) -> Enhancer:
    torch.manual_seed(0)
    model = TAMI(ToyBackbone(2), small_config(igfe_blocks=1)).eval()
    return Enhancer(model, EnhanceOptions(device="cpu", backbone_only=True, scene_cut=None, **options))


def _uhd(seed: int) -> np.ndarray:
    """A smooth dark 3840x2160 frame (compresses well, so encoding stays fast)."""
    yy, xx = np.mgrid[0:2160, 0:3840].astype(np.float32)
    return (0.2 + 0.1 * np.sin(xx / 97.0 + seed) * np.cos(yy / 61.0))[..., None].repeat(3, axis=2)


def test_4k_still_and_4k_clip_run_in_tiles_within_a_memory_limit(tmp_path: Path) -> None:
    still = tmp_path / "still.bmp"  # uncompressed: the test pays for tiles, not for png compression
    cv2.imwrite(str(still), np.rint(_uhd(0) * 255).astype(np.uint8))
    with open_writer(tmp_path / "clip.mp4", fps=24) as writer:
        for seed in range(2):
            writer.write(_uhd(seed))
    enhancer = _toy_enhancer(memory_limit=1.3)
    stats = enhancer.enhance_video(still, tmp_path / "still_out.bmp")
    plan = stats.plan
    assert plan is not None and plan.tile is not None and plan.need <= 1.3 * GIB
    out = cv2.imread(str(tmp_path / "still_out.bmp"))[:, :, ::-1] / 255.0
    assert out.shape == (2160, 3840, 3)
    # This convolutional model is local: around the first seam the tiles agree with a whole-frame run.
    tiles = tile_grid(2160, 3840, plan.tile, plan.overlap, align=4)
    assert all(t.left % 4 == 0 and t.top % 4 == 0 for t in tiles)  # on the stride-4 backbone's grid
    start = (tiles[0].right - plan.overlap - 100) // 4 * 4
    rows, cols, margin = slice(100, 400), slice(start, start + 300), 32
    window = next(iter(open_video(still)))[rows.start - margin:rows.stop + margin,
                                           cols.start - margin:cols.stop + margin]
    whole = _toy_enhancer().step(window)[margin:-margin, margin:-margin]
    assert np.abs(out[rows, cols] - whole).max() < 3 / 255
    stats = enhancer.enhance_video(tmp_path / "clip.mp4", tmp_path / "clip_out.mp4")
    assert (stats.read, stats.frames) == (2, 2) and stats.plan.tile is not None
    written = open_video(tmp_path / "clip_out.mp4")
    assert (written.info.width, written.info.height) == (3840, 2160) and sum(1 for _ in written) == 2


@pytest.mark.skipif(os.name != "posix", reason="reads /proc")
def test_plan_reports_need_and_free_memory(tmp_path: Path) -> None:
    plan = _toy_enhancer().plan(1080, 1920)
    assert plan.tile is None and plan.available is not None and plan.need > 0
    assert "1920x1080 whole" in plan.describe()
