"""Several methods' frames for side-by-side views: each method a path (video file, frame folder, image) or frames in
memory, streamed as float RGB (:class:`FrameSource`), checked for one frame size and aligned frame by frame (by name
when every method has named frames holding all names of the reference, else by position)."""

from __future__ import annotations

import itertools
import logging
import os
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np

from ..errors import InputError
from .video import open_video, to_float_rgb

logger = logging.getLogger(__name__)

#: A video given as a file / frame folder path, a ``(T, H, W, 3)`` array, or an iterable of ``(H, W, 3)`` frames
#: (float RGB in ``[0, 1]`` or uint8).
FrameInput = Union[str, os.PathLike, np.ndarray, Iterable[np.ndarray]]


class FrameSource:
    """One method's frames, streamed: a path opened with :func:`tami.data.video.open_video` or in-memory frames.

    Use :func:`open_source`. Attributes: ``name``; ``height``, ``width``; ``count`` (None for an iterator of
    unknown length); ``names``: frame names for frame folders / images, None for video files and arrays.
    """

    def __init__(self, name: str, frames: FrameInput, *, strict: bool = False) -> None:
        self.name = name
        self.strict = strict
        self._path: Path | None = None
        self._frames: Iterable[np.ndarray] | None = None
        self._consumed = False
        self.names: list[str] | None = None
        if isinstance(frames, (str, os.PathLike)):
            self._path = Path(frames)
            with open_video(self._path, strict=strict) as reader:
                info = reader.info
                self.height, self.width = info.height, info.width
                names = reader.frame_names()  # a video file's header count is a hint: its frames are counted
                self.count = len(names)
                if info.kind != "file":
                    self.names = names
            return
        if isinstance(frames, np.ndarray):
            if frames.ndim != 4:
                raise InputError(f"method {name!r}: got an array of shape {frames.shape}, expected (T, H, W, 3) "
                                 "frames")
            frames = list(frames)
        if isinstance(frames, Sequence):
            if not frames:
                raise InputError(f"method {name!r} has no frames")
            first = self._convert(frames[0], 0)
            self._frames, self.count = frames, len(frames)
        else:
            iterator = iter(frames)
            try:
                raw = next(iterator)
            except StopIteration:
                raise InputError(f"method {name!r} has no frames") from None
            first = self._convert(raw, 0)
            self._frames, self.count = itertools.chain([raw], iterator), None
        self.height, self.width = first.shape[:2]

    def _convert(self, frame: np.ndarray, index: int) -> np.ndarray:
        frame = np.asarray(frame)
        if frame.ndim != 3 or frame.shape[2] != 3:
            raise InputError(f"method {self.name!r}: frame {index} has shape {frame.shape}, expected (H, W, 3) RGB")
        return to_float_rgb(frame, bgr=False, source=f"method {self.name!r}")

    def __iter__(self) -> Iterator[np.ndarray]:
        """Yield ``(H, W, 3) float32`` RGB frames in ``[0, 1]``, one at a time."""
        if self._path is not None:
            with open_video(self._path, strict=self.strict) as reader:
                yield from reader
            return
        if self.count is None:
            if self._consumed:
                raise InputError(f"method {self.name!r}: its frames come from an iterator that was already "
                                 "read; pass a list or array to read them twice")
            self._consumed = True
        for index, frame in enumerate(self._frames or ()):
            out = self._convert(frame, index)
            if out.shape[:2] != (self.height, self.width):
                raise InputError(f"method {self.name!r}: frame {index} is {out.shape[1]}x{out.shape[0]}, earlier "
                                 f"frames are {self.width}x{self.height}; a video has one frame size")
            yield out

    def select(self, indices: Sequence[int]) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(index, frame)`` for the frames at ``indices`` (ascending order), stopping after the last one."""
        if not len(indices):
            return
        wanted, last = (indices, indices[-1]) if isinstance(indices, range) else (set(indices), max(indices))
        for index, frame in enumerate(self):
            if index in wanted:
                yield index, frame
            if index >= last:
                break


def open_source(name: str, frames: FrameInput, *, strict: bool = False) -> FrameSource:
    """Wrap a path (video file, frame folder, image) or in-memory frames as a :class:`FrameSource`.

    ``strict``: a truncated or damaged video file is an error (else its decodable frames are used, with a warning).

    Raises:
        InputError: missing or unreadable input, no frames, frames that are not ``(H, W, 3)``.
    """
    return FrameSource(name, frames, strict=strict)


def open_sources(methods: Mapping[str, FrameInput], *, strict: bool = False) -> dict[str, FrameSource]:
    """Open every method and check they share one frame size.

    Raises:
        InputError: no method, or methods whose frame sizes differ.
    """
    if not methods:
        raise InputError("no method given: pass at least one NAME=PATH")
    sources = {name: open_source(name, frames, strict=strict) for name, frames in methods.items()}
    check_sizes(sources)
    return sources


def check_sizes(sources: Mapping[str, FrameSource]) -> None:
    """Raise :class:`InputError` unless every source has the same frame size."""
    items = list(sources.values())
    first = items[0]
    for other in items[1:]:
        if (other.height, other.width) != (first.height, first.width):
            raise InputError(
                f"method {other.name!r} has {other.width}x{other.height} frames, method {first.name!r} has "
                f"{first.width}x{first.height}; all methods must have one frame size (resize or crop them)"
            )


def reference_name(names: Iterable[str]) -> str:
    """The method whose frames define the selection: ``GT`` (any case) if present, else the first one."""
    names = list(names)
    return next((n for n in names if n.lower() == "gt"), names[0])


@dataclass(frozen=True)
class Alignment:
    """Which frame of every method shows each selected time step.

    Attributes:
        mode: ``"name"`` (matched by frame name) or ``"index"`` (by position).
        reference: the method the selection and labels come from.
        labels: one label per selected time step (reference frame names, or positions as strings).
        indices: per method, the frame index of each time step (a ``range`` for index alignment; it may end past
            a method's last frame when counts are unknown, see :func:`common_steps`).
    """

    mode: Literal["name", "index"]
    reference: str
    labels: list[str]
    indices: dict[str, Sequence[int]]


def align_frames(sources: Mapping[str, FrameSource], frames: slice | None = None) -> Alignment:
    """Match the frames of all methods: by name when every method has all the reference's names, else by index.

    Args:
        sources: the methods.
        frames: positions (in the reference's order) to use; default all.

    Raises:
        InputError: empty selection, or negative positions with a method of unknown length.
    """
    ref_name = reference_name(sources)
    ref = sources[ref_name]
    selection = frames or slice(None)
    if selection.step not in (None, 1):
        raise InputError(f"frame selection {selection.start}:{selection.stop}:{selection.step} has a step; give A:B")
    if ref.names is not None and all(s.names is not None for s in sources.values()):
        chosen = ref.names[selection]
        lookup = {name: {n: i for i, n in enumerate(s.names or [])} for name, s in sources.items()}
        missing = next(((m, n) for m in sources for n in chosen if n not in lookup[m]), None)
        if missing is None and chosen:
            return Alignment("name", ref_name, list(chosen), {m: [lookup[m][n] for n in chosen] for m in sources})
        if missing is not None:
            logger.info("aligning frames by position: method %r has no frame named %r", missing[0], missing[1])
    counts = [s.count for s in sources.values() if s.count is not None]
    if len(counts) < len(sources) and any(v is not None and v < 0 for v in (selection.start, selection.stop)):
        raise InputError("negative frame positions need every method's frame count; a method is an iterator of "
                         "unknown length")
    if counts and min(counts) != max(counts):
        logger.warning("methods have different frame counts (%s); using the first %d",
                       ", ".join(f"{s.name}: {s.count}" for s in sources.values() if s.count is not None),
                       min(counts))
    start, stop, _ = selection.indices(min(counts) if len(counts) == len(sources) else sys.maxsize)
    if stop <= start:
        raise InputError(f"frame selection {selection.start}:{selection.stop} selects no frame "
                         f"(the shortest method has {min(counts) if counts else 'an unknown number of'} frames)")
    steps = range(start, stop)
    labels = [ref.names[i] for i in steps] if ref.names is not None and stop <= len(ref.names) else \
        ([str(i) for i in steps] if stop < sys.maxsize else [])
    return Alignment("index", ref_name, labels, {m: steps for m in sources})


def common_steps(alignment: Alignment, found: Mapping[str, Iterable[int]]) -> list[int]:
    """Time steps every method delivered (differs from the plan only for methods of unknown length)."""
    steps: list[int] | None = None
    for method, indices in found.items():
        have = set(indices)
        mine = [t for t, i in enumerate(alignment.indices[method]) if i in have] if alignment.mode == "name" else \
            [i - alignment.indices[method][0] for i in sorted(have)]
        mine_set = set(mine)
        steps = mine if steps is None else [t for t in steps if t in mine_set]
    return steps or []
