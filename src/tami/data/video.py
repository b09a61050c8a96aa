"""Read and write videos as streams of float RGB frames: video files, frame folders and single images.

Reading never holds a whole video in memory: frames are decoded one at a time. Every frame comes out as an
``(H, W, 3) float32`` RGB array in ``[0, 1]`` whatever the source (8/16-bit, grayscale, RGBA, float TIFF/NPY).
Video files are decoded by :mod:`tami.data.decode` when PyAV is installed (colour from the stream's tags, 10-bit
precision, rotation, timestamps, tolerant of truncated and corrupt streams), otherwise by OpenCV.

Writing goes to a temporary name beside the target and is renamed only when :meth:`VideoWriter.close` succeeds,
so an exception inside ``with open_writer(...)`` leaves no output behind.

Video files are written with H.264 through PyAV (``pip install "tami[video]"``) when it is importable, otherwise
with OpenCV's MPEG-4 Part 2 (``mp4v``) encoder. Frame-size rule for H.264: even sizes use ``yuv420p`` (plays
everywhere); odd widths or heights use ``yuv444p`` (High 4:4:4 profile), which has no chroma subsampling and
therefore stores the exact size, so a written video reads back at the size it was given. ``lossless=True`` uses
``libx264rgb`` at CRF 0, which stores the RGB frames bit-exactly. H.264 frames are converted to Y'CbCr with the
BT.709 matrix at limited range, and the stream is tagged so (players and :mod:`tami.data.decode` read it back
the same way). Given timestamps (``write(frame, pts=...)`` with the writer's ``time_base``), frames keep them:
variable frame rates and gaps survive.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import cv2
import numpy as np

from ..atomic import atomic_path
from ..frames import encode_image, to_uint
from ..errors import InputError
from .colour import ColourSpec, rgb_to_yuv
from .decode import DecodeReport, FileDecoder, TimedFrame

logger = logging.getLogger(__name__)

VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mkv", ".mov", ".m4v", ".webm", ".wmv", ".mpg", ".mpeg", ".ts"})
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".npy"})
_SAME_FORMAT = {".jpeg": ".jpg", ".tiff": ".tif"}
DEFAULT_FPS = 25.0


def natural_key(name: str) -> tuple[Any, ...]:
    """Sort key that orders embedded numbers by value: ``frame2`` before ``frame10``."""
    return tuple((0, int(part), part) if part.isdigit() else (1, 0, part.lower())
                 for part in re.split(r"(\d+)", name) if part)


def list_frames(folder: str | os.PathLike[str]) -> list[Path]:
    """Image/NPY files of ``folder`` in natural order (hidden files skipped).

    Raises:
        InputError: the folder holds no frames, or frames of more than one format.
    """
    folder = Path(folder)
    files = [p for p in folder.iterdir()
             if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES]
    if not files:
        raise InputError(
            f"no frames in folder {folder} (expected {', '.join(sorted(IMAGE_SUFFIXES))} files); "
            "point to a folder of frames, a video file or an image"
        )
    formats = {_SAME_FORMAT.get(p.suffix.lower(), p.suffix.lower()) for p in files}
    if len(formats) > 1:
        raise InputError(
            f"folder {folder} mixes frame formats ({', '.join(sorted(formats))}); keep one format per folder"
        )
    return sorted(files, key=lambda p: natural_key(p.name))


def to_float_rgb(array: np.ndarray, *, bgr: bool, source: str | os.PathLike[str] = "array") -> np.ndarray:
    """Convert a decoded image to ``(H, W, 3) float32`` RGB in ``[0, 1]``.

    Args:
        array: ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` or ``(H, W, 4)`` uint8, uint16 or float (already in [0, 1]).
        bgr: the channels are in BGR order (OpenCV decodes, SDSD ``.npy``); they are flipped to RGB.
        source: name used in error messages.

    Raises:
        InputError: unsupported shape or dtype.
    """
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim == 2:
        array = np.repeat(array[:, :, None], 3, axis=2)
        bgr = False
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise InputError(f"{source}: got an image of shape {array.shape}, expected (H, W), (H, W, 3) or (H, W, 4)")
    array = array[:, :, :3]
    if array.dtype not in (np.uint8, np.uint16) and not np.issubdtype(array.dtype, np.floating):
        raise InputError(f"{source}: got pixel type {array.dtype}, expected uint8, uint16 or float in [0, 1]")
    if bgr:
        # OpenCV's channel swap is several times faster than a reversed numpy view plus copy.
        array = cv2.cvtColor(np.ascontiguousarray(array), cv2.COLOR_BGR2RGB) \
            if array.dtype in (np.uint8, np.uint16, np.float32) else array[:, :, ::-1]
    out = array.astype(np.float32)
    if array.dtype == np.uint8:
        out /= np.float32(255.0)
    elif array.dtype == np.uint16:
        out /= np.float32(65535.0)
    else:
        np.clip(out, 0.0, 1.0, out=out)
    return np.ascontiguousarray(out)


def decode_raw(path: str | os.PathLike[str]) -> np.ndarray:
    """Decode one image or ``.npy`` file as stored: no colour conversion, no scaling.

    Returns:
        The array (OpenCV channel order, BGR/BGRA, for images; as saved for ``.npy``).

    Raises:
        InputError: the file cannot be read or decoded.
    """
    path = Path(path)
    try:
        if path.suffix.lower() == ".npy":
            return np.load(path, allow_pickle=False)
        data = np.fromfile(path, dtype=np.uint8)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read frame {path}: {exc}; check the file is complete and readable") from exc
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        raise InputError(f"cannot decode frame {path}: the file is empty, corrupt or not an image; replace it")
    return image


def read_image(path: str | os.PathLike[str], *, bgr_npy: bool = False) -> np.ndarray:
    """Read one frame file as ``(H, W, 3) float32`` RGB in ``[0, 1]``.

    Args:
        path: a png/jpg/bmp/tif image or an ``.npy`` array.
        bgr_npy: ``.npy`` arrays hold BGR channels (SDSD); images are always decoded to RGB.

    Raises:
        InputError: the file cannot be decoded or has an unsupported shape/dtype.
    """
    path = Path(path)
    raw = decode_raw(path)
    is_npy = path.suffix.lower() == ".npy"
    if raw.ndim == 3 and raw.shape[2] == 4:
        logger.debug("%s: alpha channel dropped", path)
    return to_float_rgb(raw, bgr=bgr_npy if is_npy else raw.ndim == 3, source=path)


@dataclass(frozen=True)
class VideoInfo:
    """What is known about a video before decoding it.

    Attributes:
        path: the file or folder.
        kind: ``"file"`` (mp4/avi/...), ``"folder"`` (frames) or ``"image"`` (one frame).
        fps: frames per second when the source stores it (files), else None.
        count: number of frames when known (folders and images always; files from their index).
        height, width: frame size in pixels.
        count: number of frames when known (folders and images always; files: what the header claims, a hint
            only - the stream is decoded to its end, see :attr:`VideoReader.report`).
        names: frame names (file stems) of folders and images; None for video files.
        bit_depth: 16 when the (first) frame file stores 16-bit integers, else 8 (video files: see ``colour``).
        rotation: clockwise degrees applied to a video file's stored frames (its rotation metadata).
        colour: how a video file's Y'CbCr maps to RGB, e.g. ``BT.709 limited 10-bit`` (None: RGB or unknown).
        time_base: unit of a video file's frame timestamps (None: no timestamps).
    """

    path: Path
    kind: Literal["file", "folder", "image"]
    fps: float | None
    count: int | None
    height: int
    width: int
    names: list[str] | None
    bit_depth: int = 8
    rotation: int = 0
    colour: str | None = None
    time_base: Fraction | None = None


class VideoReader:
    """Stream the frames of a video file, frame folder or single image as float RGB arrays.

    Use :func:`open_video`. Iterating yields ``(H, W, 3) float32`` RGB frames in ``[0, 1]`` one at a time; each new
    iteration starts again from the first frame. A frame of a video file that cannot be decoded is skipped and its
    place filled by the previous frame (so positions and timing match the source; :meth:`timed` tells fills apart);
    with ``strict`` it is an error, as is a stream that ends before its header's frame count. After an iteration,
    :attr:`report` says how many frames were read, skipped and filled. Usable as a context manager.
    """

    def __init__(self, path: str | os.PathLike[str], *, bgr_npy: bool = False, strict: bool = False) -> None:
        self.path = Path(path)
        self.bgr_npy = bgr_npy
        self.strict = strict
        self.report = DecodeReport()
        self._frames: list[Path] = []
        self._alpha_reported = False
        self._decoder: FileDecoder | None = None
        self._positions: int | None = None
        if not self.path.exists():
            raise InputError(f"input not found: {self.path}; give a video file, a folder of frames or an image")
        if self.path.is_dir() or self.path.suffix.lower() in IMAGE_SUFFIXES:
            folder = self.path.is_dir()
            self._frames = list_frames(self.path) if folder else [self.path]
            raw = decode_raw(self._frames[0])
            first = self._to_rgb(raw, self._frames[0])
            self.info = VideoInfo(self.path, "folder" if folder else "image", None, len(self._frames),
                                  first.shape[0], first.shape[1], [p.stem for p in self._frames],
                                  bit_depth=16 if raw.dtype == np.uint16 else 8)
        elif self.path.suffix.lower() in VIDEO_SUFFIXES:
            self.info = self._probe_file()
        else:
            raise InputError(
                f"unsupported input {self.path.name}: expected a video ({', '.join(sorted(VIDEO_SUFFIXES))}), "
                f"an image ({', '.join(sorted(IMAGE_SUFFIXES))}) or a folder of frames"
            )

    # -- frame files -------------------------------------------------------------------------------------------
    def _read_frame_file(self, path: Path) -> np.ndarray:
        return self._to_rgb(decode_raw(path), path)

    def _to_rgb(self, raw: np.ndarray, path: Path) -> np.ndarray:
        if raw.ndim == 3 and raw.shape[2] == 4 and not self._alpha_reported:
            logger.info("%s: frames have an alpha channel; it is ignored", self.path)
            self._alpha_reported = True
        is_npy = path.suffix.lower() == ".npy"
        return to_float_rgb(raw, bgr=self.bgr_npy if is_npy else raw.ndim == 3, source=path)

    # -- video files -------------------------------------------------------------------------------------------
    def _open_capture(self) -> cv2.VideoCapture:
        cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            cap.release()
            raise InputError(
                f"cannot open video {self.path}: the file is corrupt, truncated or in an unsupported format; "
                "re-encode it (e.g. ffmpeg -i IN -c:v libx264 OUT.mp4) or extract its frames to a folder"
            )
        return cap

    def _probe_file(self) -> VideoInfo:
        if self.path.stat().st_size == 0:
            raise InputError(f"video {self.path} is empty (0 bytes); give a complete video file")
        if _have_pyav():
            self._decoder = FileDecoder(self.path, strict=self.strict)
            s = self._decoder.info
            self.report = DecodeReport(header_count=s.header_count)
            return VideoInfo(self.path, "file", s.fps, s.header_count, s.height, s.width, None,
                             bit_depth=16 if s.colour is not None and s.colour.bits > 8 else 8, rotation=s.rotation,
                             colour=s.colour.describe() if s.colour else None, time_base=s.time_base)
        cap = self._open_capture()
        try:
            fps = float(cap.get(cv2.CAP_PROP_FPS))
            count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
            ok, frame = cap.read()
        finally:
            cap.release()
        if not ok or frame is None:
            raise InputError(f"video {self.path} has no decodable frames: the file is corrupt or truncated")
        return VideoInfo(self.path, "file", fps if fps > 0 else None, count if count > 0 else None,
                         frame.shape[0], frame.shape[1], None)

    def _timed_file(self) -> Iterator[TimedFrame]:
        if self._decoder is not None:
            try:
                yield from self._decoder.frames()
            finally:
                self.report = self._decoder.report
            return
        self.report = DecodeReport(header_count=self.info.count)
        for frame in self._iter_opencv():
            self.report.read += 1
            yield TimedFrame(frame, None, None)
        if self.report.ended_early:
            message = (f"the header claims {self.info.count} frames, the stream holds {self.report.read}")
            if self.strict:
                raise InputError(f"video {self.path} is truncated: {message}; re-download or re-encode it, "
                                 "or drop --strict to use the frames it has")
            logger.warning("warning: %s: %s; used its %d decodable frames", self.path, message, self.report.read)

    def _iter_opencv(self) -> Iterator[np.ndarray]:
        cap = self._open_capture()
        index = 0
        try:
            while True:
                ok, frame = cap.read()
                if not ok or frame is None:
                    break
                if frame.shape[:2] != (self.info.height, self.info.width):
                    raise InputError(
                        f"video {self.path}: frame {index} is {frame.shape[1]}x{frame.shape[0]}, earlier frames "
                        f"are {self.info.width}x{self.info.height}; re-encode it at one size"
                    )
                yield to_float_rgb(frame, bgr=frame.ndim == 3, source=self.path)
                index += 1
        finally:
            cap.release()

    def _iter_files(self) -> Iterator[np.ndarray]:
        size = (self.info.height, self.info.width)
        for path in self._frames:
            frame = self._read_frame_file(path)
            if frame.shape[:2] != size:
                raise InputError(
                    f"{self.path}: frame {path.name} is {frame.shape[1]}x{frame.shape[0]}, earlier frames are "
                    f"{size[1]}x{size[0]}; all frames of a video must have one size"
                )
            yield frame

    # -- public ------------------------------------------------------------------------------------------------
    def __iter__(self) -> Iterator[np.ndarray]:
        """Yield ``(H, W, 3) float32`` RGB frames in ``[0, 1]``, decoded one at a time (fills included)."""
        return (frame.image for frame in self.timed())

    def timed(self) -> Iterator[TimedFrame]:
        """Yield every frame with its timestamp and whether it fills the place of an undecodable frame."""
        if self.info.kind == "file":
            return self._timed_file()
        return (TimedFrame(frame, None, None) for frame in self._iter_files())

    def frame_names(self) -> list[str]:
        """Frame names: file stems for folders/images, ``"000000"``, ``"000001"``, ... for video files.

        A video file's positions are counted by decoding it to its end (streamed, once): its header's count is
        only a hint.
        """
        if self.info.names is not None:
            return list(self.info.names)
        if self._positions is None:
            self._positions = sum(1 for _ in self.timed())
        return [f"{i:06d}" for i in range(self._positions)]

    def close(self) -> None:
        """Release resources (captures are opened per iteration, so nothing is held between frames)."""
        self._frames = []

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_video(path: str | os.PathLike[str], *, bgr_npy: bool = False, strict: bool = False) -> VideoReader:
    """Open a video file, a folder of frames or a single image for streaming.

    Args:
        path: ``.mp4``/``.avi``/``.mkv``/``.mov``/... file, folder of png/jpg/bmp/tif/npy frames (natural order),
            or one image.
        bgr_npy: ``.npy`` frames hold BGR channels (as the SDSD ``*_np`` releases do). Never guessed.
        strict: an undecodable frame, or a stream shorter than its header says, is an error (else a warning).

    Returns:
        A :class:`VideoReader`; ``reader.info`` says kind, fps, count and size; the first frame has been decoded.

    Raises:
        InputError: missing, empty, corrupt or unsupported input; a folder without frames.
    """
    return VideoReader(path, bgr_npy=bgr_npy, strict=strict)


# ---------------------------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------------------------

# What the H.264 writer stores and tags: the HD matrix at limited range, which every player reads right.
_WRITTEN_COLOUR = ColourSpec("bt709", full_range=False, bits=8)


def _have_pyav() -> bool:
    return importlib.util.find_spec("av") is not None



def is_folder_target(path: Path) -> bool:
    """Whether :func:`open_writer` writes ``path`` as a png frame folder (no suffix, or an existing folder)."""
    return path.suffix == "" or path.is_dir()


class VideoWriter:
    """Write RGB frames to a video file or a png frame folder, atomically.

    Use :func:`open_writer`. ``write`` accepts ``(H, W, 3)`` float RGB in ``[0, 1]`` or uint8 (uint16 too for
    16-bit folders). The output appears under its final name only when :meth:`close` succeeds; leaving the
    ``with`` block by an exception (or calling :meth:`abort`) removes everything written.
    """

    def __init__(self, path: str | os.PathLike[str], fps: float | None = None, *, audio_from: Path | None = None,
                 crf: int = 18, bit_depth: int = 8, lossless: bool = False,
                 time_base: Fraction | None = None) -> None:
        self.path = Path(path)
        self.is_folder = is_folder_target(self.path)
        if bit_depth not in (8, 16):
            raise InputError(f"bit_depth must be 8 or 16, got {bit_depth}")
        if bit_depth == 16 and not self.is_folder:
            raise InputError(f"16-bit output needs a png frame folder, got video file {self.path.name}; "
                             "give a folder path (no suffix) or use bit_depth=8")
        if not self.is_folder and self.path.suffix.lower() not in VIDEO_SUFFIXES:
            raise InputError(f"cannot write {self.path.name}: expected a video suffix "
                             f"({', '.join(sorted(VIDEO_SUFFIXES))}) or a folder path without suffix")
        if not 0 <= crf <= 51:
            raise InputError(f"crf must be in 0..51, got {crf}")
        if self.is_folder and self.path.is_dir():
            foreign = [p.name for p in self.path.iterdir() if p.suffix.lower() not in IMAGE_SUFFIXES]
            if foreign:
                raise InputError(f"refusing to replace folder {self.path}: it holds non-frame files "
                                 f"({', '.join(sorted(foreign)[:3])}); choose another output folder")
        if fps is None and not self.is_folder:
            logger.info("%s: frame rate unknown, writing at %g fps", self.path.name, DEFAULT_FPS)
        self.fps = float(fps) if fps else DEFAULT_FPS
        self.crf = crf
        self.bit_depth = bit_depth
        self.lossless = lossless
        self.time_base = time_base
        self._last_pts: int | None = None
        self.audio_from = Path(audio_from) if audio_from is not None else None
        self.count = 0
        self._size: tuple[int, int] | None = None
        self._backend: Any = None
        self._stream: Any = None
        self._audio: tuple[Any, Any, Any] | None = None
        self._closed = False
        self._ctx = atomic_path(self.path, directory=self.is_folder)
        self._tmp = self._ctx.__enter__()

    # -- backends ----------------------------------------------------------------------------------------------
    def _start_video(self, height: int, width: int) -> None:
        if _have_pyav():
            import av

            # mp4/mov: index at the front ("faststart"), so players can start before the download ends.
            faststart = self.path.suffix.lower() in (".mp4", ".m4v", ".mov")
            container = av.open(str(self._tmp), mode="w", options={"movflags": "+faststart"} if faststart else {})
            rate = Fraction(self.fps).limit_denominator(1001)
            codec = "libx264rgb" if self.lossless else "libx264"
            stream = container.add_stream(codec, rate=rate)
            stream.width, stream.height = width, height
            if self.lossless:
                stream.pix_fmt = "rgb24"
                stream.options = {"crf": "0", "preset": "medium"}
            else:
                stream.pix_fmt = "yuv420p" if height % 2 == 0 and width % 2 == 0 else "yuv444p"
                stream.options = {"crf": str(self.crf)}
                context = stream.codec_context  # tag what _av_frame writes: BT.709, limited range
                context.colorspace, context.color_range = 1, 1
                context.color_primaries, context.color_trc = 1, 1
            stream.codec_context.time_base = self.time_base or 1 / rate
            if self.time_base is not None:
                stream.time_base = self.time_base
            self._backend, self._stream = container, stream
            if self.audio_from is not None:
                self._add_audio()
        else:
            if self.audio_from is not None:
                logger.warning("PyAV is not installed: audio is not copied (pip install \"tami[video]\")")
            fourcc = cv2.VideoWriter_fourcc(*("MJPG" if self.path.suffix.lower() == ".avi" else "mp4v"))
            writer = cv2.VideoWriter(str(self._tmp), fourcc, self.fps, (width, height))
            if not writer.isOpened():
                raise InputError(f"OpenCV cannot write {self.path.suffix} video; install PyAV "
                                 "(pip install \"tami[video]\") or write a frame folder")
            self._backend = writer

    def _av_frame(self, frame: np.ndarray, pts: int | None) -> Any:
        import av

        if self.lossless:
            vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
        else:
            height, width = frame.shape[:2]
            subsample = self._stream.pix_fmt == "yuv420p"
            y, u, v = rgb_to_yuv(frame, _WRITTEN_COLOUR, subsample=subsample)
            if subsample:
                planes = np.concatenate([y.ravel(), u.ravel(), v.ravel()]).reshape(height * 3 // 2, width)
                vf = av.VideoFrame.from_ndarray(planes, format="yuv420p")
            else:
                vf = av.VideoFrame.from_ndarray(np.stack([y, u, v]), format="yuv444p")
            vf.colorspace, vf.color_range = 1, 1
        vf.pts = self._next_pts(pts)
        vf.time_base = self._stream.codec_context.time_base
        return vf

    def _next_pts(self, pts: int | None) -> int:
        """The frame's index without a ``time_base``; else ``pts``, or one nominal frame after the previous one
        when ``pts`` is missing or does not increase."""
        if self.time_base is None:
            return self.count
        if pts is None or (self._last_pts is not None and pts <= self._last_pts):
            step = max(1, round(1 / (self.fps * self.time_base)))
            pts = 0 if self._last_pts is None else self._last_pts + step
        self._last_pts = pts
        return pts

    def _add_audio(self) -> None:
        """Open ``audio_from`` and add its first audio stream to the output (before any packet is written)."""
        import av

        try:
            source = av.open(str(self.audio_from))
        except (av.FFmpegError, OSError) as exc:
            logger.warning("cannot read audio from %s (%s); the video is written without sound", self.audio_from, exc)
            return
        audio = [s for s in source.streams if s.type == "audio"]
        if not audio:
            source.close()
            return
        try:
            out = self._backend.add_stream_from_template(audio[0])
        except (av.FFmpegError, ValueError) as exc:
            source.close()
            logger.warning("audio of %s cannot go into %s (%s); written without sound",
                           self.audio_from, self.path.suffix, exc)
            return
        self._audio = (source, audio[0], out)

    def _copy_audio(self) -> None:
        """Copy every audio packet (no re-encoding) into the output stream added by :meth:`_add_audio`.

        Damaged audio at the source must not cost the enhanced video: the packets copied before the damage are
        kept, with a warning.
        """
        import av

        source, stream, out = self._audio
        copied = 0
        with source:
            try:
                for packet in source.demux(stream):
                    if packet.dts is None:
                        continue
                    packet.stream = out
                    self._backend.mux(packet)
                    copied += 1
            except (av.FFmpegError, OSError) as exc:
                logger.warning("warning: the audio of %s is damaged (%s); %s keeps the video and the %d audio "
                               "packets before the damage", self.audio_from, exc, self.path.name, copied)
        self._audio = None

    # -- public ------------------------------------------------------------------------------------------------
    def write(self, frame: np.ndarray, name: str | None = None, pts: int | None = None) -> None:
        """Append one frame.

        Args:
            frame: ``(H, W, 3)`` RGB, float in ``[0, 1]`` (clipped, rounded) or uint8 (uint16 for 16-bit folders).
            name: file stem for frame folders (default: ``000000``, ``000001``, ...); ignored for video files.
            pts: presentation time in the writer's ``time_base`` (video files with a ``time_base`` only; a missing
                or non-increasing one continues from the previous frame at the nominal rate).

        Raises:
            InputError: wrong shape, or a size different from the first frame.
        """
        if self._closed:
            raise InputError(f"writer for {self.path} is closed; open a new one")
        data = to_uint(frame, self.bit_depth)
        size = data.shape[:2]
        if self._size is None:
            self._size = size
            if not self.is_folder:
                self._start_video(*size)
        elif size != self._size:
            raise InputError(f"frame {self.count} is {size[1]}x{size[0]}, earlier frames are "
                             f"{self._size[1]}x{self._size[0]}; a video has one frame size")
        if self.is_folder:
            if name is not None and (not name or Path(name).name != name or name.startswith(".")):
                raise InputError(f"frame name {name!r} must be a plain file stem (no folders, not hidden)")
            target = self._tmp / f"{name if name is not None else f'{self.count:06d}'}.png"
            encode_image(data, ".png", bits=self.bit_depth).tofile(target)
        elif self._stream is not None:
            for packet in self._stream.encode(self._av_frame(data, pts)):
                self._backend.mux(packet)
        else:
            self._backend.write(np.ascontiguousarray(data[:, :, ::-1]))
        self.count += 1

    def close(self) -> None:
        """Finish the stream and move the output onto its final name.

        Raises:
            InputError: nothing was written (no output is left behind).
        """
        if self._closed:
            return
        if self.count == 0:
            self.abort()
            raise InputError(f"no frames were written to {self.path}; nothing saved")
        self._closed = True
        try:
            self._finish_backend()
        except BaseException as exc:
            self._ctx.__exit__(type(exc), exc, exc.__traceback__)
            raise
        self._ctx.__exit__(None, None, None)

    def _finish_backend(self) -> None:
        if self._stream is not None:
            for packet in self._stream.encode(None):
                self._backend.mux(packet)
            if self._audio is not None:
                self._copy_audio()
            self._backend.close()
        elif self._backend is not None:
            self._backend.release()

    def abort(self) -> None:
        """Discard everything written; no output file or folder is left."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            if self._audio is not None:
                self._audio[0].close()
            if self._stream is not None:
                self._backend.close()
            elif self._backend is not None:
                self._backend.release()
        error = InputError("write aborted")
        self._ctx.__exit__(InputError, error, None)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def open_writer(path: str | os.PathLike[str], fps: float | None = None, *, audio_from: Path | None = None,
                crf: int = 18, bit_depth: int = 8, lossless: bool = False,
                time_base: Fraction | None = None) -> VideoWriter:
    """Open an atomic writer: a video file when ``path`` has a video suffix, else a png frame folder.

    Args:
        path: ``out.mp4`` (or .mkv/.mov/.avi/...) for a video; a path without suffix (or an existing folder of
            frames) for png frames ``000000.png``, ``000001.png``, ...
        fps: frame rate of a video file (default 25 when unknown); stored as the nearest fraction with a
            denominator up to 1001 (29.97002997 → 30000/1001, 29.97 → 2997/100).
        audio_from: copy the first audio stream of this file into the output (PyAV only; warns when impossible).
        crf: H.264 quality, 0..51, lower is better (18 is visually lossless).
        bit_depth: 8, or 16 for png folders.
        lossless: H.264 through ``libx264rgb`` at CRF 0: bit-exact RGB (larger files, fewer players).
        time_base: unit of the ``pts`` given to :meth:`VideoWriter.write` (e.g. the source stream's), so frames
            keep their source timing; None: frame ``i`` is shown at ``i / fps``.

    Raises:
        InputError: unsupported suffix or option; a folder target holding non-frame files.
    """
    return VideoWriter(path, fps, audio_from=audio_from, crf=crf, bit_depth=bit_depth, lossless=lossless,
                       time_base=time_base)
