"""Build the comparison report: one static ``index.html`` plus downscaled JPEG frames, usable from ``file://``.

The page plays every method in sync, has a frame scrubber and a draggable line whose time slices are recomputed in
the browser for every method (from the JPEG frames drawn into canvases), and, with a GT, the metrics tables and
plots of :mod:`tami.metrics` (scored by :func:`tami.evaluation.compare.evaluate_methods`, as ``tami evaluate``
scores). Nothing is loaded from the network. The size bound is :class:`ReportLimits`.
"""

from __future__ import annotations

import datetime
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .. import __version__
from ..atomic import atomic_path
from ..data.sources import FrameInput, align_frames, open_sources
from ..data.video import open_video
from ..errors import InputError
from ..evaluation.compare import GT_NAME, evaluate_methods
from ..metrics import DEFAULT_METRICS, EvaluationReport, create_metric, plot_report, plotting_available, write_report
from ..wording import count
from .frames import ReportLimits, bytes_label, choose_steps, export_frames, page_size
from .page import metrics_html, render_page

logger = logging.getLogger(__name__)

PAGE = "index.html"
FRAMES_DIR = "frames"


def _is_path(value: object) -> bool:
    return isinstance(value, (str, os.PathLike))


def _check_target(out: Path) -> None:
    """Refuse to replace a non-empty folder that is not an earlier report."""
    if out.exists() and not out.is_dir():
        raise InputError(f"report output {out} is a file; give a folder")
    if out.is_dir() and any(out.iterdir()) and not ((out / PAGE).is_file() and (out / FRAMES_DIR).is_dir()):
        raise InputError(f"report output {out} is a non-empty folder that is not a tami report; give a new or "
                         "empty folder (an earlier report there is replaced)")


def build_report(methods: Mapping[str, FrameInput], out_dir: str | os.PathLike[str], *,
                 gt: FrameInput | None = None, metrics: list[str] | tuple[str, ...] | None = DEFAULT_METRICS,
                 frames: slice | None = None, fps: float | None = None, title: str = "tami comparison",
                 limits: ReportLimits | None = None, evaluation: EvaluationReport | None = None,
                 strict: bool = False) -> Path:
    """Write a self-contained comparison page into ``out_dir`` and return the path of its ``index.html``.

    Args:
        methods: method name -> video file, frame folder, ``(T, H, W, 3)`` array or list of ``(H, W, 3)`` frames
            (float RGB in ``[0, 1]`` or uint8). Every method needs one frame size.
        out_dir: output folder (created; an earlier report there is replaced; other non-empty folders refused).
        gt: ground truth, shown last as ``GT`` and used for metrics.
        metrics: metric names scored against ``gt`` on every frame, whatever ``frames`` shows (None or empty:
            no metrics).
        frames: positions (reference order) to show, e.g. ``slice(0, 60)``; default all (subsampled to the limits).
        fps: playback rate; default: the first video file's rate, else 25.
        title: page title.
        limits: size bound (default :class:`ReportLimits`).
        evaluation: precomputed results to show instead of scoring ``gt``.
        strict: a truncated or damaged video file is an error (else its decodable frames are used).

    Raises:
        InputError: unreadable inputs, different frame sizes, an iterator of unknown length, a bad output folder.
    """
    limits = limits or ReportLimits()
    limits.check()
    out = Path(out_dir)
    _check_target(out)
    shown: dict[str, FrameInput] = dict(methods)
    if gt is not None:
        if GT_NAME in shown:
            raise InputError(f"a method is named {GT_NAME!r} and gt= is given too; rename the method or drop gt=")
        shown[GT_NAME] = gt
    sources = open_sources(shown, strict=strict)
    unknown = [s.name for s in sources.values() if s.count is None and s.names is None]
    if unknown:
        raise InputError(f"method {unknown[0]!r} is an iterator of unknown length; give a path, a list or a "
                         "(T, H, W, 3) array for the report")
    alignment = align_frames(sources, frames)
    first = next(iter(sources.values()))
    size = page_size(first.height, first.width, limits.max_side)
    steps = choose_steps(len(alignment.labels), len(sources), size, limits)
    if evaluation is None and gt is not None and metrics:
        chosen = [create_metric(name) for name in dict.fromkeys(metrics)]
        evaluation = evaluate_methods(methods, gt, chosen)
    rate = fps or next((r for r in map(_file_fps, shown.values()) if r), None) or 25.0

    with atomic_path(out, directory=True) as tmp:
        total = 0
        entries = []
        for k, (name, source) in enumerate(sources.items()):
            folder = f"{FRAMES_DIR}/m{k}"
            indices = [alignment.indices[name][t] for t in steps]
            total += export_frames(source, indices, tmp / folder, size, limits.quality)
            entries.append({"name": name, "dir": folder})
        section = ""
        if evaluation is not None:
            files = [p.relative_to(tmp).as_posix() for p in write_report(evaluation, tmp / "metrics")]
            plots: list[str] = []
            if plotting_available():
                plots = [p.relative_to(tmp).as_posix() for p in plot_report(evaluation, tmp / "plots")]
            else:
                logger.info("metric plots skipped: matplotlib is not installed (pip install \"tami[plot]\")")
            section = metrics_html(evaluation, plots, files)
        data: dict[str, Any] = {
            "version": __version__,
            "width": size[1], "height": size[0],
            "source": {"width": first.width, "height": first.height},
            "fps": rate,
            "alignment": alignment.mode,
            "labels": [alignment.labels[t] for t in steps],
            "positions": steps,
            "total": len(alignment.labels),
            "methods": entries,
            "bytes": total,
            "limits": {"max_side": limits.max_side, "max_frames": limits.max_frames,
                       "max_pixels": limits.max_pixels, "quality": limits.quality},
        }
        info = (f"{count(len(sources), 'method')}, {len(steps)} of {count(len(alignment.labels), 'frame')} "
                f"({first.width}x{first.height} shown at {size[1]}x{size[0]}), aligned by {alignment.mode}; "
                f"frames {bytes_label(total)}; made {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')} "
                f"by tami {__version__}")
        (tmp / PAGE).write_text(render_page(title=title, data=data, metrics=section, info=info), encoding="utf-8")
    logger.info("report: %s x %s, %s of frames", count(len(sources), "method"), count(len(steps), "frame"),
                bytes_label(total))
    return out / PAGE


def _file_fps(value: FrameInput) -> float | None:
    """Frame rate of a video file input, else None."""
    if not _is_path(value) or Path(value).is_dir():  # type: ignore[arg-type]
        return None
    with open_video(value) as reader:  # type: ignore[arg-type]
        return reader.info.fps

