"""Time slices of several methods: the pixels under one line, taken from every frame and stacked side by side.

Flicker shows up as stripes across the slice. Give each method (GT and the low-light input are methods too) as
NAME=PATH, where PATH is a video file or a folder of frames; frames are aligned by name when every method is a
folder holding the reference's frame names (reference: GT if given, else the first method), otherwise by position.
All methods must have one frame size.

Writes into -o OUT, per method: NAME_slice.png (vertical line: line length x frames*stripe; horizontal line:
frames*stripe x line length) and NAME_line.png (the first selected frame with the line in red); and grid.png, all
slices with their names.

Dataset folders as `tami evaluate` reads them (one sub-folder of frames or one video file per video) are
accepted too: --video NAME picks videos (repeatable); without it, every video's slices go to OUT/<video>/, with
OUT/index.html showing all grids.

examples:
  tami timeslice --method input=low/ --method tami=out/tami --method GT=gt/ --x 480 -o slices/
  tami timeslice --method base=base.mp4 --method tami=tami.mp4 --y 200 --from 100 --to 600 --frames 0:60 \
      --stripe 4 -o s/
  tami timeslice --method input=data/test/input --method tami=out/tami --method GT=data/test/GT --x 32 -o ts/
"""

from __future__ import annotations

import argparse
import html
import logging
import time
from pathlib import Path

from ..report.dataset import href, split_by_video, write_per_video
from ..timeslice import SliceLine, parse_frames, save_time_slices, time_slices
from .options import parse_methods

NAME = "timeslice"
HELP = "time-slice images of several methods on one line (shows flicker), with a labelled grid"

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--method", action="append", default=[], metavar="NAME=PATH", required=True,
                        help="a method's video file or frame folder; repeat for every method (GT, input, ...)")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--x", type=int, default=None, help="vertical line at this column")
    where.add_argument("--y", type=int, default=None, help="horizontal line at this row")
    parser.add_argument("--from", dest="start", type=int, default=0,
                        help="first pixel along the line (default: 0)")
    parser.add_argument("--to", dest="stop", type=int, default=None,
                        help="end of the line, excluded (default: the frame border)")
    parser.add_argument("--frames", default=None, metavar="A:B",
                        help="frame positions to use, as a Python slice of the reference's frames (default: all)")
    parser.add_argument("--stripe", type=int, default=1, help="pixels per frame in the slice (default: 1)")
    parser.add_argument("--columns", type=int, default=None,
                        help="grid columns (default: one row up to 8 methods, else two rows)")
    parser.add_argument("--video", action="append", default=None, metavar="NAME",
                        help="with dataset folders: this video only (repeatable; default: every video)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="output folder")
    parser.add_argument("--strict", action="store_true",
                        help="refuse truncated or damaged video files instead of using every decodable frame")


def run(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    line = SliceLine("x", args.x, args.start, args.stop) if args.x is not None else \
        SliceLine("y", args.y, args.start, args.stop)
    methods, frames = parse_methods(args.method), parse_frames(args.frames)
    per_video = split_by_video(methods, None, args.video)
    if per_video is not None and len(per_video) == 1:
        methods = next(iter(per_video.values()))[0]
    if per_video is None or len(per_video) == 1:
        result = time_slices(methods, line, frames=frames, stripe=args.stripe, strict=args.strict)
        paths = save_time_slices(result, args.output, columns=args.columns)
        if not args.quiet:
            print(f"{len(result.methods)} methods x {len(result.labels)} frames (aligned by {result.alignment}), "
                  f"line {result.line.axis}={result.line.position} [{result.line.start}:{result.line.stop}]")
            print(f"grid: {paths[-1]}")
        logger.info("Wrote %d images to %s in %.1f seconds", len(paths), args.output, time.perf_counter() - start)
        return 0

    def one(video: str, folder: Path) -> str:
        result = time_slices(per_video[video][0], line, frames=frames, stripe=args.stripe, strict=args.strict)
        grid = save_time_slices(result, folder, columns=args.columns)[-1]
        return f'<p><img src="{href(video, grid.name)}" alt="time slices of {html.escape(video)}"></p>'

    index = write_per_video(args.output, list(per_video), one, title="tami time slices")
    if not args.quiet:
        print(f"{len(per_video)} videos; index: {index.resolve().as_uri()}")
    logger.info("Wrote time slices of %d videos to %s in %.1f seconds", len(per_video), args.output,
                time.perf_counter() - start)
    return 0
