"""The metric registry: ``create_metric(name, **options)`` with one documented default per option.

Every metric states its direction (``lower_better``), a numeric ``score_range``, the unit of its natural value and
the scale tables print it at (E_warp and MABD x10^3). ``metric.values(pred, ref)`` gives the per-frame (PSNR, SSIM)
or per-pair (E_warp, MABD) values of a quantised video against a :class:`~tami.metrics.reference.Reference`;
``metric.score(values)`` reduces them to the video's score (their mean); ``metric(pred, gt)`` does both on float
videos in ``[0, 1]``.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..errors import InputError
from ..registry import Registry, option_names
from .flow import DEFAULT_DIS_PRESET, FlowEstimator, create_flow, describe
from .frames import ArrayLike, quantize_pair
from .image import Channel, Window, check_options, psnr_frames_u8, ssim_frames_u8
from .reference import Reference
from .temporal import FLOW_SOURCES, ewarp_pairs_u8, jitter_pairs_u8, mabd_pairs_u8, mean_valid


@dataclass(frozen=True)
class MetricInfo:
    """Static facts about a metric.

    Attributes:
        name: registry name (``"psnr"``).
        label: column title (``"PSNR"``).
        unit: unit of the natural value (``"dB"``, ``""``).
        lower_better: direction used for ranks.
        score_range: numeric range of the natural value.
        table_scale: factor tables multiply by (1000 for E_warp and MABD).
        table_digits: decimals shown in tables (as in the TAMI paper).
        temporal: values are per frame pair (``T - 1``) rather than per frame (``T``).
    """

    name: str
    label: str
    unit: str
    lower_better: bool
    score_range: tuple[float, float]
    table_scale: float
    table_digits: int
    temporal: bool

    @property
    def table_label(self) -> str:
        return self.label if self.table_scale == 1 else f"{self.label}×10³"


class Metric(ABC):
    """Base of the registered metrics: options, description, and scoring of float videos."""

    info: ClassVar[MetricInfo]

    def options(self) -> dict[str, Any]:
        """The resolved options (every default filled in)."""
        return {k: getattr(self, k) for k in option_names(type(self)) or ()}

    def describe(self) -> str:
        """One line naming the metric and every option, stored with each number."""
        opts = ", ".join(f"{k}={v}" for k, v in self.options().items())
        return f"{self.info.name}({opts})"

    @abstractmethod
    def values(self, pred: np.ndarray, ref: Reference) -> np.ndarray:
        """Per-frame (or per-pair) values of ``pred`` (``(T, H, W, 3) uint8``) against ``ref``."""

    def score(self, values: np.ndarray) -> float:
        """The video's score from its per-frame values: their mean."""
        return float(np.mean(values))

    def __call__(self, pred: ArrayLike, gt: ArrayLike) -> float:
        """Score of ``pred`` against ``gt``, ``(T, 3, H, W)`` float in ``[0, 1]`` (tensors or arrays)."""
        p, g = quantize_pair(pred, gt, video=self.info.temporal)
        return self.score(self.values(p, Reference(g)))


METRICS: Registry[type[Metric]] = Registry("metric")


@METRICS.register("psnr")
class PSNR(Metric):
    """PSNR in dB, peak 1, mean over frames (``inf`` for identical frames).

    Args:
        channel: ``"rgb"`` (default; docs/metrics.md) or ``"y"`` (BT.601 Y of YCbCr).
        crop_border: pixels dropped at each border (default 0).
    """

    info = MetricInfo("psnr", "PSNR", "dB", False, (0.0, math.inf), 1.0, 3, False)

    def __init__(self, channel: Channel = "rgb", crop_border: int = 0) -> None:
        check_options(channel, crop_border)
        self.channel, self.crop_border = channel, crop_border

    def values(self, pred: np.ndarray, ref: Reference) -> np.ndarray:
        return psnr_frames_u8(pred, ref.gt, channel=self.channel, crop_border=self.crop_border)


@METRICS.register("ssim")
class SSIM(Metric):
    """SSIM, mean over frames.

    Args:
        window: ``"gaussian"`` (11x11, sigma 1.5; default, docs/metrics.md) or ``"uniform"`` (7x7, sample covariance:
            scikit-image's default).
        channel: ``"rgb"`` (per channel, averaged; default) or ``"y"``.
        crop_border: pixels dropped at each border (default 0).
    """

    info = MetricInfo("ssim", "SSIM", "", False, (-1.0, 1.0), 1.0, 3, False)

    def __init__(self, window: Window = "gaussian", channel: Channel = "rgb", crop_border: int = 0) -> None:
        check_options(channel, crop_border, window)
        self.window, self.channel, self.crop_border = window, channel, crop_border

    def values(self, pred: np.ndarray, ref: Reference) -> np.ndarray:
        return ssim_frames_u8(pred, ref.gt, window=self.window, channel=self.channel, crop_border=self.crop_border)


@METRICS.register("ewarp")
class EWarp(Metric):
    """Warping error of Lai et al. (2018) with the forward-backward occlusion mask; natural units (x10^3 in tables).

    Args:
        flow: flow method, ``"dis"`` (default) or ``"raft"`` (needs ``weights`` and torchvision).
        preset: DIS preset, ``"medium"`` by default (ignored by RAFT).
        weights: local RAFT weights file (RAFT only; default None).
        source: video the flow is estimated on: ``"gt"`` (default), ``"output"`` or ``"input"``.
        occlusion: apply the non-occlusion mask (default True).
    """

    info = MetricInfo("ewarp", "E_warp", "", True, (0.0, 1.0), 1000.0, 3, True)

    def __init__(self, flow: str = "dis", preset: str = DEFAULT_DIS_PRESET, weights: str | None = None,
                 source: str = "gt", occlusion: bool = True) -> None:
        if source not in FLOW_SOURCES:
            raise InputError(f"E_warp flow source must be one of {', '.join(FLOW_SOURCES)}, got {source!r}")
        self.flow, self.preset, self.weights, self.source, self.occlusion = flow, preset, weights, source, occlusion
        if flow == "dis":
            self.estimator: FlowEstimator = create_flow("dis", preset=preset)
        elif flow == "raft":
            self.estimator = create_flow("raft", weights=weights)
        else:
            self.estimator = create_flow(flow)

    def describe(self) -> str:
        mask = "fb-occlusion mask" if self.occlusion else "no occlusion mask"
        return f"ewarp(flow={describe(self.estimator.settings())} on {self.source}, {mask})"

    def values(self, pred: np.ndarray, ref: Reference) -> np.ndarray:
        if self.source == "output":
            flows = ref.cache.get(pred, self.estimator)
        else:
            flows = ref.flows(self.estimator, self.source)
        return ewarp_pairs_u8(pred, flows, occlusion=self.occlusion)

    def score(self, values: np.ndarray) -> float:
        return mean_valid(values)


@METRICS.register("mabd")
class MABD(Metric):
    """Mean absolute brightness difference (Rec. 709 luma); natural units (x10^3 in tables). No options."""

    info = MetricInfo("mabd", "MABD", "", True, (0.0, 1.0), 1000.0, 4, True)

    def values(self, pred: np.ndarray, ref: Reference) -> np.ndarray:
        return mabd_pairs_u8(pred, ref.brightness_changes())


@METRICS.register("jitter")
class Jitter(Metric):
    """Global brightness jitter J: std over frame pairs of the change of ln(mean luma ratio) to the reference.

    Log units (0 = the output's brightness follows the reference's up to a constant factor). Not part of the
    paper's tables, so not among the default metrics; ask for it with ``--metrics ...,jitter``. No options.
    """

    info = MetricInfo("jitter", "J", "", True, (0.0, math.inf), 1.0, 4, True)

    def values(self, pred: np.ndarray, ref: Reference) -> np.ndarray:
        return jitter_pairs_u8(pred, ref.luma_means())

    def score(self, values: np.ndarray) -> float:
        return float(np.std(values))


DEFAULT_METRICS: tuple[str, ...] = ("psnr", "ssim", "ewarp", "mabd")


def create_metric(name: str, **options: Any) -> Metric:
    """Build a metric by name with options.

    Args:
        name: ``"psnr"``, ``"ssim"``, ``"ewarp"``, ``"mabd"`` or ``"jitter"`` (see :func:`list_metrics`).
        **options: the metric's options; each has one documented default (see the metric classes).

    Raises:
        UnknownNameError: unknown metric, with close matches.
        OptionError: unknown option, naming the valid ones.
        InputError: an option value out of its range.
    """
    metric: Metric = METRICS.create(name, **options)
    return metric


def list_metrics(pattern: str | None = None) -> list[str]:
    """Registered metric names, optionally filtered by a shell-style pattern."""
    return METRICS.names(pattern)
