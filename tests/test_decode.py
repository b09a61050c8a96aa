"""tami.data.decode and tami.data.colour: real-world video files decoded as players show them.

Every case is built here with PyAV: a header that claims more frames than the stream holds, a corrupt packet in
mid-stream, colour tags (BT.709 full range, BT.601, untagged HD), 10-bit samples, rotation metadata, variable
frame rate and odd sizes. Pixel values are checked against the conversion formulas written out by hand.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from damaged_media import corrupt_packet, cut_tail, noisy_clip

from tami.data.colour import ColourSpec, guess_matrix, rgb_to_yuv, yuv_to_rgb
from tami.data.video import open_video, open_writer
from tami.errors import InputError

av = pytest.importorskip("av")


@pytest.fixture
def warnings() -> Iterator[list[logging.LogRecord]]:
    """Warnings logged by tami.data.* (listens on the module loggers: the CLI tests may stop propagation)."""
    records: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = records.append  # type: ignore[method-assign]
    loggers = [logging.getLogger(name) for name in ("tami.data.decode", "tami.data.video")]
    levels = [log.level for log in loggers]
    for log in loggers:  # a CLI test's -q may have raised the "tami" logger's level: set ours explicitly
        log.addHandler(handler)
        log.setLevel(logging.WARNING)
    yield records
    for log, level in zip(loggers, levels):
        log.removeHandler(handler)
        log.setLevel(level)


def _encode(path: Path, planes: list[tuple[np.ndarray, ...]], *, pix_fmt: str, colorspace: int | None = None,
            color_range: int | None = None, rate: int = 10, pts: list[int] | None = None) -> Path:
    """Write Y'CbCr planes losslessly (x264 at qp 0) with the given tags; ``pts`` in 1/rate units."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=rate)
        height, width = planes[0][0].shape
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        stream.options = {"qp": "0"}
        if colorspace is not None:
            stream.codec_context.colorspace = colorspace
        if color_range is not None:
            stream.codec_context.color_range = color_range
        for i, (y, u, v) in enumerate(planes):
            frame = av.VideoFrame(width, height, pix_fmt)
            for plane, data in zip(frame.planes, (y, u, v)):
                buffer = np.frombuffer(plane, dtype=data.dtype).reshape(plane.height, -1)
                buffer[:, : plane.width] = data
            frame.pts = i if pts is None else pts[i]
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def _flat(height: int, width: int, y: int, u: int, v: int, *, chroma: tuple[int, int] = (2, 2),
          dtype: type = np.uint8) -> tuple[np.ndarray, ...]:
    ch, cw = -(-height // chroma[0]), -(-width // chroma[1])
    return (np.full((height, width), y, dtype), np.full((ch, cw), u, dtype), np.full((ch, cw), v, dtype))


# -- colour -------------------------------------------------------------------------------------------------------

def _bt709_full(y: float, cb: float, cr: float) -> np.ndarray:
    """BT.709 from its published coefficients, 8-bit full range: Y/255, (C - 128)/255."""
    yn, pb, pr = y / 255, (cb - 128) / 255, (cr - 128) / 255
    return np.array([yn + 1.5748 * pr, yn - 0.187324 * pb - 0.468124 * pr, yn + 1.8556 * pb])


def _bt601_limited(y: float, cb: float, cr: float, bits: int = 8) -> np.ndarray:
    """BT.601 from its published coefficients, limited range: (Y - 16)/219, (C - 128)/224 (scaled for depth)."""
    unit = 2 ** (bits - 8)
    yn, pb, pr = (y - 16 * unit) / (219 * unit), (cb - 128 * unit) / (224 * unit), (cr - 128 * unit) / (224 * unit)
    return np.array([yn + 1.402 * pr, yn - 0.344136 * pb - 0.714136 * pr, yn + 1.772 * pb])


def test_bt709_full_range_clip_is_read_with_its_tags(tmp_path: Path) -> None:
    path = _encode(tmp_path / "709full.mp4", [_flat(16, 24, 120, 90, 180, chroma=(1, 1))] * 2,
                   pix_fmt="yuv444p", colorspace=1, color_range=2)
    reader = open_video(path)
    assert reader.info.colour == "BT.709 full 8-bit"
    frames = list(reader)
    assert len(frames) == 2
    np.testing.assert_allclose(frames[0][5, 7], _bt709_full(120, 90, 180), atol=2e-6)
    # Read as BT.601 limited (what a tag-blind decoder does) the pixel would be 9 code values off.
    assert np.abs(_bt601_limited(120, 90, 180) - _bt709_full(120, 90, 180)).max() > 0.035


def test_untagged_sd_is_bt601_and_untagged_hd_is_bt709(tmp_path: Path) -> None:
    sd = open_video(_encode(tmp_path / "sd.mp4", [_flat(16, 24, 120, 90, 170)], pix_fmt="yuv420p"))
    assert sd.info.colour == "BT.601 limited 8-bit"
    np.testing.assert_allclose(next(iter(sd))[3, 3], np.clip(_bt601_limited(120, 90, 170), 0, 1), atol=2e-6)
    hd = open_video(_encode(tmp_path / "hd.mp4", [_flat(720, 1280, 120, 90, 170)], pix_fmt="yuv420p"))
    assert hd.info.colour == "BT.709 limited 8-bit"
    yn, pb, pr = (120 - 16) / 219, (90 - 128) / 224, (170 - 128) / 224
    expected = [yn + 1.5748 * pr, yn - 0.187324 * pb - 0.468124 * pr, yn + 1.8556 * pb]
    np.testing.assert_allclose(next(iter(hd))[300, 600], expected, atol=2e-6)
    assert guess_matrix(None, 1280, 720) == guess_matrix(2, 1024, 578) == "bt709"
    assert guess_matrix(None, 720, 576) == "bt601" and guess_matrix(9, 64, 64) == "bt2020"
    assert guess_matrix(1, 64, 64) == "bt709" and guess_matrix(6, 3840, 2160) == "bt601"


def test_ten_bit_input_is_read_at_full_precision(tmp_path: Path) -> None:
    # Two luma levels one 10-bit step apart: an 8-bit path would merge them.
    y = np.full((16, 24), 501, np.uint16)
    y[:, 12:] = 502
    planes = (y, np.full((8, 12), 600, np.uint16), np.full((8, 12), 400, np.uint16))
    reader = open_video(_encode(tmp_path / "ten.mp4", [planes], pix_fmt="yuv420p10le"))
    assert reader.info.colour == "BT.601 limited 10-bit" and reader.info.bit_depth == 16
    frame = next(iter(reader))
    np.testing.assert_allclose(frame[4, 3], _bt601_limited(501, 600, 400, bits=10), atol=2e-6)
    np.testing.assert_allclose(frame[4, 20], _bt601_limited(502, 600, 400, bits=10), atol=2e-6)
    step = frame[4, 20] - frame[4, 3]
    np.testing.assert_allclose(step, np.full(3, 1 / 876), rtol=1e-3)  # one 10-bit step of limited-range luma


def test_writer_tags_bt709_and_reads_back_the_same_colours(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    colour = rng.uniform(0.1, 0.9, 3).astype(np.float32)
    frame = np.broadcast_to(colour, (32, 48, 3)).copy()
    with open_writer(tmp_path / "w.mp4", fps=10, crf=0) as writer:
        writer.write(frame)
    with av.open(str(tmp_path / "w.mp4")) as container:
        context = container.streams.video[0].codec_context
        assert (int(context.colorspace), int(context.color_range)) == (1, 1)  # BT.709, limited
    back = next(iter(open_video(tmp_path / "w.mp4")))
    np.testing.assert_allclose(back[10, 10], colour, atol=1.5 / 255)
    # The in-memory conversion pair is consistent too (8-bit rounding aside).
    spec = ColourSpec("bt2020", full_range=True, bits=10)
    np.testing.assert_allclose(yuv_to_rgb(*rgb_to_yuv(frame, spec, subsample=True), spec)[5, 5], colour, atol=2e-3)


# -- geometry and timing -----------------------------------------------------------------------------------------

def _rotate_tkhd(path: Path, matrix: tuple[int, ...]) -> None:
    """Write a display matrix into the mp4 track header, as phones do for portrait video."""
    data = bytearray(path.read_bytes())
    at = data.find(b"tkhd")
    assert at > 0 and data[at + 4] == 0  # version 0 header
    offset = at + 4 + 4 + 20 + 8 + 8  # type, version/flags, times/ids/duration, reserved, layer..volume
    data[offset:offset + 36] = struct.pack(">9i", *matrix)
    path.write_bytes(bytes(data))


def test_rotation_metadata_stands_phone_video_upright(tmp_path: Path) -> None:
    y = np.full((16, 32), 40, np.uint8)
    y[:4, :4] = 220  # a bright mark in the stored top-left corner
    path = _encode(tmp_path / "phone.mp4", [(y, np.full((8, 16), 128, np.uint8), np.full((8, 16), 128, np.uint8))],
                   pix_fmt="yuv420p")
    _rotate_tkhd(path, (0, 0x10000, 0, -0x10000, 0, 0, 0, 0, 0x40000000))  # "rotate 90" (clockwise display)
    reader = open_video(path)
    assert reader.info.rotation == 90 and (reader.info.height, reader.info.width) == (32, 16)
    frame = next(iter(reader))
    assert frame.shape == (32, 16, 3)
    assert frame[1, 14].mean() > 0.8 and frame[1, 1].mean() < 0.3  # clockwise: top-left went to top-right


def test_variable_frame_rate_keeps_timestamps_through_a_rewrite(tmp_path: Path) -> None:
    times = [0, 1, 3, 4, 9, 10]  # in 1/30 s: gaps of 1, 2, 1, 5, 1 frames
    planes = [_flat(15, 21, 60 + 20 * i, 128, 128, chroma=(1, 1)) for i in range(len(times))]  # odd size
    source = _encode(tmp_path / "vfr.mp4", planes, pix_fmt="yuv444p", rate=30, pts=times)
    reader = open_video(source)
    got = list(reader.timed())
    assert (reader.info.height, reader.info.width) == (15, 21)
    seconds = [float(f.pts * f.time_base) for f in got]
    np.testing.assert_allclose(seconds, [t / 30 for t in times], atol=1e-9)
    with open_writer(tmp_path / "copy.mp4", fps=reader.info.fps, time_base=reader.info.time_base) as writer:
        for frame in got:
            writer.write(frame.image, pts=frame.pts)
    again = open_video(tmp_path / "copy.mp4")
    assert (again.info.height, again.info.width) == (15, 21)
    np.testing.assert_allclose([float(f.pts * f.time_base) for f in again.timed()], seconds, atol=1e-9)


# -- tolerant decoding ---------------------------------------------------------------------------------------------

def test_a_header_claiming_more_frames_than_the_stream_holds(tmp_path: Path, warnings: list[logging.LogRecord]) -> None:
    cut = cut_tail(noisy_clip(tmp_path / "ok.mp4", 8), tmp_path / "cut.mp4")  # the index still claims 8 frames
    reader = open_video(cut)
    assert reader.info.count == 8  # what the header claims: a hint
    frames = list(reader)
    assert 2 <= len(frames) < 8 and reader.report.read == len(frames)
    np.testing.assert_allclose([f.mean() for f in frames], [0.1 * (i + 1) for i in range(len(frames))], atol=0.01)
    messages = [r.getMessage() for r in warnings]
    assert len(messages) == 1, messages
    assert "claims 8 frames" in messages[0] and f"used its {len(frames)} decodable frames" in messages[0]
    with pytest.raises(InputError, match="truncated: the header claims 8 frames"):
        list(open_video(cut, strict=True))
    assert open_video(cut).frame_names() == [f"{i:06d}" for i in range(len(frames))]


def test_a_corrupt_packet_mid_stream_is_skipped_and_filled(tmp_path: Path, warnings: list[logging.LogRecord]) -> None:
    bad = corrupt_packet(noisy_clip(tmp_path / "ok.mp4", 8), tmp_path / "bad.mp4", 4)
    reader = open_video(bad)
    got = list(reader.timed())
    assert len(got) == 8 and [f.filled for f in got] == [False] * 4 + [True] + [False] * 3
    assert (reader.report.read, reader.report.skipped, reader.report.filled) == (7, 1, 1)
    np.testing.assert_array_equal(got[4].image, got[3].image)  # held: the previous frame repeated
    clean = list(open_video(tmp_path / "ok.mp4").timed())
    assert [f.pts for f in got] == [f.pts for f in clean]  # source timing kept
    np.testing.assert_allclose(got[5].image, clean[5].image, atol=0.02)
    messages = [r.getMessage() for r in warnings]
    assert len(messages) == 1 and "1 frame(s) could not be decoded" in messages[0], messages
    with pytest.raises(InputError, match="corrupt: 1 frame"):
        list(open_video(bad, strict=True))
