"""Frames of the report page: which time steps are shown, downscaling, and JPEG files next to the page.

Size bound (:class:`ReportLimits`): frames are downscaled so their long side is at most ``max_side`` (480 px);
each method shows at most ``max_frames`` (150) time steps, and all methods together at most ``max_pixels``
(64 Mpx: the browser keeps every frame decoded for the live time slices, 4 bytes per pixel, so at most 256 MB).
Longer selections are subsampled evenly (first and last frame kept); choose a contiguous range with ``frames=`` to
see every frame of a part. JPEG quality 85 measured 0.17 bytes per pixel on synthetic low-light clips (about
11 MB at the full 64 Mpx) and 0.77 bytes per pixel on uniform noise, the worst case (about 49 MB).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..errors import InputError
from ..frames import to_uint8
from ..data.sources import FrameSource

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReportLimits:
    """How big a report can get.

    Attributes:
        max_side: longest frame side in the page, pixels.
        max_frames: most time steps per method.
        max_pixels: most frame pixels over all methods and time steps (fewer steps are shown to stay below).
        quality: JPEG quality, 1..100.
    """

    max_side: int = 480
    max_frames: int = 150
    max_pixels: int = 64_000_000
    quality: int = 85

    def check(self) -> None:
        """Raise :class:`InputError` for a limit out of range."""
        if self.max_side < 16 or self.max_frames < 1 or self.max_pixels < 1 or not 1 <= self.quality <= 100:
            raise InputError(f"report limits out of range: {self}; need max_side >= 16, max_frames >= 1, "
                             "max_pixels >= 1 and 1 <= quality <= 100")


def page_size(height: int, width: int, max_side: int) -> tuple[int, int]:
    """``(height, width)`` of the page frames: scaled down (never up) so the long side is at most ``max_side``."""
    scale = min(1.0, max_side / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def choose_steps(steps: int, methods: int, size: tuple[int, int], limits: ReportLimits) -> list[int]:
    """Time steps shown: all of them when within the limits, else evenly spaced ones (first and last kept).

    Args:
        steps: aligned time steps available.
        methods: methods shown (each holds one frame per step).
        size: ``(height, width)`` of the page frames.
        limits: the bounds.
    """
    budget = min(limits.max_frames, limits.max_pixels // max(1, methods * size[0] * size[1]))
    budget = max(1, budget)
    if steps <= budget:
        return list(range(steps))
    if budget == 1:
        return [0]
    chosen = sorted({round(i * (steps - 1) / (budget - 1)) for i in range(budget)})
    logger.warning("showing %d of %d frames (every ~%.1f-th) to keep the report within %d frames per method and "
                   "%d Mpx in total; pass a frame range to see consecutive frames", len(chosen), steps,
                   (steps - 1) / (budget - 1), limits.max_frames, limits.max_pixels // 1_000_000)
    return chosen


def frame_file(step: int) -> str:
    """File name of the page frame at time-step position ``step``."""
    return f"{step:05d}.jpg"


def encode_jpeg(frame: np.ndarray, size: tuple[int, int], quality: int) -> bytes:
    """``(H, W, 3)`` float ``[0, 1]`` RGB frame → JPEG bytes at ``size`` ``(height, width)`` (area downscaling)."""
    image = to_uint8(frame)
    if image.shape[:2] != size:
        image = cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise InputError("cannot encode a frame as JPEG")
    return buf.tobytes()


def export_frames(source: FrameSource, indices: Sequence[int], folder: Path, size: tuple[int, int],
                  quality: int) -> int:
    """Stream ``source`` and write its frames ``indices`` (one per shown step, in order) as JPEGs.

    Returns:
        Bytes written.

    Raises:
        InputError: a wanted frame is missing (the video is shorter than its index says).
    """
    folder.mkdir(parents=True, exist_ok=True)
    positions: dict[int, list[int]] = {}
    for step, index in enumerate(indices):
        positions.setdefault(index, []).append(step)
    written = 0
    done = 0
    for index, frame in source.select(sorted(positions)):
        data = encode_jpeg(frame, size, quality)
        for step in positions[index]:
            (folder / frame_file(step)).write_bytes(data)
            written += len(data)
            done += 1
    if done != len(indices):
        raise InputError(f"method {source.name!r}: only {done} of the {len(indices)} frames shown could be read; "
                         "the video is truncated")
    return written


def bytes_label(size: int) -> str:
    """``1234567`` → ``"1.2 MB"``."""
    if size < 1000:
        return f"{size} B"
    power = min(3, int(math.log10(size) // 3))
    return f"{size / 1000 ** power:.1f} {['B', 'kB', 'MB', 'GB'][power]}"
