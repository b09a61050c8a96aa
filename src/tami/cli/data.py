"""Check and convert paired video datasets.

  tami data check ROOT --layout sdsd      report missing pairs, frame-count mismatches, unreadable frames
  tami data convert SDSD_ROOT OUT         SDSD .npy (BGR) -> RGB PNG frames in the generic paired layout

Layouts: generic (ROOT/{input,GT}/<video>/<frame>), sdsd, smid, did; their folders and official splits are
described in docs/datasets.md. `check` exits with 1 when it finds problems, so it can guard scripts.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from tqdm import tqdm

from ..data.layouts import LAYOUTS, DATASET_SPLITS
from ..data.sdsd_convert import convert_sdsd
from ..data.check import validate

NAME = "data"
HELP = "check or convert datasets (SDSD, SMID, DID, paired folders)"

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    check = sub.add_parser(
        "check", help="report missing pairs, count mismatches and unreadable frames",
        description="Check a paired dataset before training on it: every video has input and GT frames, the counts "
                    "match, and (unless --quick) every frame decodes. Prints one line per problem and a summary; "
                    "exits with 1 when there are problems. Layouts: docs/datasets.md.")
    check.add_argument("root", type=Path, help="dataset root")
    check.add_argument("--layout", default="generic", choices=LAYOUTS.names(), help="dataset layout (default: generic)")
    check.add_argument("--protocol", default=None, choices=sorted(DATASET_SPLITS),
                       help="SDSD: only this protocol's folders")
    check.add_argument("--scene", default=None, choices=("indoor", "outdoor"), help="SDSD: only this scene")
    check.add_argument("--quick", action="store_true", help="check names and counts only; do not decode frames")
    check.add_argument("--max-issues", type=int, default=50, help="issues printed (default: 50; all are counted)")
    convert = sub.add_parser(
        "convert", help="SDSD .npy -> PNG frames in the generic layout, split by protocol",
        description="Convert an SDSD release (.npy frames, BGR) to RGB PNG frames in the generic paired layout "
                    "OUT/{train,test}/{input,GT}/<video>/, split by the protocol's training and test videos. "
                    "The output appears only once complete.")
    convert.add_argument("root", type=Path, help="SDSD root (indoor_np, outdoor_static_np, ...) or one scene folder")
    convert.add_argument("out", type=Path, help="output folder")
    convert.add_argument("--protocol", default=None, choices=sorted(DATASET_SPLITS),
                         help="split by this protocol (default: sdsd-static for *_static_np, else sdsd-dynamic)")
    convert.add_argument("--scene", default=None, choices=("indoor", "outdoor"), help="convert only this scene")
    convert.add_argument("--workers", type=int, default=4, help="parallel frame writers (default: 4)")
    convert.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")


def _check(args: argparse.Namespace) -> int:
    quiet = getattr(args, "quiet", False)
    with tqdm(unit="video", disable=True if quiet else None) as bar:
        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        report = validate(args.root, args.layout, protocol=args.protocol, scene=args.scene, decode=not args.quick,
                          progress=progress)
    for issue in report.issues[: args.max_issues]:
        print(issue)
    if len(report.issues) > args.max_issues:
        print(f"... and {len(report.issues) - args.max_issues} more")
    if not quiet:
        print(report.summary())
    return 0 if report.ok else 1


def _convert(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    with tqdm(unit="frame", disable=True if getattr(args, "quiet", False) else None) as bar:
        out = convert_sdsd(args.root, args.out, protocol=args.protocol, scene=args.scene, workers=args.workers,
                           overwrite=args.overwrite, progress=bar.update)
        frames = bar.n
    logger.info("Converted %d frames to %s in %.1f s", frames, out, time.perf_counter() - start)
    return 0


def run(args: argparse.Namespace) -> int:
    return _check(args) if args.data_command == "check" else _convert(args)
