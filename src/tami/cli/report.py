"""A browsable comparison page of several methods: open OUT/index.html in any browser (works from file://).

The page plays all methods in sync, has a frame scrubber, and a line you drag on any frame: the time slices under
it (the line's pixels from every shown frame, side by side; flicker shows as stripes) update live for every
method. With --gt, the GT is shown last and the metrics tables and plots of `tami evaluate` are included
(PSNR, SSIM, E_warp, MABD by default; --metrics to choose, --no-metrics to skip).

Give each method as NAME=PATH (video file or frame folder; the low-light input is a method too). All methods need
one frame size; frames are aligned by name when every method is a frame folder holding the reference's names,
else by position.

Size bound: frames are downscaled to a long side of --max-side px (480), at most --max-frames (150) frames per
method and 64 Mpx over all methods are shown (longer videos are subsampled evenly; --frames A:B picks a
contiguous part), as JPEG quality 85: typically ~11 MB, 49 MB for pure noise at the full 64 Mpx. An earlier
report in OUT is replaced; other non-empty folders are refused.

example:
  tami report --method input=low/ --method base=out/base --method tami=out/tami --gt gt/ -o report/
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from ..metrics import DEFAULT_METRICS, list_metrics
from ..report import ReportLimits, build_report
from ..timeslice import parse_frames
from .options import parse_methods

NAME = "report"
HELP = "static HTML comparison page: synchronized playback, live time slices, metrics"

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--method", action="append", default=[], metavar="NAME=PATH", required=True,
                        help="a method's video file or frame folder; repeat for every method")
    parser.add_argument("--gt", type=Path, default=None, help="ground truth video or frame folder (enables metrics)")
    parser.add_argument("--metrics", default=",".join(DEFAULT_METRICS),
                        help=f"comma-separated, from {', '.join(list_metrics())} (default: %(default)s)")
    parser.add_argument("--no-metrics", action="store_true", help="do not score against the GT")
    parser.add_argument("--frames", default=None, metavar="A:B",
                        help="frame positions to show, as a Python slice (default: all, subsampled to the bound)")
    parser.add_argument("--fps", type=float, default=None, help="playback rate (default: the video's, else 25)")
    parser.add_argument("--title", default="tami comparison", help="page title")
    parser.add_argument("--max-side", type=int, default=ReportLimits.max_side,
                        help="longest frame side in the page, px (default: %(default)s)")
    parser.add_argument("--max-frames", type=int, default=ReportLimits.max_frames,
                        help="most frames per method (default: %(default)s)")
    parser.add_argument("--quality", type=int, default=ReportLimits.quality, help="JPEG quality (default: %(default)s)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="output folder (index.html + frames/)")


def run(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    metrics = [] if args.no_metrics else [n.strip() for n in args.metrics.split(",") if n.strip()]
    limits = ReportLimits(max_side=args.max_side, max_frames=args.max_frames, quality=args.quality)
    page = build_report(parse_methods(args.method), args.output, gt=args.gt, metrics=metrics,
                        frames=parse_frames(args.frames), fps=args.fps, title=args.title, limits=limits)
    print(f"report: {page.resolve().as_uri()}")
    logger.info("Wrote the report to %s in %.1f seconds", args.output, time.perf_counter() - start)
    return 0
