"""Video quality metrics of the evaluation protocol (docs/metrics.md): PSNR, SSIM, E_warp and MABD, plus the
global brightness jitter J.

All metrics quantise sRGB frames in ``[0, 1]`` to 8 bits first and return the per-video score in natural units
(tables multiply E_warp and MABD by 10^3). Inputs are ``(T, 3, H, W)`` float tensors or arrays (``psnr`` and
``ssim`` also take single ``(3, H, W)`` images).

This package's names are its public surface for the rest of tami: the registry (``create_metric``,
``list_metrics``), the one scoring path (``quantize_frames`` to the ``(T, H, W, 3) uint8`` boundary, a
``Reference``, ``score_video``) and the results (``EvaluationReport``, its tables, files and plots).

>>> from tami.metrics import psnr, ssim, ewarp, mabd, create_metric
>>> create_metric("ssim", window="uniform")(pred, gt)  # doctest: +SKIP
"""

from .flow import FlowCache, create_flow, list_flows
from .frames import quantize_frames
from .image import psnr, ssim
from .plots import plot_report, plotting_available
from .reference import Reference
from .registry import DEFAULT_METRICS, METRICS, Metric, MetricInfo, create_metric, list_metrics
from .results import (EvaluationReport, MethodScores, VideoScores, dataset_table, settings_lines, video_table,
                      write_report)
from .scoring import score_video
from .temporal import ewarp, jitter, mabd, mabd_vector

__all__ = [
    "DEFAULT_METRICS",
    "METRICS",
    "EvaluationReport",
    "FlowCache",
    "MethodScores",
    "Metric",
    "MetricInfo",
    "Reference",
    "VideoScores",
    "create_flow",
    "create_metric",
    "dataset_table",
    "ewarp",
    "jitter",
    "list_flows",
    "list_metrics",
    "mabd",
    "mabd_vector",
    "plot_report",
    "plotting_available",
    "psnr",
    "quantize_frames",
    "score_video",
    "settings_lines",
    "ssim",
    "video_table",
    "write_report",
]
