"""Time slices of several methods: the pixels under one line, taken from every frame and stacked side by side.

Flicker shows up as stripes across the slice. Give each method (GT and the low-light input are methods too) as
NAME=PATH, where PATH is a video file or a folder of frames; frames are aligned by name when every method is a
folder holding the reference's frame names (reference: GT if given, else the first method), otherwise by position.
All methods must have one frame size.

Writes into -o OUT, per method: NAME_slice.png (vertical line: line length x frames*stripe; horizontal line:
frames*stripe x line length) and NAME_line.png (the first selected frame with the line in red); and grid.png, all
slices with their names.

examples:
  tami timeslice --method input=low/ --method tami=out/tami --method GT=gt/ --x 480 -o slices/
  tami timeslice --method base=base.mp4 --method tami=tami.mp4 --y 200 --from 100 --to 600 \
      --frames 0:60 --stripe 4 -o s/
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

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
    parser.add_argument("-o", "--output", type=Path, required=True, help="output folder")


def run(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    line = SliceLine("x", args.x, args.start, args.stop) if args.x is not None else \
        SliceLine("y", args.y, args.start, args.stop)
    result = time_slices(parse_methods(args.method), line, frames=parse_frames(args.frames), stripe=args.stripe)
    paths = save_time_slices(result, args.output, columns=args.columns)
    print(f"{len(result.methods)} methods x {len(result.labels)} frames (aligned by {result.alignment}), "
          f"line {result.line.axis}={result.line.position} [{result.line.start}:{result.line.stop}]")
    print(f"grid: {paths[-1]}")
    logger.info("Wrote %d images to %s in %.1f seconds", len(paths), args.output, time.perf_counter() - start)
    return 0
