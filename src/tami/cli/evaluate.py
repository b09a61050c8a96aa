"""Score enhanced videos against ground truth: PSNR, SSIM, E_warp and MABD (definitions: docs/metrics.md).

Each folder (GT, --pred, every --method) holds one sub-folder of frames or one video file per video, matched by
name; frames are matched by file name (video files by order). Frames are quantised to 8 bits first. A video's score
is the mean over its frames (pairs), a dataset's the mean over its videos.

With several methods the dataset table has the TAMI paper's shape: PSNR, SSIM, E_warp x10^3, MABD x10^3, the rank
of each method per metric (PSNR/SSIM higher is better, E_warp/MABD lower) and the average rank.

Writes into -o OUT: results.json (everything, with per-frame values and every setting), summary.csv,
per_video.csv, results.md, and plots/<video>.png (MABD brightness curves and per-frame PSNR; needs matplotlib).
An earlier results folder is not replaced unless --force is given. --report also writes OUT/report/: one
`tami report` page per video (synchronised playback, time slices) linked from OUT/report/index.html, which shows
the dataset table.

examples:
  tami evaluate --pred out/retinexformer --gt SDSD-indoor/eval/GT --protocol sdsd-dynamic -o eval/
  tami evaluate --gt GT/ --method base=out/base --method tami=out/tami -o eval/
"""

from __future__ import annotations

import argparse
import html
import logging
import shlex
import sys
import time
from pathlib import Path

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from ..errors import UsageError
from ..metrics.results import EvaluationReport, MethodScores
from ..report import build_report
from ..report.dataset import href, write_per_video
from ..report.page import html_table
from ..metrics import DEFAULT_METRICS, FlowCache, create_metric, list_metrics
from ..evaluation.evaluator import Evaluator
from ..metrics.flow import DIS_PRESETS
from ..metrics.image import CHANNELS, WINDOWS
from ..metrics.plots import plot_report, plotting_available
from ..evaluation.protocols import EVAL_PROTOCOLS
from ..metrics.registry import Metric
from ..metrics.results import dataset_table, render_text, settings_lines, video_table, write_report
from ..metrics.temporal import FLOW_SOURCES
from ..wording import count
from .options import parse_methods

NAME = "evaluate"
HELP = "score enhanced videos against GT (PSNR, SSIM, E_warp, MABD) with paper-style tables"

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    src = parser.add_argument_group("inputs")
    src.add_argument("--gt", type=Path, required=True, help="GT folder: one sub-folder or video file per video")
    src.add_argument("--pred", type=Path, default=None, help="output folder of one method (named after the folder)")
    src.add_argument("--method", action="append", default=[], metavar="NAME=DIR",
                     help="a method's output folder; repeat to compare several methods")
    src.add_argument("--input", type=Path, default=None,
                     help="low-light input folder (only for --flow-source input)")
    src.add_argument("--bgr-npy", action="store_true", help=".npy frames hold BGR channels (SDSD *_np releases)")
    src.add_argument("--strict", action="store_true",
                     help="refuse truncated or damaged video files instead of using every decodable frame")
    sel = parser.add_argument_group("selection")
    sel.add_argument("--protocol", choices=sorted(EVAL_PROTOCOLS), default=None,
                     help="named split + frame range (docs/metrics.md); default: every GT video, all frames")
    sel.add_argument("--subset", choices=("indoor", "outdoor"), default=None,
                     help="protocol subset; default: read from the GT path")
    sel.add_argument("--frames", type=int, default=None, help="score only the first N frames of each video")
    sel.add_argument("--videos", default=None, help="comma-separated video names to score (default: all)")
    met = parser.add_argument_group("metrics")
    met.add_argument("--metrics", default=",".join(DEFAULT_METRICS),
                     help=f"comma-separated, from {', '.join(list_metrics())} (default: %(default)s)")
    met.add_argument("--channel", choices=CHANNELS, default="rgb", help="PSNR/SSIM colour (default: %(default)s)")
    met.add_argument("--ssim-window", choices=WINDOWS, default="gaussian",
                     help="gaussian 11x11 sigma 1.5, or uniform 7x7 = skimage default (default: %(default)s)")
    met.add_argument("--crop-border", type=int, default=0, help="PSNR/SSIM border crop in px (default: 0)")
    met.add_argument("--flow", choices=("dis", "raft"), default="dis", help="optical flow for E_warp (default: dis)")
    met.add_argument("--flow-preset", choices=tuple(DIS_PRESETS), default="medium",
                     help="DIS preset (default: %(default)s)")
    met.add_argument("--raft-weights", type=Path, default=None, help="local torchvision RAFT weights (--flow raft)")
    met.add_argument("--flow-source", choices=FLOW_SOURCES, default="gt",
                     help="video the E_warp flow is estimated on (default: %(default)s)")
    met.add_argument("--flow-cache", type=Path, default=None,
                     help="folder caching GT flows across runs (~130 MB per 30-frame 960x512 video)")
    out = parser.add_argument_group("output")
    out.add_argument("-o", "--output", type=Path, default=Path("tami_eval"),
                     help="folder for results.json, CSV, Markdown and plots (default: %(default)s)")
    out.add_argument("--no-plots", action="store_true", help="do not write PNG plots")
    out.add_argument("--report", action="store_true",
                     help="also write OUT/report/: a comparison page per video and an index (opens in a browser)")
    out.add_argument("--force", action="store_true", help="replace the results of an earlier evaluation in OUT")


def _methods(args: argparse.Namespace) -> dict[str, Path]:
    specs = ([f"{args.pred.resolve().name}={args.pred}"] if args.pred is not None else []) + list(args.method)
    if not specs:
        raise UsageError("nothing to evaluate: give --pred DIR or one or more --method NAME=DIR")
    return parse_methods(specs)


def _metrics(args: argparse.Namespace) -> list[Metric]:
    names = [n.strip() for n in args.metrics.split(",") if n.strip()]
    options = {
        "psnr": {"channel": args.channel, "crop_border": args.crop_border},
        "ssim": {"window": args.ssim_window, "channel": args.channel, "crop_border": args.crop_border},
        "ewarp": {"flow": args.flow, "preset": args.flow_preset, "source": args.flow_source,
                  "weights": str(args.raft_weights) if args.raft_weights else None},
        "mabd": {},
    }
    return [create_metric(n, **options.get(n, {})) for n in dict.fromkeys(names)]


def run(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    if (args.output / "results.json").is_file() and not args.force:
        raise UsageError(f"{args.output} holds the results of an earlier evaluation; choose another -o or pass "
                         "--force to replace them")
    metrics = _metrics(args)
    if args.flow_source == "input" and args.input is None and any(m.info.name == "ewarp" for m in metrics):
        raise UsageError("--flow-source input needs the low-light input folder: add --input DIR")
    evaluator = Evaluator(
        args.gt, _methods(args), metrics, protocol=args.protocol, subset=args.subset, frames=args.frames,
        videos=[v.strip() for v in args.videos.split(",")] if args.videos else None, inp=args.input,
        cache=FlowCache(args.flow_cache), bgr_npy=args.bgr_npy, strict=args.strict,
    )
    with logging_redirect_tqdm(loggers=[logging.getLogger("tami")]):
        for video in tqdm(evaluator.videos, desc="videos", unit="video", disable=True if args.quiet else None,
                          file=sys.stderr):
            evaluator.evaluate_video(video)
    seconds = time.perf_counter() - start
    report = evaluator.report(command=shlex.join(["tami", *sys.argv[1:]]), seconds=seconds)

    if not args.quiet:
        for method in report.methods:
            print(f"\n{method.name}: per video")
            print(render_text(*video_table(report, method)))
        proto = report.protocol or {}
        print(f"\ndataset: {count(len(evaluator.videos), 'video')}, protocol {proto.get('name')}"
              + (f" ({proto['subset']})" if proto.get("subset") else ""))
        print(render_text(*dataset_table(report)))
        for line in settings_lines(report):
            print(f"  {line}")

    written = write_report(report, args.output)
    if not args.no_plots:
        if plotting_available():
            written += plot_report(report, args.output / "plots")
        else:
            logger.info("plots skipped: matplotlib is not installed (pip install \"tami[plot]\")")
    if args.report:
        page = write_dataset_report(report, evaluator, args.output / "report")
        if not args.quiet:
            print(f"report: {page.resolve().as_uri()}")
    frames = sum(len(v.frames) for v in report.methods[0].videos.values())
    logger.info("wrote %d files to %s", len(written), args.output)
    logger.info("Evaluated %s x %s (%s per method) in %.1f seconds", count(len(evaluator.videos), "video"),
                count(len(report.methods), "method"), count(frames, "frame"), time.perf_counter() - start)
    return 0


def write_dataset_report(report: EvaluationReport, evaluator: Evaluator, out: Path) -> Path:
    """One comparison page per evaluated video (with that video's scores) and an index with the dataset table."""
    def one(video: str, folder: Path) -> str:
        methods = {name: paths[video] for name, paths in evaluator.method_paths.items()}
        scores = EvaluationReport(
            report.metrics, [MethodScores(m.name, m.path, {video: m.videos[video]}) for m in report.methods],
            report.gt, report.protocol, {k: v for k, v in report.gt_brightness.items() if k == video},
            report.command, report.seconds)
        build_report(methods, folder, gt=evaluator.gt_paths[video], title=f"tami evaluation: {video}",
                     evaluation=scores)
        return f'<p><a href="{href(video, "index.html")}">{html.escape(video)}</a></p>'

    return write_per_video(out, list(evaluator.videos), one, title="tami evaluation",
                           header=html_table(*dataset_table(report)))
