"""The report's HTML: the packaged template with its style, script, data and metrics inlined (no network use)."""

from __future__ import annotations

import html
import json
import re
from importlib import resources
from typing import Any

from ..metrics import EvaluationReport, dataset_table, settings_lines, video_table

_PLACEHOLDER = re.compile(r"\{\{([A-Z_]+)\}\}")


def asset(name: str) -> str:
    """Text of a packaged asset (``page.html``, ``report.css``, ``report.js``)."""
    return (resources.files("tami.report") / "assets" / name).read_text(encoding="utf-8")


def html_table(headers: list[str], rows: list[list[str]]) -> str:
    """A plain HTML table; every cell escaped."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def metrics_html(report: EvaluationReport, plots: list[str], files: list[str]) -> str:
    """The metrics section: dataset table, per-video tables, settings, plots and links to the raw results.

    Args:
        report: the evaluation.
        plots: plot image paths relative to the page.
        files: result files (JSON/CSV/Markdown) relative to the page.
    """
    parts = ["<h2>Metrics</h2>", html_table(*dataset_table(report))]
    for method in report.methods:
        parts += [f"<h3>{html.escape(method.name)}: per video</h3>", html_table(*video_table(report, method))]
    parts.append("<ul class=\"settings\">" + "".join(f"<li>{html.escape(line)}</li>" for line in settings_lines(report))
                 + "</ul>")
    parts += [f"<figure><img src=\"{html.escape(p)}\" alt=\"metric plot\"></figure>" for p in plots]
    if files:
        parts.append("<p class=\"files\">Results: " + ", ".join(
            f"<a href=\"{html.escape(f)}\">{html.escape(f)}</a>" for f in files) + "</p>")
    return "\n".join(parts)


def render_page(*, title: str, data: dict[str, Any], metrics: str, info: str) -> str:
    """Fill the template: ``title`` and ``info`` are escaped; ``metrics`` is trusted HTML; ``data`` becomes JSON."""
    payload = json.dumps(data, separators=(",", ":")).replace("<", "\\u003c").replace(">", "\\u003e")
    values = {
        "TITLE": html.escape(title),
        "INFO": html.escape(info),
        "STYLE": asset("report.css"),
        "SCRIPT": asset("report.js"),
        "DATA": payload,
        "METRICS": metrics,
    }
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], asset("page.html"))
