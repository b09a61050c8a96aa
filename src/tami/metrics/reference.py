"""A reference (GT) video and what is derived from it once, shared by every method scored against it."""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from .flow import FlowCache, FlowEstimator, PairFlows, video_key
from .temporal import brightness_changes_u8, luma_means_u8


class Reference:
    """Holds a GT video (and optionally the low-light input) and memoises its derived quantities.

    Scoring several methods against one ``Reference`` computes the GT brightness changes (MABD) once and the GT
    optical flow (E_warp) once per flow method: flows go through a :class:`~tami.metrics.flow.FlowCache`, keyed by
    the video's content digest and the flow settings.

    Args:
        gt: ``(T, H, W, 3) uint8`` reference video (see :func:`tami.metrics.frames.quantize`).
        inp: ``(T, H, W, 3) uint8`` low-light input, needed only for flow on the input.
        name: the video's name, for messages.
        cache: shared flow cache (e.g. with a disk folder); default: a private in-memory cache.
    """

    def __init__(self, gt: np.ndarray, *, inp: np.ndarray | None = None, name: str = "video",
                 cache: FlowCache | None = None) -> None:
        if inp is not None and inp.shape != gt.shape:
            raise InputError(f"{name}: input video shape {inp.shape} differs from GT shape {gt.shape}")
        self.gt = gt
        self.inp = inp
        self.name = name
        self.cache = cache if cache is not None else FlowCache()
        self._changes: np.ndarray | None = None
        self._means: np.ndarray | None = None
        self._digests: dict[str, str] = {}

    @property
    def frames(self) -> int:
        return int(self.gt.shape[0])

    def brightness_changes(self) -> np.ndarray:
        """``(T-1,)`` MABD vector of the GT (computed on first use)."""
        if self._changes is None:
            self._changes = brightness_changes_u8(self.gt)
        return self._changes

    def luma_means(self) -> np.ndarray:
        """``(T,)`` mean luma of every GT frame (J; computed on first use)."""
        if self._means is None:
            self._means = luma_means_u8(self.gt)
        return self._means

    def flows(self, estimator: FlowEstimator, source: str = "gt") -> PairFlows:
        """Backward flows and non-occlusion masks of the GT (``source="gt"``) or of the input (``"input"``)."""
        if source == "input":
            if self.inp is None:
                raise InputError(f"{self.name}: E_warp with flow on the input needs the input video (--input DIR)")
            frames = self.inp
        else:
            frames = self.gt
        if source not in self._digests:
            self._digests[source] = video_key(frames)
        return self.cache.get(frames, estimator, digest=self._digests[source])
