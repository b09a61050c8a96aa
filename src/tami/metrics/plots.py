"""PNG plots of an evaluation run (optional extra ``plot``: matplotlib, imported only when plotting).

One figure per video: the brightness-change curves ``m_t`` behind MABD for every method against the GT (a method
that flickers shows spikes the GT lacks), and the per-frame PSNR of every method.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from ..atomic import atomic_path
from .results import EvaluationReport


def plotting_available() -> bool:
    """Whether matplotlib is installed (``pip install "tami[plot]"``)."""
    return importlib.util.find_spec("matplotlib") is not None


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "video"


def plot_report(report: EvaluationReport, out_dir: str | os.PathLike[str]) -> list[Path]:
    """Write ``<video>.png`` per video into ``out_dir`` and return the paths.

    Uses matplotlib's object API with the Agg canvas, so no global backend is changed.

    Raises:
        ModuleNotFoundError: matplotlib is not installed (check :func:`plotting_available` first).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for video in report.video_names:
        gt_curve = report.gt_brightness.get(video)
        have_psnr = all("psnr" in m.videos[video].values for m in report.methods)
        rows = int(gt_curve is not None) + int(have_psnr)
        if rows == 0:
            continue
        fig = Figure(figsize=(9, 3.2 * rows), layout="constrained")
        FigureCanvasAgg(fig)
        axes = fig.subplots(rows, 1, squeeze=False)[:, 0]
        for ax in axes:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        row = 0
        if gt_curve is not None:
            ax = axes[row]
            ax.plot(range(1, len(gt_curve) + 1), gt_curve, color="black", linewidth=2, label="GT")
            for method in report.methods:
                curve = method.videos[video].brightness
                if curve is not None:
                    ax.plot(range(1, len(curve) + 1), curve, linewidth=1.2, label=method.name)
            ax.set_title(f"{video}: brightness change between frames (MABD curve)")
            ax.set_xlabel("frame pair (t, t+1)")
            ax.set_ylabel("mean |ΔY|")
            ax.legend(fontsize="small")
            row += 1
        if have_psnr:
            ax = axes[row]
            for method in report.methods:
                values = method.videos[video].values["psnr"]
                ax.plot(range(len(values)), values, marker=".", linewidth=1.2, label=method.name)
            ax.set_title(f"{video}: PSNR per frame")
            ax.set_xlabel("frame")
            ax.set_ylabel("PSNR (dB)")
            ax.legend(fontsize="small")
        path = out / f"{_safe(video)}.png"
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=100)
        paths.append(path)
    return paths
