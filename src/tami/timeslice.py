"""Time slices: one line of pixels taken from every frame of a video and stacked side by side.

Flicker that is hard to see while a video plays becomes a striped band in a time slice, and a stable method gives
smooth bands. A vertical line at column ``x`` (rows ``start..stop``) gives an image of ``(stop - start)`` rows and
``T * stripe`` columns (frame ``t`` is the ``t``-th stripe from the left); a horizontal line at row ``y`` gives
``T * stripe`` rows and ``(stop - start)`` columns (frame ``t`` is the ``t``-th stripe from the top). With
``stripe > 1`` each frame contributes a band of ``stripe`` neighbouring columns (rows) centred on the line, moved
inwards at the frame border.

Several methods (GT and the low-light input are methods too) are compared on the same frames: frames are aligned
by name when every method has named frames (folders) holding all names of the reference (``GT`` if present, else
the first method), otherwise by position. Frames are streamed: only the slice lines and one reference frame per
method are kept in memory. Replaces the research repository's OpenCV GUI (TAMI-reference §7) with a batch tool.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from .data.sources import FrameInput, align_frames, common_steps, open_sources
from .errors import InputError, UsageError
from .frames import to_uint8, write_image

logger = logging.getLogger(__name__)

LINE_COLOR = (255, 0, 0)
_LABEL_FONT = cv2.FONT_HERSHEY_SIMPLEX
_LABEL_SCALE = 0.5
_LABEL_HEIGHT = 22
_BACKGROUND = 24


def parse_frames(text: str | None) -> slice | None:
    """Parse ``a:b`` / ``a:`` / ``:b`` / ``a`` (Python slice of frame positions) into a slice.

    Raises:
        InputError: not of that form.
    """
    if text is None or text.strip() == "":
        return None
    parts = text.split(":")
    try:
        values = [int(p) if p.strip() else None for p in parts]
    except ValueError:
        values = []
    if len(parts) == 1 and values and values[0] is not None:
        return slice(values[0], values[0] + 1 if values[0] != -1 else None)
    if len(parts) != 2 or not values:
        raise UsageError(f"--frames expects A:B (frame positions, like a Python slice), got {text!r}")
    return slice(values[0], values[1])


@dataclass(frozen=True)
class SliceLine:
    """An axis-aligned line across the frame.

    Attributes:
        axis: ``"x"`` for a vertical line at column ``position``; ``"y"`` for a horizontal line at row ``position``.
        position: column (``"x"``) or row (``"y"``) of the line.
        start, stop: the pixels along the line (rows for ``"x"``, columns for ``"y"``), ``start`` included,
            ``stop`` excluded; ``stop=None`` runs to the frame border.
    """

    axis: Literal["x", "y"]
    position: int
    start: int = 0
    stop: int | None = None

    def resolve(self, height: int, width: int) -> SliceLine:
        """This line with ``stop`` filled in, checked against a ``height x width`` frame.

        Raises:
            InputError: the line lies outside the frame or is empty.
        """
        if self.axis not in ("x", "y"):
            raise InputError(f"line axis must be 'x' or 'y', got {self.axis!r}")
        across, along = (width, height) if self.axis == "x" else (height, width)
        flag = "--x" if self.axis == "x" else "--y"
        if not 0 <= self.position < across:
            raise InputError(f"{flag} {self.position} is outside the {width}x{height} frame; give 0..{across - 1}")
        stop = along if self.stop is None else self.stop
        if not 0 <= self.start < stop <= along:
            raise InputError(f"line span --from {self.start} --to {stop} is not within 0..{along} along the line; "
                             "give 0 <= FROM < TO <= the frame's " + ("height" if self.axis == "x" else "width"))
        return SliceLine(self.axis, self.position, self.start, stop)

    @property
    def length(self) -> int:
        """Pixels along the line (after :meth:`resolve`)."""
        if self.stop is None:
            raise InputError("the line has no end yet; call resolve(height, width) first")
        return self.stop - self.start


def check_stripe(stripe: int, across: int, axis: Literal["x", "y"]) -> None:
    """Raise :class:`InputError` unless ``1 <= stripe <= across`` (the frame width for ``"x"``, height for ``"y"``)."""
    if not 1 <= stripe <= across:
        raise InputError(f"--stripe {stripe} must be between 1 and the frame {'width' if axis == 'x' else 'height'} "
                         f"({across})")


def line_piece(frame: np.ndarray, line: SliceLine, stripe: int = 1) -> np.ndarray:
    """The pixels of one frame under a resolved line, as the frame's stripe of the slice.

    Args:
        frame: ``(H, W, 3)`` frame.
        line: a line resolved for this frame size.
        stripe: pixels per frame across the line (a band centred on the line, kept inside the frame).

    Returns:
        ``(L, stripe, 3)`` for a vertical line, ``(stripe, L, 3)`` for a horizontal one (``L = line.length``).
    """
    across = frame.shape[1] if line.axis == "x" else frame.shape[0]
    check_stripe(stripe, across, line.axis)
    first = min(max(line.position - stripe // 2, 0), across - stripe)
    if line.axis == "x":
        return frame[line.start:line.stop, first:first + stripe].copy()
    return frame[first:first + stripe, line.start:line.stop].copy()


def stack_pieces(pieces: Sequence[np.ndarray], axis: Literal["x", "y"]) -> np.ndarray:
    """Stack per-frame pieces into the slice: side by side for a vertical line, top to bottom for a horizontal one."""
    return np.concatenate(pieces, axis=1 if axis == "x" else 0)


def extract_slice(frames: Iterable[np.ndarray], line: SliceLine, *, stripe: int = 1) -> np.ndarray:
    """The time slice of a stream of frames (streamed: only the line pixels are kept).

    Args:
        frames: ``(H, W, 3)`` frames (float in ``[0, 1]`` or uint8), e.g. a :class:`~tami.data.video.VideoReader`.
        line: the line; resolved against the first frame's size.
        stripe: pixels per frame.

    Returns:
        ``(L, T * stripe, 3)`` (vertical line) or ``(T * stripe, L, 3)`` (horizontal line), dtype of the frames.

    Raises:
        InputError: no frames, frames of changing size, line outside the frame.
    """
    pieces: list[np.ndarray] = []
    resolved: SliceLine | None = None
    size: tuple[int, int] | None = None
    for index, frame in enumerate(frames):
        frame = np.asarray(frame)
        if resolved is None:
            size = frame.shape[:2]
            resolved = line.resolve(*size)
        elif frame.shape[:2] != size:
            raise InputError(f"frame {index} is {frame.shape[1]}x{frame.shape[0]}, earlier frames are "
                             f"{size[1]}x{size[0]}; a video has one frame size")
        pieces.append(line_piece(frame, resolved, stripe))
    if resolved is None:
        raise InputError("no frames to slice")
    return stack_pieces(pieces, resolved.axis)


@dataclass
class MethodSlice:
    """One method's slice.

    Attributes:
        name: method name.
        slice: ``(L, T * stripe, 3)`` or ``(T * stripe, L, 3)`` float32 RGB in ``[0, 1]``.
        reference: ``(H, W, 3)`` float32 frame of the first selected time step.
        frames: frame index (in the method's own order) of each time step.
    """

    name: str
    slice: np.ndarray
    reference: np.ndarray
    frames: list[int]


@dataclass
class TimeSlices:
    """Slices of every method on the same line and time steps."""

    line: SliceLine
    stripe: int
    alignment: Literal["name", "index"]
    labels: list[str]
    methods: list[MethodSlice]


def time_slices(methods: Mapping[str, FrameInput], line: SliceLine, *, frames: slice | None = None,
                stripe: int = 1, strict: bool = False) -> TimeSlices:
    """Time slices of several methods on one line, frames aligned across methods.

    Args:
        methods: method name -> video file, frame folder, ``(T, H, W, 3)`` array or iterable of frames.
        line: the line (``stop=None`` runs to the frame border).
        frames: frame positions (reference order) to use, e.g. ``slice(10, 40)``; default all.
        stripe: pixels per frame in the slice.
        strict: a truncated or damaged video file is an error (else its decodable frames are used).

    Raises:
        InputError: unreadable inputs, different frame sizes, a line outside the frame, an empty selection.
    """
    sources = open_sources(methods, strict=strict)
    first = next(iter(sources.values()))
    resolved = line.resolve(first.height, first.width)
    check_stripe(stripe, first.width if resolved.axis == "x" else first.height, resolved.axis)
    alignment = align_frames(sources, frames)
    collected: dict[str, dict[int, np.ndarray]] = {}
    references: dict[str, np.ndarray] = {}
    for name, source in sources.items():
        pieces: dict[int, np.ndarray] = {}
        for index, frame in source.select(alignment.indices[name]):
            if not pieces:
                references[name] = frame
            pieces[index] = line_piece(frame, resolved, stripe)
        collected[name] = pieces
    steps = common_steps(alignment, {m: p.keys() for m, p in collected.items()})
    if not steps:
        raise InputError("no frame is shared by every method in the selection")
    results = []
    for name in sources:
        order = [alignment.indices[name][t] for t in steps]
        results.append(MethodSlice(name, stack_pieces([collected[name][i] for i in order], resolved.axis),
                                   references[name], order))
    labels = [alignment.labels[t] for t in steps] if alignment.labels else [str(results[0].frames[t])
                                                                             for t in range(len(steps))]
    logger.debug("sliced %d frames of %d methods (aligned by %s)", len(steps), len(results), alignment.mode)
    return TimeSlices(resolved, stripe, alignment.mode, labels, results)



def draw_line(frame: np.ndarray, line: SliceLine, *, color: tuple[int, int, int] = LINE_COLOR,
              thickness: int = 2) -> np.ndarray:
    """A uint8 copy of ``frame`` ``(H, W, 3)`` RGB with the (resolved) line drawn in ``color``."""
    out = to_uint8(frame).copy()
    line = line.resolve(*out.shape[:2])
    if line.axis == "x":
        ends = (line.position, line.start), (line.position, (line.stop or 1) - 1)
    else:
        ends = (line.start, line.position), ((line.stop or 1) - 1, line.position)
    cv2.line(out, ends[0], ends[1], color, thickness, lineType=cv2.LINE_8)
    return out


@dataclass(frozen=True)
class Grid:
    """A labelled grid image and where each item's image sits in it.

    Attributes:
        image: ``(H, W, 3) uint8`` RGB.
        boxes: per item, ``(label, top, left, height, width)`` of its image (the label bar is just above).
    """

    image: np.ndarray
    boxes: list[tuple[str, int, int, int, int]]


def grid_columns(count: int) -> int:
    """Default columns: one row for up to 8 items, else two rows."""
    return count if count < 9 else math.ceil(count / 2)


def compose_grid(items: Sequence[tuple[str, np.ndarray]], *, columns: int | None = None, gap: int = 6) -> Grid:
    """Lay out labelled images in a grid: row-major, each image under a label bar drawn with OpenCV.

    Column width is the widest cell of the column (image or label text), row height the tallest; images sit at
    the top-left of their cell; the background is dark grey.

    Args:
        items: ``(label, image)`` with ``(h, w, 3)`` float ``[0, 1]`` or uint8 RGB images.
        columns: grid columns (default :func:`grid_columns`).
        gap: pixels between and around cells.

    Raises:
        InputError: no items or a bad column count.
    """
    if not items:
        raise InputError("nothing to put in the grid")
    cols = grid_columns(len(items)) if columns is None else columns
    if cols < 1:
        raise InputError(f"grid columns must be >= 1, got {cols}")
    images = [to_uint8(np.asarray(img)) for _, img in items]
    text_widths = [cv2.getTextSize(label, _LABEL_FONT, _LABEL_SCALE, 1)[0][0] + 8 for label, _ in items]
    rows = math.ceil(len(items) / cols)
    col_w = [max((max(images[i].shape[1], text_widths[i]) for i in range(c, len(items), cols)), default=0)
             for c in range(cols)]
    row_h = [_LABEL_HEIGHT + max(img.shape[0] for img in images[r * cols:(r + 1) * cols]) for r in range(rows)]
    canvas = np.full((gap + sum(h + gap for h in row_h), gap + sum(w + gap for w in col_w), 3), _BACKGROUND,
                     np.uint8)
    boxes = []
    for i, ((label, _), img) in enumerate(zip(items, images)):
        r, c = divmod(i, cols)
        top = gap + sum(h + gap for h in row_h[:r])
        left = gap + sum(w + gap for w in col_w[:c])
        cv2.putText(canvas, label, (left + 4, top + _LABEL_HEIGHT - 7), _LABEL_FONT, _LABEL_SCALE, (255, 255, 255),
                    1, cv2.LINE_AA)
        y = top + _LABEL_HEIGHT
        canvas[y:y + img.shape[0], left:left + img.shape[1]] = img
        boxes.append((label, y, left, img.shape[0], img.shape[1]))
    return Grid(canvas, boxes)


def safe_name(name: str) -> str:
    """A file-name-safe version of a method name."""
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name).strip(".") or "method"



def save_time_slices(result: TimeSlices, out_dir: str | os.PathLike[str], *, columns: int | None = None) -> list[Path]:
    """Write ``<method>_slice.png``, ``<method>_line.png`` (first selected frame with the line) and ``grid.png``.

    Returns:
        The written paths, grid last.

    Raises:
        InputError: two method names map to the same file name.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = [safe_name(m.name) for m in result.methods]
    if len(set(files)) != len(files):
        raise InputError(f"method names {[m.name for m in result.methods]} give clashing file names; rename them")
    paths = []
    for stem, method in zip(files, result.methods):
        paths.append(write_image(out / f"{stem}_slice.png", method.slice))
        paths.append(write_image(out / f"{stem}_line.png", draw_line(method.reference, result.line)))
    grid = compose_grid([(m.name, m.slice) for m in result.methods], columns=columns)
    paths.append(write_image(out / "grid.png", grid.image))
    return paths
