"""Video quality metrics of the evaluation protocol (docs/metrics.md): PSNR, SSIM, E_warp and MABD, plus the
global brightness jitter J.

All metrics quantise sRGB frames in ``[0, 1]`` to 8 bits first and return the per-video score in natural units
(tables multiply E_warp and MABD by 10^3). Inputs are ``(T, 3, H, W)`` float tensors or arrays (``psnr`` and
``ssim`` also take single ``(3, H, W)`` images).

>>> from tami.metrics import psnr, ssim, ewarp, mabd, create_metric
>>> create_metric("ssim", window="uniform")(pred, gt)  # doctest: +SKIP
"""

from .flow import FlowCache, create_flow, list_flows
from .image import psnr, ssim
from .reference import Reference
from .registry import DEFAULT_METRICS, METRICS, Metric, MetricInfo, create_metric, list_metrics
from .temporal import ewarp, jitter, mabd, mabd_vector

__all__ = [
    "DEFAULT_METRICS",
    "METRICS",
    "FlowCache",
    "Metric",
    "MetricInfo",
    "Reference",
    "create_flow",
    "create_metric",
    "ewarp",
    "jitter",
    "list_flows",
    "list_metrics",
    "mabd",
    "mabd_vector",
    "psnr",
    "ssim",
]
