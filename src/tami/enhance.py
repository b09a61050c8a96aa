"""Streaming video enhancement: the engine behind ``tami enhance``, ``tami demo`` and evaluation runs.

:class:`Enhancer` owns the per-video state (the adapter's memory and hidden state, the scene-cut detector) and
processes one frame at a time, so memory stays flat over any video length. Padding to the backbone's
``multiple_of`` happens inside the backbone (:meth:`tami.backbones.Backbone.encode`), nowhere else.

Before the first frame of a video, :meth:`Enhancer.check` makes sure the work can finish: the input decodes, the
outputs are writable, and the frame fits the device's memory (:mod:`tami.budget`); a frame that does not fit whole
is enhanced in overlapping tiles (:mod:`tami.tiling`), and one that does not fit even so is refused, naming
``--max-side``.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import Tensor

from .adapter import TAMI, StreamState
from .atomic import check_writable
from .budget import GIB, MemoryModel, available_bytes, measure_model
from .data.outputs import ImageWriter, open_output
from .data.video import VideoInfo, VideoWriter, open_video
from .device import Precision, autocast_dtype, resolve_device
from .errors import InputError
from .scene_cuts import SceneCutDetector
from .tiling import TileBlender, tile_grid

logger = logging.getLogger(__name__)

@dataclass(frozen=True)
class EnhanceOptions:
    """How :class:`Enhancer` runs a model.

    Attributes:
        device: ``auto``, ``cpu``, ``cuda[:N]`` or ``mps`` (:mod:`tami.device`).
        precision: ``fp32``; ``bf16`` (CPU and GPU, autocast); ``fp16`` (GPU only); ``auto`` (bf16 on CUDA).
        memory: frames kept in the adapter's memory (default: the model's own setting); 0 gives every frame an
            empty memory and hidden state - the adapter without temporal context, the ablation that tells its
            temporal gain from its per-frame one.
        max_side: process frames whose longer side exceeds this at a reduced size and upsample the result.
        backbone_only: run the frozen image backbone frame by frame (no temporal adapter), for comparison.
        scene_cut: histogram distance in [0, 1] above which a frame counts as a scene cut and resets the memory;
            None disables the test.
        tile: enhance frames in overlapping tiles of this side (pixels, at the working size); None: only when a
            whole frame would not fit in memory.
        memory_limit: plan for at most this many GiB of memory (default: what the device has free).
    """

    device: str = "auto"
    precision: Precision = "fp32"
    memory: int | None = None
    max_side: int | None = None
    backbone_only: bool = False
    scene_cut: float | None = 0.3
    tile: int | None = None
    memory_limit: float | None = None


@dataclass(frozen=True)
class FramePlan:
    """How frames of one size are enhanced: at ``size`` (after ``--max-side``), whole or in ``tile``-px tiles.

    ``need`` is the estimated peak memory in bytes and ``available`` the free memory (None: unknown).
    """

    size: tuple[int, int]
    tile: int | None
    overlap: int
    need: float
    available: int | None

    def describe(self) -> str:
        """E.g. ``3840x2160 in 512-px tiles, ~3.1 GiB of 20.5 GiB free``."""
        h, w = self.size
        how = f"in {self.tile}-px tiles (overlap {self.overlap})" if self.tile else "whole"
        free = f" of {self.available / GIB:.1f} GiB free" if self.available is not None else ""
        return f"{w}x{h} {how}, ~{self.need / GIB:.1f} GiB{free}"


@dataclass
class EnhanceStats:
    """What one :meth:`Enhancer.enhance_video` call did: ``frames`` written (``read`` decoded, plus one fill for
    each frame ``skipped`` between decoded ones), in ``seconds``."""

    input: Path
    output: Path
    frames: int
    seconds: float
    scene_cuts: int
    read: int = 0
    skipped: int = 0
    plan: FramePlan | None = None

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else float("inf")


class Enhancer:
    """Enhance videos frame by frame with a TAMI model, keeping the per-video state here.

    Example:
        >>> enhancer = Enhancer(load_enhancement_model())          # bundled model
        >>> enhancer.enhance_video("dark.mp4", "dark_tami.mp4")

    Args:
        model: a :class:`tami.adapter.TAMI` (its backbone is used alone with ``backbone_only``); the enhancer
            takes it over (moves it to the device and to eval mode) but never changes its configuration: the
            memory size ``options.memory`` sizes each stream's state (:meth:`TAMI.init_state`).
        options: device, precision, memory size, internal resolution, scene-cut test.
    """

    def __init__(self, model: TAMI, options: EnhanceOptions | None = None) -> None:
        self.options = options or EnhanceOptions()
        self.device = resolve_device(self.options.device)
        self.autocast_dtype = autocast_dtype(self.device, self.options.precision)
        if self.options.memory is not None:
            if self.options.memory < 0:
                raise InputError(
                    f"--memory must be 0 (no temporal context) or more frames, got {self.options.memory}"
                )
        if self.options.max_side is not None and self.options.max_side < model.backbone.multiple_of:
            raise InputError(
                f"--max-side must be at least {model.backbone.multiple_of}, got {self.options.max_side}"
            )
        _check_rgb(model)
        if self.options.tile is not None and self.options.tile < _MIN_TILE:
            raise InputError(f"--tile must be at least {_MIN_TILE} pixels, got {self.options.tile}")
        self.model = model.to(self.device).eval()
        self.cuts = SceneCutDetector(self.options.scene_cut) if self.options.scene_cut is not None else None
        self.scene_cuts = 0
        self._states: dict[int, StreamState] = {}  # one per tile (key 0 when frames are enhanced whole)
        self._memory_model: MemoryModel | None = None
        self._plans: dict[tuple[int, int], FramePlan] = {}
        self._blenders: dict[tuple[int, int], TileBlender] = {}

    @property
    def state(self) -> StreamState | None:
        """The adapter's state for the current video (None before its first frame, after a cut, or backbone-only;
        with tiles, the first tile's)."""
        return self._states.get(0)

    def reset(self) -> None:
        """Start a new video: empty memory, zero hidden state, no previous frame for the cut test."""
        self._states.clear()
        if self.cuts is not None:
            self.cuts.reset()

    # -- memory ------------------------------------------------------------------------------------------------
    def memory_model(self) -> MemoryModel:
        """The model's measured memory need per frame pixel (measured once, on two small inputs)."""
        if self._memory_model is None:
            steps = 1 if self.options.backbone_only or self.options.memory == 0 else 2

            def run(x: Tensor) -> int:
                self._states = {}
                for _ in range(steps):
                    self._run(x)
                state = self._states.get(0)
                if state is None:
                    return 0
                hidden = state.hidden.nelement() * state.hidden.element_size() if state.hidden is not None else 0
                return state.memory.nbytes() + hidden

            m = self.model.backbone.multiple_of
            saved = self._states  # the probe runs on its own states; the current video's are kept
            try:
                self._memory_model = measure_model(run, (-(-64 // m) * m, -(-128 // m) * m), self.device)
            finally:
                self._states = saved
        return self._memory_model

    def plan(self, height: int, width: int) -> FramePlan:
        """How frames of ``height x width`` are enhanced on this device: whole, in tiles, or not at all.

        Raises:
            InputError: not even the smallest tiles fit in the free memory (the message names ``--max-side``).
        """
        if (height, width) in self._plans:
            return self._plans[(height, width)]
        ih, iw = self._internal_size(height, width)
        limit = None if self.options.memory_limit is None else int(self.options.memory_limit * GIB)
        available = available_bytes(self.device, limit)
        if self.options.tile is None and (available is None or ih * iw <= _SMALL_FRAME):
            plan = FramePlan((ih, iw), None, 0, 0.0, available)
        else:
            plan = self._fit((height, width), (ih, iw), available)
            if plan is None:
                raise InputError(self._refusal((height, width), (ih, iw), available))  # type: ignore[arg-type]
        self._plans[(height, width)] = plan
        logger.debug("frames of %dx%d: %s", width, height, plan.describe())
        return plan

    def _fit(self, size: tuple[int, int], working: tuple[int, int], available: int | None) -> FramePlan | None:
        """The plan for ``size`` frames enhanced at ``working`` size: whole if that fits, else the largest tiles
        that fit; None when nothing fits."""
        model = self.memory_model()
        (h, w), (ih, iw) = size, working
        # Outside the model: the decoded input, the output and its upsampled copy at full size, the working copy
        # and the two tile-blend buffers at the working size (float32 RGB, 12 bytes a pixel each), and the video
        # decoder's and H.264 encoder's frame queues (~32 Y'CbCr 4:2:0 frames at 1.5 bytes a pixel: 0.4 GiB at 4K,
        # as measured in benchmarks/enhance_4k.py).
        budget = None if available is None else 0.9 * available - 12 * (3 * h * w + 3 * ih * iw) - 48 * h * w
        if self.options.tile is None:
            need = model.frame_bytes(ih * iw)
            if budget is None or need <= budget:
                return FramePlan((ih, iw), None, 0, need, available)
        sides = [self.options.tile] if self.options.tile else _tile_sides(max(ih, iw), self.model.backbone.multiple_of)
        for tile in sides:
            overlap = _overlap(tile)
            tiles = tile_grid(ih, iw, tile, overlap, self.model.backbone.multiple_of)
            covered = sum((t.bottom - t.top) * (t.right - t.left) for t in tiles)
            need = model.tiled_bytes(min(tile * tile, ih * iw), covered)
            if self.options.tile or budget is None or need <= budget:
                return FramePlan((ih, iw), tile if len(tiles) > 1 else None, overlap, need, available)
        return None

    def _refusal(self, size: tuple[int, int], working: tuple[int, int], available: int) -> str:
        """The one-line refusal for frames that do not fit, with the largest ``--max-side`` that would."""
        (h, w), (ih, iw) = size, working
        m = self.model.backbone.multiple_of
        side = max(ih, iw)
        fits = next((s for s in range(side - side % 64, 63, -64)
                     if self._fit(size, (max(1, round(ih * s / side)), max(1, round(iw * s / side))), available)),
                    None)
        hint = f"enhance them smaller with --max-side {fits}" if fits else "free memory or use another device"
        return (f"{w}x{h} frames need about {self.memory_model().frame_bytes(ih * iw) / GIB:.1f} GiB on "
                f"{self.device} and {available / GIB:.1f} GiB is free, too little even for {_MIN_TILE}-px tiles "
                f"(multiples of {m}); {hint}")

    def _internal_size(self, h: int, w: int) -> tuple[int, int]:
        side = self.options.max_side
        if side is None or max(h, w) <= side:
            return h, w
        scale = side / max(h, w)
        return max(1, round(h * scale)), max(1, round(w * scale))

    def _to_tensor(self, frame: np.ndarray) -> Tensor:
        return torch.from_numpy(np.ascontiguousarray(frame, dtype=np.float32)).permute(2, 0, 1)[None].to(self.device)

    @torch.inference_mode()
    def _run(self, x: Tensor, key: int = 0) -> Tensor:
        """One model step on ``x`` with the stream state of tile ``key``."""
        with torch.autocast(self.device.type, dtype=self.autocast_dtype or torch.float32,
                            enabled=self.autocast_dtype is not None):
            if self.options.backbone_only:
                return self.model.backbone(x).float()
            stateless = self.options.memory == 0
            state = self._states.get(key)
            if state is None or stateless:
                state = self.model.init_state(batch=1, memory_frames=self.options.memory or None)
            out, self._states[key], _ = self.model.step(x, state, write=not stateless)  # nothing reads a write
            return out.float()

    def _enhance(self, frame: np.ndarray, key: int = 0) -> np.ndarray:
        return self._run(self._to_tensor(frame), key)[0].clamp(0.0, 1.0).permute(1, 2, 0).cpu().numpy()

    def step(self, frame: np.ndarray) -> np.ndarray:
        """Enhance the next frame of the current video.

        Args:
            frame: ``(H, W, 3) float32`` RGB in ``[0, 1]``.

        Returns:
            The enhanced ``(H, W, 3) float32`` RGB frame in ``[0, 1]``, same size as the input.

        Raises:
            InputError: not an ``(H, W, 3)`` float array, or a size other than the video's earlier frames.
        """
        if frame.ndim != 3 or frame.shape[2] != 3 or not np.issubdtype(frame.dtype, np.floating):
            raise InputError(f"frames must be (H, W, 3) float RGB arrays in [0, 1], got {frame.dtype} {frame.shape}")
        if self.cuts is not None and self.cuts.is_cut(frame) and self._states:
            self.scene_cuts += 1
            self._states.clear()
            logger.debug("scene cut: adapter memory reset")
        h, w = frame.shape[:2]
        plan = self.plan(h, w)
        ih, iw = plan.size
        small = frame if (ih, iw) == (h, w) else cv2.resize(frame, (iw, ih), interpolation=cv2.INTER_AREA)
        if plan.tile is None:
            out = self._enhance(small)
        else:
            if (ih, iw) not in self._blenders:
                self._blenders[(ih, iw)] = TileBlender(ih, iw, plan.tile, plan.overlap,
                                                       self.model.backbone.multiple_of)
            out = self._blenders[(ih, iw)].run(small, lambda key, window: self._enhance(window, key))
        if (ih, iw) != (h, w):
            out = np.clip(cv2.resize(out, (w, h), interpolation=cv2.INTER_CUBIC), 0.0, 1.0)
        return out

    def enhance_frames(self, frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """Enhance a whole video given as an iterable of frames (the state is reset first)."""
        self.reset()
        for frame in frames:
            yield self.step(frame)

    # -- files -------------------------------------------------------------------------------------------------
    def check(self, source: str | os.PathLike[str], outputs: Iterable[str | os.PathLike[str]], *,
              strict: bool = False) -> tuple[VideoInfo, FramePlan]:
        """Everything that can be checked before the first frame is enhanced.

        The input opens and its first frame decodes, every output can be written, and the frames fit this device's
        memory (whole or in tiles).

        Raises:
            InputError: the first problem found, as one line naming the fix.
        """
        info = open_video(source, strict=strict).info
        for target in outputs:
            check_writable(target)
        return info, self.plan(info.height, info.width)

    def enhance_video(
        self,
        source: str | os.PathLike[str],
        output: str | os.PathLike[str],
        *,
        compare: str | os.PathLike[str] | None = None,
        strict: bool = False,
        on_start: Callable[[VideoInfo], None] | None = None,
        on_frame: Callable[[int], None] | None = None,
    ) -> EnhanceStats:
        """Enhance a video file, frame folder or image into ``output``; nothing partial is left on failure.

        A video file is decoded to the end of its stream; a frame that cannot be decoded is filled by repeating the
        previous enhanced frame at its timestamp, so the output keeps the source's timing and audio sync (see
        :class:`tami.data.video.VideoReader`). With ``strict`` either is an error and nothing is written.

        Args:
            source: input video file, frame folder or single image.
            output: video file (source timing and audio kept), frame folder (frame names kept) or image path.
            compare: optional second output showing input | output side by side.
            strict: refuse truncated or damaged video files instead of using what decodes.
            on_start: called once with the input's :class:`VideoInfo` (e.g. to size a progress bar).
            on_frame: called after every frame with the number of frames done.

        Raises:
            InputError: unreadable input, unwritable output, bad frames; found before any frame is enhanced
                wherever they can be (:meth:`check`).
        """
        source, output = Path(source), Path(output)
        targets = [output] if compare is None else [output, Path(compare)]
        _, plan = self.check(source, targets, strict=strict)
        reader = open_video(source, strict=strict)
        info = reader.info
        if on_start is not None:
            on_start(info)
        audio = source if info.kind == "file" else None
        writers: list[VideoWriter | ImageWriter] = []
        start = time.perf_counter()
        cuts_before = self.scene_cuts
        count = 0
        self.reset()
        frames = reader.timed()
        previous: tuple[np.ndarray, np.ndarray] | None = None
        try:
            for target in targets:
                writers.append(open_output(target, info, audio))
            for count, item in enumerate(frames, start=1):
                if item.filled and previous is not None:
                    frame, out = previous  # a skipped frame: hold the previous one, leave the state alone
                else:
                    frame, out = item.image, self.step(item.image)
                previous = frame, out
                name = info.names[count - 1] if info.names is not None else None
                writers[0].write(out, name=name, pts=item.pts)
                if compare is not None:
                    writers[1].write(np.concatenate([frame, out], axis=1), name=name, pts=item.pts)
                if on_frame is not None:
                    on_frame(count)
            for writer in writers:
                writer.close()
        except BaseException:
            for writer in writers:
                writer.abort()
            raise
        finally:
            frames.close()
        report = reader.report
        read = report.read if info.kind == "file" else count
        return EnhanceStats(source, output, count, time.perf_counter() - start, self.scene_cuts - cuts_before,
                            read=read, skipped=report.skipped + report.trailing, plan=plan)


def _check_rgb(model: TAMI) -> None:
    """Refuse a backbone configured for other than 3 input or output channels: frames are fed and written as RGB."""
    config = model.backbone.config
    for role, keys in (("input", ("in_channels", "inp_channels")), ("output", ("out_channels",))):
        channels = next((config[k] for k in keys if k in config), 3)
        if channels != 3:
            raise InputError(f"the model's {model.backbone.arch} backbone takes {channels}-channel {role}, but video "
                             "frames are enhanced as 3-channel RGB; use a model trained on RGB frames")


_MIN_TILE = 64
# Frames up to 256x256 are never measured: the measurement itself (at 64x64 and 128x128) would cost more.
_SMALL_FRAME = 256 * 256


def _tile_sides(longest: int, multiple: int) -> list[int]:
    """Tile sides to try, largest first: from the frame's longer side down to the smallest tile, ~10 % apart."""
    sides, side = [], longest
    while side >= _MIN_TILE:
        rounded = max(_MIN_TILE, side // multiple * multiple)
        if not sides or rounded < sides[-1]:
            sides.append(rounded)
        side = int(side * 0.9)
    if not sides or sides[-1] != _MIN_TILE:
        sides.append(_MIN_TILE)
    return sides


def _overlap(tile: int) -> int:
    """Overlap of ``tile``-px tiles: an eighth of the side, at least 16 px, so seams are blended over a wide band."""
    return max(16, tile // 8)


__all__ = [
    "EnhanceOptions",
    "EnhanceStats",
    "Enhancer",
]
