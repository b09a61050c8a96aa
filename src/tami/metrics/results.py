"""Evaluation results: per-video and dataset scores, paper-style ranks, and JSON / CSV / Markdown output.

A video's score is the mean over its frames (pairs); a dataset's score is the mean over its videos. With several
methods, each is ranked per metric among all methods (PSNR, SSIM descending; E_warp, MABD ascending; ties share
the mean of their positions) and the average of its ranks is reported, as in the TAMI paper's tables.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..atomic import atomic_path
from .registry import Metric, MetricInfo


@dataclass
class VideoScores:
    """One method on one video.

    Attributes:
        video: video name.
        frames: names of the scored frames.
        values: per-frame (per-pair for temporal metrics) values by metric name.
        scores: the video's score by metric name (mean of ``values``).
        brightness: the method's MABD curve ``m_t`` (``T - 1`` values), for plots.
    """

    video: str
    frames: list[str]
    values: dict[str, np.ndarray]
    scores: dict[str, float]
    brightness: np.ndarray | None = None


@dataclass
class MethodScores:
    """All videos of one method, in evaluation order."""

    name: str
    path: str
    videos: dict[str, VideoScores] = field(default_factory=dict)

    def dataset(self, metric: str) -> float:
        """Mean over videos of the video scores (videos without a score, e.g. all pairs occluded, left out)."""
        vals = [v.scores[metric] for v in self.videos.values() if not math.isnan(v.scores[metric])]
        return float(np.mean(vals)) if vals else float("nan")


@dataclass
class EvaluationReport:
    """Everything an evaluation run produced, and how (metrics' settings, protocol, command line)."""

    metrics: list[Metric]
    methods: list[MethodScores]
    gt: str
    protocol: dict[str, Any] | None = None
    gt_brightness: dict[str, np.ndarray] = field(default_factory=dict)
    command: str | None = None
    seconds: float = 0.0

    @property
    def video_names(self) -> list[str]:
        return list(self.methods[0].videos) if self.methods else []


def rank_values(values: list[float], *, lower_better: bool) -> list[float]:
    """Competition ranks starting at 1 (best); ties share the mean of their positions; NaN ranks last."""
    key = [(math.inf if math.isnan(v) else (v if lower_better else -v)) for v in values]
    order = sorted(range(len(values)), key=lambda i: key[i])
    ranks = [0.0] * len(values)
    pos = 0
    while pos < len(order):
        end = pos
        while end + 1 < len(order) and key[order[end + 1]] == key[order[pos]]:
            end += 1
        for i in order[pos:end + 1]:
            ranks[i] = (pos + end) / 2 + 1
        pos = end + 1
    return ranks


def ranks(report: EvaluationReport) -> dict[str, dict[str, float]]:
    """Per-method ranks by metric name, plus ``"average"``: the mean of the metric ranks.

    Scores are compared as the tables show them (rounded to the displayed digits), so equal-looking values share
    a rank.
    """
    out: dict[str, dict[str, float]] = {m.name: {} for m in report.methods}
    for metric in report.metrics:
        scores = [_displayed(m.dataset(metric.info.name), metric) for m in report.methods]
        for method, r in zip(report.methods, rank_values(scores, lower_better=metric.info.lower_better)):
            out[method.name][metric.info.name] = r
    for method in out.values():
        method["average"] = float(np.mean(list(method.values()))) if method else float("nan")
    return out


def _displayed(value: float, metric: Metric) -> float:
    """``value`` at the precision the tables show it."""
    return round(value * metric.info.table_scale, metric.info.table_digits) if math.isfinite(value) else value


def format_score(value: float, info: MetricInfo) -> str:
    """``value`` of the metric ``info`` as every tami table shows it (scaled, fixed decimals, n/a and inf spelled)."""
    if math.isnan(value):
        return "n/a"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value * info.table_scale:.{info.table_digits}f}"


def _fmt(value: float, metric: Metric) -> str:
    return format_score(value, metric.info)


def _fmt_rank(r: float) -> str:
    return f"{r:.0f}" if r == int(r) else f"{r:.1f}"


def dataset_table(report: EvaluationReport) -> tuple[list[str], list[list[str]]]:
    """The dataset table: one row per method; with several methods, ranks in brackets and the average rank."""
    several = len(report.methods) > 1
    headers = ["method", *(m.info.table_label for m in report.metrics)]
    if several:
        headers.append("Avg. Rank")
    table_ranks = ranks(report) if several else {}
    rows = []
    for method in report.methods:
        row = [method.name]
        for metric in report.metrics:
            cell = _fmt(method.dataset(metric.info.name), metric)
            if several:
                cell += f" ({_fmt_rank(table_ranks[method.name][metric.info.name])})"
            row.append(cell)
        if several:
            row.append(f"{table_ranks[method.name]['average']:.2f}")
        rows.append(row)
    return headers, rows


def video_table(report: EvaluationReport, method: MethodScores) -> tuple[list[str], list[list[str]]]:
    """Per-video table of one method (frames scored and every metric)."""
    headers = ["video", "frames", *(m.info.table_label for m in report.metrics)]
    rows = [[v.video, str(len(v.frames)), *(_fmt(v.scores[m.info.name], m) for m in report.metrics)]
            for v in method.videos.values()]
    return headers, rows


def render_text(headers: list[str], rows: list[list[str]]) -> str:
    """A plain aligned table for the terminal (first column left, the others right-aligned)."""
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    return "\n".join([line(headers), "  ".join("-" * w for w in widths), *(line(r) for r in rows)])


def render_markdown(headers: list[str], rows: list[list[str]]) -> str:
    """A GitHub-flavoured Markdown table."""
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join(["---"] + ["---:"] * (len(headers) - 1)) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def _json_float(v: float) -> float | str:
    return v if math.isfinite(v) else ("nan" if math.isnan(v) else ("inf" if v > 0 else "-inf"))


def _json_list(a: np.ndarray) -> list[float | str]:
    return [_json_float(float(x)) for x in a]


def settings_lines(report: EvaluationReport) -> list[str]:
    """How every number was computed: one line per metric, plus the protocol."""
    lines = [f"{m.info.table_label}: {m.describe()}" for m in report.metrics]
    if report.protocol:
        p = report.protocol
        subset = f" ({p['subset']})" if p.get("subset") else ""
        lines.append(f"protocol: {p['name']}{subset}: {p['description']}")
    lines.append("frames quantised to 8 bits; video score = mean over frames (pairs); dataset = mean over videos")
    return lines


def to_json(report: EvaluationReport) -> dict[str, Any]:
    """Everything in the report as JSON-ready data (non-finite numbers as the strings "inf"/"nan")."""
    table_ranks = ranks(report)
    return {
        "tami_version": __version__,
        "command": report.command,
        "gt": report.gt,
        "protocol": report.protocol,
        "seconds": round(report.seconds, 3),
        "metrics": {
            m.info.name: {"label": m.info.label, "unit": m.info.unit, "lower_better": m.info.lower_better,
                          "score_range": [_json_float(x) for x in m.info.score_range],
                          "table_scale": m.info.table_scale, "settings": m.describe(), "options": m.options()}
            for m in report.metrics
        },
        "methods": [
            {
                "name": method.name,
                "path": method.path,
                "dataset": {m.info.name: _json_float(method.dataset(m.info.name)) for m in report.metrics},
                "ranks": table_ranks[method.name],
                "videos": [
                    {"video": v.video, "frames": v.frames,
                     "scores": {k: _json_float(s) for k, s in v.scores.items()},
                     "per_frame": {k: _json_list(a) for k, a in v.values.items()},
                     **({"brightness_changes": _json_list(v.brightness)} if v.brightness is not None else {})}
                    for v in method.videos.values()
                ],
            }
            for method in report.methods
        ],
        "gt_brightness_changes": {k: _json_list(v) for k, v in report.gt_brightness.items()},
    }


def markdown(report: EvaluationReport) -> str:
    """The whole report as Markdown: dataset table, settings, and one per-video table per method."""
    parts = ["# Evaluation", "", render_markdown(*dataset_table(report)), ""]
    parts += [f"- {line}" for line in settings_lines(report)]
    for method in report.methods:
        parts += ["", f"## {method.name}", "", render_markdown(*video_table(report, method))]
    return "\n".join(parts) + "\n"


def write_report(report: EvaluationReport, out_dir: str | Path) -> list[Path]:
    """Write ``results.json``, ``summary.csv`` (one row per method, with ranks), ``per_video.csv`` and
    ``results.md`` into ``out_dir`` (each written atomically); return their paths.

    Every CSV row carries each metric's settings (for E_warp: the flow method and its parameters).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    table_ranks = ranks(report)
    names = [m.info.name for m in report.metrics]
    settings = {m.info.name: m.describe() for m in report.metrics}
    paths = [out / "results.json", out / "summary.csv", out / "per_video.csv", out / "results.md"]

    with atomic_path(paths[0]) as tmp:
        tmp.write_text(json.dumps(to_json(report), indent=1) + "\n")
    with atomic_path(paths[1]) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["method", "videos", *names, *(f"rank_{n}" for n in names), "average_rank",
                         *(f"{n}_settings" for n in names)])
        for method in report.methods:
            r = table_ranks[method.name]
            writer.writerow([method.name, len(method.videos), *(repr(float(method.dataset(n))) for n in names),
                             *(r[n] for n in names), r["average"], *(settings[n] for n in names)])
    with atomic_path(paths[2]) as tmp, open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["method", "video", "frames", *names, *(f"{n}_settings" for n in names)])
        for method in report.methods:
            for v in method.videos.values():
                writer.writerow([method.name, v.video, len(v.frames), *(repr(float(v.scores[n])) for n in names),
                                 *(settings[n] for n in names)])
    with atomic_path(paths[3]) as tmp:
        tmp.write_text(markdown(report))
    return paths
