"""Overlapping tiles with seamless blending, so frames larger than the memory allows are enhanced piece by piece.

A frame is covered by a fixed grid of ``tile x tile`` windows that overlap by ``overlap`` pixels. Each window is
enhanced on its own (a video keeps one stream state per window, so every window is a small video of its own) and
the results are blended with weights that ramp linearly across every overlap: in each overlap the two windows'
weights sum to one, so there is no visible seam, and each pixel away from the overlaps comes from one window only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .errors import InputError


@dataclass(frozen=True)
class Tile:
    """One window of the grid: rows ``top:bottom``, columns ``left:right``."""

    top: int
    bottom: int
    left: int
    right: int


def _spans(length: int, tile: int, overlap: int, align: int) -> list[tuple[int, int]]:
    """Windows along one side: starts on multiples of ``align``, the last one running to the border."""
    if length <= tile:
        return [(0, length)]
    step = max(align, (tile - overlap) // align * align)
    starts = list(range(0, length - tile, step))
    last = (length - tile) // align * align
    if last > starts[-1]:
        starts.append(last)
    return [(start, start + tile) for start in starts[:-1]] + [(starts[-1], length)]


def tile_grid(height: int, width: int, tile: int, overlap: int, align: int = 1) -> list[Tile]:
    """The windows covering a ``height x width`` frame (row-major); a side shorter than ``tile`` is one window.

    Windows start on multiples of ``align`` (the backbone's ``multiple_of``), so a strided network samples every
    window on the grid it samples the whole frame on; the last window of a row or column may be up to
    ``align - 1`` pixels longer than ``tile``.
    """
    if tile <= 2 * overlap:
        raise InputError(f"tiles of {tile} px cannot overlap by {overlap} px; use tiles larger than {2 * overlap}")
    return [Tile(top, bottom, left, right) for top, bottom in _spans(height, tile, overlap, align)
            for left, right in _spans(width, tile, overlap, align)]


def _ramp(start: int, stop: int, length: int, neighbours: list[tuple[int, int]]) -> np.ndarray:
    """1-D weights of the window ``start:stop``: rising over its overlap with an earlier window, falling over its
    overlap with a later one, 1 elsewhere."""
    weights = np.ones(stop - start, np.float32)
    for other_start, other_stop in neighbours:
        if other_start < start < other_stop <= stop:  # overlap at our beginning
            n = other_stop - start
            weights[:n] = np.minimum(weights[:n], (np.arange(n, dtype=np.float32) + 0.5) / n)
        elif start <= other_start < stop < other_stop:  # overlap at our end
            n = stop - other_start
            weights[-n:] = np.minimum(weights[-n:], (n - 0.5 - np.arange(n, dtype=np.float32)) / n)
    return weights


class TileBlender:
    """Enhance a frame window by window and blend the windows into one frame.

    Args:
        height, width: frame size.
        tile, overlap: window side and overlap in pixels.
        align: windows start on multiples of this (see :func:`tile_grid`).
    """

    def __init__(self, height: int, width: int, tile: int, overlap: int, align: int = 1) -> None:
        self.height, self.width = height, width
        self.tiles = tile_grid(height, width, tile, overlap, align)
        rows = sorted({(t.top, t.bottom) for t in self.tiles})
        cols = sorted({(t.left, t.right) for t in self.tiles})
        self._weights = [np.outer(_ramp(t.top, t.bottom, height, rows), _ramp(t.left, t.right, width, cols))
                         for t in self.tiles]

    def run(self, frame: np.ndarray, enhance: Callable[[int, np.ndarray], np.ndarray]) -> np.ndarray:
        """Blend ``enhance(index, window)`` over all windows of ``frame`` ``(H, W, 3)``."""
        out = np.zeros((self.height, self.width, 3), np.float32)
        total = np.zeros((self.height, self.width, 1), np.float32)
        for index, (t, weight) in enumerate(zip(self.tiles, self._weights)):
            result = enhance(index, frame[t.top:t.bottom, t.left:t.right])
            out[t.top:t.bottom, t.left:t.right] += result * weight[:, :, None]
            total[t.top:t.bottom, t.left:t.right, 0] += weight
        out /= total
        return out
