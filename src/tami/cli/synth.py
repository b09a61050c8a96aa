"""Make a synthetic paired low-light video dataset from photographs.

Each video is a smooth random camera path (pan, zoom, small rotation) over one photograph, darkened in linear light
by an exposure factor, with shot + read noise (variance a*I + b), optional exposure flicker and colour cast, and
8-bit quantisation. Output: OUT/{input,GT}/<video>/<frame>.png plus OUT/synth.json with every parameter.
The same --seed and options give the same files.

Sources: `builtin` (photographs shipped with scikit-image and matplotlib; `builtin:train` / `builtin:test` for the
training or held-out photographs) or a folder of your own images.

Example:  tami synth data/synth-train --sources builtin:train --videos 40 --frames 16 --size 256 256
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from tqdm import tqdm

from ..data.synthetic import generate_dataset

NAME = "synth"
HELP = "generate a synthetic paired low-light video dataset"

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("out", type=Path, help="output folder (generic paired layout)")
    parser.add_argument("--sources", default="builtin",
                        help="builtin, builtin:train, builtin:test or a folder of images (default: builtin)")
    parser.add_argument("--videos", type=int, default=8, help="number of videos (default: 8)")
    parser.add_argument("--frames", type=int, default=16, help="frames per video (default: 16)")
    parser.add_argument("--size", type=int, nargs=2, default=(256, 256), metavar=("H", "W"),
                        help="frame height and width (default: 256 256)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--exposure", type=float, nargs=2, default=(0.03, 0.3), metavar=("LOW", "HIGH"),
                        help="exposure factor range, log-uniform (default: 0.03 0.3)")
    parser.add_argument("--flicker", type=float, default=0.0, help="per-frame log-exposure std (default: 0)")
    parser.add_argument("--color-cast", type=float, default=0.0, help="per-clip log-gain std per channel (default: 0)")
    parser.add_argument("--shot-noise", type=float, nargs=2, default=(1e-4, 1.2e-2), metavar=("LOW", "HIGH"),
                        help="shot-noise term a range (default: 1e-4 1.2e-2, Brooks et al. 2019)")
    parser.add_argument("--motion", type=float, default=1.0, help="pan scale, 0 for no pan (default: 1)")
    parser.add_argument("--zoom", type=float, nargs=2, default=(1.0, 1.2), metavar=("LOW", "HIGH"),
                        help="zoom range (default: 1 1.2)")
    parser.add_argument("--rotation", type=float, default=3.0, help="largest rotation in degrees (default: 3)")
    parser.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")


def run(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    with tqdm(total=args.videos, unit="video", disable=getattr(args, "quiet", False)) as bar:
        generate_dataset(
            args.out, videos=args.videos, frames=args.frames, size=tuple(args.size), seed=args.seed,
            sources=args.sources, exposure=tuple(args.exposure), flicker=args.flicker, color_cast=args.color_cast,
            shot_noise=tuple(args.shot_noise), motion=args.motion, zoom=tuple(args.zoom), rotation=args.rotation,
            overwrite=args.overwrite, on_video=lambda _: bar.update(1),
        )
    elapsed = time.perf_counter() - start
    logger.info("Wrote %d videos x %d frames (%dx%d) to %s in %.1f s", args.videos, args.frames, args.size[1],
                args.size[0], args.out, elapsed)
    return 0
