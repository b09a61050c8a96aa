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

Dataset folders as `tami evaluate` reads them (one sub-folder of frames or one video file per video) are
accepted too: --video NAME picks videos (repeatable); without it, one page per video is written to
OUT/<video>/index.html, linked from OUT/index.html. `tami evaluate --report` writes such pages with its results.

examples:
  tami report --method input=low/ --method base=out/base --method tami=out/tami --gt gt/ -o report/
  tami report --method input=data/test/input --method tami=out/tami --gt data/test/GT --video 0000_coffee -o r/
"""

from __future__ import annotations

import argparse
import html
import logging
import time
from pathlib import Path

from ..metrics import DEFAULT_METRICS, list_metrics
from ..report import ReportLimits, build_report
from ..report.dataset import href, split_by_video, write_per_video
from ..timeslice import parse_frames
from .options import parse_methods

NAME = "report"
HELP = "static HTML comparison page: synchronized playback, live time slices, metrics"

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--method", action="append", default=[], metavar="NAME=PATH", required=True,
                        help="a method's video file or frame folder; repeat for every method")
    parser.add_argument("--gt", type=Path, default=None, help="ground truth video or frame folder (enables metrics)")
    parser.add_argument("--video", action="append", default=None, metavar="NAME",
                        help="with dataset folders: this video only (repeatable; default: one page per video)")
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
    parser.add_argument("--strict", action="store_true",
                        help="refuse truncated or damaged video files instead of using every decodable frame")


def run(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    metrics = [] if args.no_metrics else [n.strip() for n in args.metrics.split(",") if n.strip()]
    limits = ReportLimits(max_side=args.max_side, max_frames=args.max_frames, quality=args.quality)
    methods, frames = parse_methods(args.method), parse_frames(args.frames)
    per_video = split_by_video(methods, args.gt, args.video)
    if per_video is None:
        page = build_report(methods, args.output, gt=args.gt, metrics=metrics, frames=frames, fps=args.fps,
                            title=args.title, limits=limits, strict=args.strict)
    elif len(per_video) == 1:
        video, (paths, gt) = next(iter(per_video.items()))
        page = build_report(paths, args.output, gt=gt, metrics=metrics, frames=frames, fps=args.fps,
                            title=f"{args.title}: {video}", limits=limits, strict=args.strict)
    else:
        def one(video: str, folder: Path) -> str:
            paths, gt = per_video[video]
            build_report(paths, folder, gt=gt, metrics=metrics, frames=frames, fps=args.fps,
                         title=f"{args.title}: {video}", limits=limits, strict=args.strict)
            return f'<p><a href="{href(video, "index.html")}">{html.escape(video)}</a></p>'

        page = write_per_video(args.output, list(per_video), one, title=args.title)
    if not args.quiet:
        print(f"report: {page.resolve().as_uri()}")
    logger.info("Wrote the report to %s in %.1f seconds", args.output, time.perf_counter() - start)
    return 0
