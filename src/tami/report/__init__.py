"""A browsable, self-contained comparison report: ``build_report(methods, out_dir, gt=...)`` (see :mod:`.build`).

The page (``index.html`` with inline script and style, JPEG frames in ``frames/``) works from ``file://`` without
a server or network: synchronized playback, a frame scrubber, a draggable line with live time slices of every
method, and the metrics of :mod:`tami.metrics` when a GT is given. Size bound: :class:`ReportLimits`.
"""

from ..evaluation.compare import evaluate_methods
from .build import build_report
from .frames import ReportLimits

__all__ = ["ReportLimits", "build_report", "evaluate_methods"]
