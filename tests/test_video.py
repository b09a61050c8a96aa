"""tami.data.video: round trips, streaming memory, clear errors and atomic writes."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from silent_audio import write_silent_aac

from tami.data.video import list_frames, open_video, open_writer, read_image
from tami.errors import InputError


def _smooth_frames(count: int, height: int, width: int) -> list[np.ndarray]:
    """Moving textured pattern, float32 (H, W, 3) in [0, 1], with natural-video statistics: detail in luminance,
    mild low-frequency colour (4:2:0 chroma subsampling is what limits PSNR on strongly coloured detail)."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    frames = []
    for t in range(count):
        luma = 0.5 + 0.3 * np.sin((xx + 3 * t) / 5.0) * np.cos((yy - t) / 6.0) + 0.1 * np.sin((xx + yy) / 17.0)
        tint = np.stack([1.0 + 0.15 * np.sin(yy / 40.0), np.ones_like(yy), 1.0 - 0.15 * np.cos(xx / 50.0)], -1)
        frames.append(np.clip(luma[..., None] * tint, 0.0, 1.0).astype(np.float32))
    return frames


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((a.astype(np.float64) - b) ** 2)))


@pytest.mark.parametrize("size", [(64, 96), (63, 97)])
@pytest.mark.usefixtures("av")  # libx264 at crf 18 through PyAV
def test_mp4_round_trip_crf18_keeps_quality_fps_and_size(tmp_path: Path, size: tuple[int, int]) -> None:
    frames = _smooth_frames(12, *size)
    path = tmp_path / "clip.mp4"
    with open_writer(path, fps=29.97, crf=18) as writer:
        for frame in frames:
            writer.write(frame)
    reader = open_video(path)
    assert reader.info.kind == "file"
    assert abs(reader.info.fps - 29.97) < 1e-3
    assert (reader.info.height, reader.info.width) == size
    out = list(reader)
    assert len(out) == 12 and out[0].dtype == np.float32 and out[0].shape == (*size, 3)
    assert min(_psnr(a, b) for a, b in zip(out, frames)) > 35.0
    assert reader.frame_names()[:2] == ["000000", "000001"]


@pytest.mark.usefixtures("av")  # libx264rgb through PyAV
def test_lossless_h264_is_bit_exact(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (33, 47, 3), dtype=np.uint8) for _ in range(3)]
    with open_writer(tmp_path / "l.mkv", fps=24, lossless=True) as writer:
        for frame in frames:
            writer.write(frame)
    out = [np.rint(f * 255).astype(np.uint8) for f in open_video(tmp_path / "l.mkv")]
    assert all(np.array_equal(a, b) for a, b in zip(out, frames))


@pytest.mark.parametrize("bits", [8, 16])
def test_frame_folder_round_trip_is_exact(tmp_path: Path, bits: int) -> None:
    rng = np.random.default_rng(bits)
    scale = 2 ** bits - 1
    frames = [rng.integers(0, scale + 1, (9, 11, 3)).astype(np.float32) / scale for _ in range(3)]
    with open_writer(tmp_path / "frames", bit_depth=bits) as writer:
        for frame in frames:
            writer.write(frame)
    assert sorted(p.name for p in (tmp_path / "frames").iterdir()) == ["000000.png", "000001.png", "000002.png"]
    raw = cv2.imread(str(tmp_path / "frames" / "000000.png"), cv2.IMREAD_UNCHANGED)
    assert raw.dtype == (np.uint8 if bits == 8 else np.uint16)
    reader = open_video(tmp_path / "frames")
    assert reader.info.kind == "folder" and reader.info.count == 3 and reader.info.fps is None
    out = list(reader)
    assert all(np.array_equal(a, b) for a, b in zip(out, frames))
    with open_writer(tmp_path / "named") as writer:
        writer.write(frames[0], name="clip_a_0007")
        with pytest.raises(InputError, match="plain file stem"):
            writer.write(frames[1], name="../escape")
    assert [p.name for p in (tmp_path / "named").iterdir()] == ["clip_a_0007.png"]


def test_folder_natural_sort_gray_rgba_and_bgr_npy(tmp_path: Path) -> None:
    folder = tmp_path / "f"
    folder.mkdir()
    for i in (10, 2, 1):
        rgba = np.zeros((4, 5, 4), np.uint8)
        rgba[..., 2] = i  # red channel in OpenCV's BGRA order
        rgba[..., 3] = 7
        cv2.imwrite(str(folder / f"f{i}.png"), rgba)
    # The CLI tests may have switched off propagation of the "tami" logger: listen on the module logger itself.
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    log = logging.getLogger("tami.data.video")
    log.addHandler(handler)
    level = log.level
    log.setLevel(logging.INFO)
    try:
        reader = open_video(folder)
        frames = list(reader)
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
    assert reader.frame_names() == ["f1", "f2", "f10"]
    assert [round(f[0, 0, 0] * 255) for f in frames] == [1, 2, 10]
    assert frames[0].shape == (4, 5, 3)
    assert sum("alpha" in r.getMessage() for r in records) == 1
    gray = tmp_path / "g.png"
    cv2.imwrite(str(gray), np.full((3, 4), 51, np.uint8))
    assert np.allclose(read_image(gray), 0.2)
    npy = tmp_path / "x.npy"
    np.save(npy, np.array([[[10, 20, 30]]], np.uint8))
    assert np.allclose(read_image(npy, bgr_npy=True)[0, 0] * 255, [30, 20, 10])
    assert np.allclose(read_image(npy)[0, 0] * 255, [10, 20, 30])
    single = open_video(gray)
    assert single.info.kind == "image" and single.info.count == 1 and len(list(single)) == 1


def test_audio_is_copied_from_source(tmp_path: Path, av) -> None:
    source = write_silent_aac(tmp_path / "with_audio.mp4")
    with open_writer(tmp_path / "out.mp4", fps=10, audio_from=source) as writer:
        for frame in _smooth_frames(3, 16, 16):
            writer.write(frame)
    with av.open(str(tmp_path / "out.mp4")) as container:
        assert sorted(s.type for s in container.streams) == ["audio", "video"]


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RSS is read from /proc (Linux only)")
def test_long_video_is_streamed_with_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "long.mp4"
    base = _smooth_frames(1, 360, 640)[0]
    with open_writer(path, fps=30, crf=35) as writer:
        for t in range(300):
            writer.write(np.roll(base, 2 * t, axis=1))
    start = _rss_bytes()
    peak, count = start, 0
    for frame in open_video(path):
        count += 1
        peak = max(peak, _rss_bytes())
        assert frame.shape == (360, 640, 3)
    assert count == 300
    # all 300 float frames would take 830 MB
    assert peak - start < 100 * 2 ** 20


def _mp4_bytes(tmp_path: Path) -> bytes:
    with open_writer(tmp_path / "ok.mp4", fps=10) as writer:
        for frame in _smooth_frames(6, 32, 32):
            writer.write(frame)
    return (tmp_path / "ok.mp4").read_bytes()


def test_bad_inputs_give_one_clear_error_each(tmp_path: Path, av) -> None:
    data = _mp4_bytes(tmp_path)  # index (moov) at the front: decoding stops early
    (tmp_path / "trunc.mp4").write_bytes(data[: len(data) // 2])
    with av.open(str(tmp_path / "ok.mp4")) as src, av.open(str(tmp_path / "tail.mp4"), "w") as dst:
        out = dst.add_stream_from_template(src.streams.video[0])  # remux with the index at the end
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is not None:
                packet.stream = out
                dst.mux(packet)
    tail = (tmp_path / "tail.mp4").read_bytes()
    (tmp_path / "trunc_tail.mp4").write_bytes(tail[: len(tail) // 2])
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "corrupt.mp4").write_bytes(b"not a video" * 50)
    (tmp_path / "nothing").mkdir()
    (tmp_path / "nothing" / "notes.txt").write_text("x")
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    cv2.imwrite(str(mixed / "0.png"), np.zeros((4, 4, 3), np.uint8))
    cv2.imwrite(str(mixed / "1.png"), np.zeros((5, 4, 3), np.uint8))
    (tmp_path / "bad.png").write_bytes(b"\x89PNG garbage")
    cases = {"trunc.mp4": "truncated", "trunc_tail.mp4": "truncated", "empty.mp4": "empty", "corrupt.mp4": "corrupt",
             "nothing": "no frames", "bad.png": "cannot decode", "missing.mp4": "not found"}
    for name, words in cases.items():
        with pytest.raises(InputError, match=words):
            list(open_video(tmp_path / name))
    with pytest.raises(InputError, match="4x5, earlier frames are 4x4"):
        list(open_video(mixed))
    with pytest.raises(InputError, match="mixes frame formats"):
        (mixed / "2.jpg").write_bytes(b"")
        list_frames(mixed)


@pytest.mark.parametrize("name", ["out.mp4", "out_frames"])
def test_failed_write_leaves_no_output(tmp_path: Path, name: str) -> None:
    with pytest.raises(RuntimeError):
        with open_writer(tmp_path / name, fps=10) as writer:
            writer.write(np.zeros((8, 8, 3), np.float32))
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(InputError, match="one frame size"):
        with open_writer(tmp_path / name, fps=10) as writer:
            writer.write(np.zeros((8, 8, 3), np.float32))
            writer.write(np.zeros((8, 10, 3), np.float32))
    assert list(tmp_path.iterdir()) == []


def test_opencv_fallback_without_pyav(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tami.data.video._have_pyav", lambda: False)
    frames = _smooth_frames(5, 32, 48)
    with open_writer(tmp_path / "cv.mp4", fps=12) as writer:
        for frame in frames:
            writer.write(frame)
    reader = open_video(tmp_path / "cv.mp4")
    assert reader.info.fps == 12 and reader.info.count == 5
    assert min(_psnr(a, b) for a, b in zip(reader, frames)) > 25.0
