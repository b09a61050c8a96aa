"""Decode video files with PyAV the way players do: to the end of the stream, tolerating what can be tolerated.

* The container's frame count is a hint (a progress-bar total). The stream is decoded to its last decodable frame;
  a stream holding fewer frames than its header claims is reported once, with both counts.
* A packet that does not decode (a corrupt packet mid-stream) is skipped and counted. Frames carry their
  presentation timestamps, and the place of a skipped frame is kept as a *filled* frame (a repeat of the previous
  decoded frame at the skipped frame's timestamp), so outputs keep the source's timing and audio sync.
  Undecodable packets before the first decoded frame are counted but not filled; those after the last one mean
  the file is cut short and are reported with the early end.
* Strict mode turns either of these into an :class:`~tami.errors.InputError`.
* Colour: the Y'CbCr → RGB matrix and range come from the stream's tags (:mod:`tami.data.colour`); 10/12-bit
  samples are converted from their stored integers in float32. Rotation metadata (the display matrix) is applied,
  so phone videos stand upright. Variable frame rates keep their timestamps; odd sizes come out exact.
"""

from __future__ import annotations

import heapq
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from .colour import ColourSpec, gray_to_rgb, guess_matrix, yuv_to_rgb

logger = logging.getLogger(__name__)

_PLANAR_YUV = re.compile(r"^yuv(j?)(420|422|444|440|411|410)p(\d+)?(le)?$")
_GRAY = re.compile(r"^gray(\d+)?(le)?$")
_OPEN_HINT = ("re-encode it (e.g. ffmpeg -i IN -c:v libx264 OUT.mp4) or extract its frames to a folder")


@dataclass(frozen=True)
class StreamInfo:
    """What the first decoded frame and the container say about a video stream.

    Attributes:
        fps: average frame rate (None when the container does not know it).
        header_count: frame count the container claims (None when it claims none): a hint, not a promise.
        height, width: displayed size (after rotation).
        rotation: clockwise degrees applied to the stored frames (0, 90, 180, 270).
        colour: how Y'CbCr maps to RGB (None for RGB/palette streams).
        time_base: unit of the frames' timestamps.
        pixel_format: the decoder's pixel format (e.g. ``yuv420p10le``).
    """

    fps: float | None
    header_count: int | None
    height: int
    width: int
    rotation: int
    colour: ColourSpec | None
    time_base: Fraction | None
    pixel_format: str


@dataclass
class DecodeReport:
    """What decoding one video met; complete once its frames have been iterated to the end.

    Attributes:
        read: frames decoded. skipped: frames lost to undecodable packets before or between decoded frames (those
        between are filled). filled: frames that stand in for skipped ones. trailing: undecodable packets after the
        last decoded frame (a cut-off file). header_count: frames the container claims.
    """

    header_count: int | None = None
    read: int = 0
    skipped: int = 0
    filled: int = 0
    trailing: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def ended_early(self) -> bool:
        """The stream ends before its header's frame count, or with undecodable packets."""
        claimed = self.header_count is not None and self.read + self.skipped < self.header_count
        return claimed or self.trailing > 0


@dataclass(frozen=True)
class TimedFrame:
    """One output position of a video: the RGB frame and its presentation time.

    Attributes:
        image: ``(H, W, 3) float32`` RGB in ``[0, 1]``.
        pts: timestamp in ``time_base`` units (None when the stream has none).
        time_base: unit of ``pts``.
        filled: stands in for a frame that could not be decoded (``image`` repeats the previous frame).
    """

    image: np.ndarray
    pts: int | None
    time_base: Fraction | None
    filled: bool = False


def _plane(plane: Any, dtype: type) -> np.ndarray:
    """One plane of a PyAV frame as a ``(height, width)`` array (line padding dropped)."""
    itemsize = np.dtype(dtype).itemsize
    data = np.frombuffer(plane, dtype=dtype)
    return data.reshape(plane.height, plane.line_size // itemsize)[:, : plane.width]


def colour_spec(frame: Any) -> ColourSpec | None:
    """The colour mapping of a decoded PyAV frame from its tags (None for RGB, palette and other formats)."""
    name = frame.format.name
    yuv, gray = _PLANAR_YUV.match(name), _GRAY.match(name)
    if yuv is None and gray is None:
        return None
    bits = int((yuv or gray).group(3 if yuv else 1) or 8)
    full = (yuv is not None and yuv.group(1) == "j") or int(frame.color_range or 0) == 2
    return ColourSpec(guess_matrix(int(frame.colorspace or 2), frame.width, frame.height), full, bits)


def frame_to_rgb(frame: Any) -> np.ndarray:
    """A decoded PyAV frame as stored (no rotation) to ``(H, W, 3) float32`` RGB in ``[0, 1]``."""
    spec = colour_spec(frame)
    if spec is None:
        if frame.format.name.startswith(("yuv", "nv", "uyvy", "yuyv", "p0", "p2")):  # other Y'CbCr layouts
            return frame_to_rgb(frame.reformat(format="yuv444p16le"))
        deep = max(c.bits for c in frame.format.components) > 8
        rgb = frame.to_ndarray(format="rgb48le" if deep else "rgb24")
        return rgb.astype(np.float32) / np.float32(65535.0 if deep else 255.0)
    dtype = np.uint8 if spec.bits == 8 else np.uint16
    if _GRAY.match(frame.format.name):
        return gray_to_rgb(_plane(frame.planes[0], dtype), spec)
    y, u, v = (_plane(frame.planes[i], dtype) for i in range(3))
    return yuv_to_rgb(y, u, v, spec)


def _rotation(frame: Any) -> int:
    """Clockwise display rotation of a frame in degrees (0, 90, 180, 270), from its display matrix."""
    angle = getattr(frame, "rotation", 0) or 0  # counter-clockwise, as FFmpeg reports it
    return int(round(-float(angle) / 90.0)) % 4 * 90


def _rotate(image: np.ndarray, clockwise: int) -> np.ndarray:
    return image if clockwise == 0 else np.ascontiguousarray(np.rot90(image, k=-(clockwise // 90)))


def _open(path: Path) -> tuple[Any, Any]:
    import av

    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot open video {path}: the file is corrupt, truncated or in an unsupported format "
                         f"({exc}); {_OPEN_HINT}") from None
    if not container.streams.video:
        container.close()
        raise InputError(f"{path} holds no video stream; give a video file")
    stream = container.streams.video[0]
    return container, stream


class FileDecoder:
    """Stream the frames of one video file through PyAV with tolerant (or strict) decoding.

    Opening reads the header and decodes the first frame (:attr:`info`); each :meth:`frames` call decodes the file
    again from its start and refreshes :attr:`report`.

    Raises:
        InputError: the file cannot be opened or holds no decodable frame.
    """

    def __init__(self, path: str | Path, *, strict: bool = False) -> None:
        self.path = Path(path)
        self.strict = strict
        self.report = DecodeReport()
        container, stream = _open(self.path)
        try:
            first = next(self._decoded(container, stream, DecodeReport()), None)
            time_base = stream.time_base
            rate = stream.average_rate or stream.guessed_rate
            header = int(stream.frames or 0)
        finally:
            container.close()
        if first is None:
            raise InputError(f"video {self.path} has no decodable frames: the file is corrupt or truncated; "
                             f"{_OPEN_HINT}")
        rotation = _rotation(first)
        image = _rotate(frame_to_rgb(first), rotation)
        self.info = StreamInfo(
            fps=float(rate) if rate and rate > 0 else None, header_count=header if header > 0 else None,
            height=image.shape[0], width=image.shape[1], rotation=rotation, colour=colour_spec(first),
            time_base=Fraction(time_base) if time_base is not None else None,
            pixel_format=first.format.name,
        )
        self.report.header_count = self.info.header_count
        logger.debug("%s: %s, %dx%d, %s, rotation %d", self.path, self.info.pixel_format, self.info.width,
                     self.info.height, self.info.colour.describe() if self.info.colour else "RGB",
                     self.info.rotation)

    @staticmethod
    def _decoded(container: Any, stream: Any, report: DecodeReport,
                 sent: list[int] | None = None) -> Iterator[Any]:
        """Decoded PyAV frames; records the pts of every packet sent in ``sent`` and errors in ``report``."""
        import av

        codec = stream.codec_context
        packets = container.demux(stream)
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                break
            except (av.FFmpegError, OSError) as exc:  # a cut-off file: the demuxer cannot read on
                report.errors.append(f"demuxing stopped: {exc}")
                break
            if packet.size == 0 or (packet.dts is None and packet.pts is None):
                continue
            # Edit-list pre-roll packets are decoded but never shown: no frame is expected from them.
            if sent is not None and packet.pts is not None and not getattr(packet, "is_discard", False):
                heapq.heappush(sent, int(packet.pts))
            try:
                yield from codec.decode(packet)
            except av.FFmpegError as exc:
                report.errors.append(f"packet at pts {packet.pts}: {exc}")
        try:
            yield from codec.decode(None)
        except av.FFmpegError as exc:
            report.errors.append(f"flushing the decoder: {exc}")

    def frames(self) -> Iterator[TimedFrame]:
        """Yield every output position from the start: decoded frames and fills for skipped ones, in time order.

        Raises:
            InputError: in strict mode, at the first skipped frame or when the stream ends before its header count;
                a frame whose size differs from the first.
        """
        report = self.report = DecodeReport(header_count=self.info.header_count)
        container, stream = _open(self.path)
        sent: list[int] = []
        time_base = self.info.time_base
        previous: TimedFrame | None = None
        size = (self.info.height, self.info.width)
        try:
            for frame in self._decoded(container, stream, report, sent):
                pts = frame.pts
                missing: list[int] = []
                if pts is not None:
                    while sent and sent[0] < pts:
                        missing.append(heapq.heappop(sent))
                    while sent and sent[0] == pts:
                        heapq.heappop(sent)
                if missing:
                    self._skipped(report, len(missing), pts)
                    if previous is not None:
                        for gap in missing:
                            report.filled += 1
                            yield TimedFrame(previous.image, gap, time_base, filled=True)
                image = _rotate(frame_to_rgb(frame), _rotation(frame))
                if image.shape[:2] != size:
                    raise InputError(f"video {self.path}: frame {report.read} is {image.shape[1]}x{image.shape[0]}, "
                                     f"earlier frames are {size[1]}x{size[0]}; re-encode it at one size")
                report.read += 1
                previous = TimedFrame(image, pts, time_base)
                yield previous
        finally:
            container.close()
        report.trailing = len(sent)  # packets after the last decoded frame never came out
        if not report.read:
            raise InputError(f"video {self.path} has no decodable frames: the file is corrupt or truncated; "
                             f"{_OPEN_HINT}")
        self._finish(report)

    def _skipped(self, report: DecodeReport, count: int, pts: int | None) -> None:
        report.skipped += count
        if self.strict:
            detail = f" ({report.errors[-1]})" if report.errors else ""
            raise InputError(f"video {self.path} is corrupt: {count} frame(s) before the frame at pts {pts} cannot "
                             f"be decoded{detail}; re-encode or re-download it, or drop --strict to skip such frames")

    def _finish(self, report: DecodeReport) -> None:
        if report.ended_early:
            held = report.read + report.skipped
            claim = (f"the header claims {report.header_count} frames, the stream holds {held}"
                     if report.header_count is not None and held < report.header_count
                     else f"the stream holds {held} frames")
            cut = f" and ends with {report.trailing} undecodable packet(s)" if report.trailing else ""
            if self.strict:
                raise InputError(f"video {self.path} is truncated: {claim}{cut}; re-download or re-encode it, "
                                 "or drop --strict to use the frames it has")
            logger.warning("warning: %s: %s%s; used its %d decodable frames", self.path, claim, cut, report.read)
        if report.skipped:
            logger.warning("warning: %s: %d frame(s) could not be decoded and were skipped (%d filled by repeating "
                           "the previous frame)", self.path, report.skipped, report.filled)
        for error in report.errors:
            logger.debug("%s: %s", self.path, error)
