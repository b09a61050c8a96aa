"""Make a synthetic paired low-light video dataset from photographs.

Each video is one photograph in one of three motion strata (static view; pan and zoom; a static view that bright and
dark objects cross), darkened in linear light by an exposure that drifts (AR(1)), steps (auto-exposure) and
jitters over time, with shot + read noise (variance a*I + b, calibrated after Brooks et al. 2019), a colour cast,
an optional per-clip target gain on the ground truth, and 8-bit quantisation. Output:
OUT/{input,GT}/<video>/<frame>.png plus OUT/synth.json with every parameter. The same --seed and options give the
same files.

Presets: v2 (default, the above) and v1 (the first generator: stronger noise, i.i.d. flicker only, pans only; the
bundled demo model was trained on it). Options given on the command line override the preset's.

Sources: `builtin` (photographs shipped with scikit-image and matplotlib; `builtin:train` / `builtin:test` for the
training or held-out photographs) or a folder of your own images (e.g. the photo pool, docs/PHOTOS.md).

Example:  tami synth data/synth-train --sources builtin:train --videos 40 --frames 16 --size 256 256
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ..data.synth_scene import STRATA
from ..data.synthetic import SYNTH_PRESETS, generate_dataset

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
    parser.add_argument("--preset", choices=sorted(SYNTH_PRESETS), default="v2",
                        help="generator preset; the options below override it (default: %(default)s)")
    opt = parser.add_argument_group("degradation and motion (default: the preset's value)")
    opt.add_argument("--exposure", type=float, nargs=2, metavar=("LOW", "HIGH"),
                     help="clip exposure factor range, log-uniform (v2: 0.05 0.3)")
    opt.add_argument("--shot-noise", type=float, nargs=2, metavar=("LOW", "HIGH"),
                     help="shot-noise term a range; the read term follows Brooks et al. (v2: 1e-4 2e-3)")
    opt.add_argument("--flicker", type=float, help="std of the i.i.d. per-frame log-exposure jitter (v2: 0.1)")
    opt.add_argument("--drift", type=float, help="stationary std of the AR(1) log-exposure drift (v2: 0.2)")
    opt.add_argument("--drift-rho", type=float, help="lag-1 correlation of the drift (v2: 0.9)")
    opt.add_argument("--ae-rate", type=float, help="probability per frame of an auto-exposure step (v2: 0.03)")
    opt.add_argument("--color-cast", type=float, help="per-clip log-gain std per channel (v2: 0.05)")
    opt.add_argument("--target-gain", type=float, nargs=2, metavar=("LOW", "HIGH"),
                     help="per-clip gain on the ground truth, log-uniform, that no input frame shows (v2: none)")
    opt.add_argument("--strata", nargs="+", choices=STRATA,
                     help="motion strata, cycled over the videos (v2: static pan content)")
    opt.add_argument("--motion", type=float, help="pan scale of the pan stratum, 0 for no pan (v2: 1)")
    opt.add_argument("--zoom", type=float, nargs=2, metavar=("LOW", "HIGH"), help="zoom range (v2: 1 1.2)")
    opt.add_argument("--rotation", type=float, help="largest rotation in degrees (v2: 3)")
    parser.add_argument("--overwrite", action="store_true", help="replace OUT if it exists")


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The generator options given on the command line (the preset supplies the others)."""
    names = ("exposure", "shot_noise", "flicker", "drift", "drift_rho", "ae_rate", "color_cast", "target_gain",
             "strata", "motion", "zoom", "rotation")
    return {n: tuple(v) if isinstance(v, list) else v for n in names if (v := getattr(args, n)) is not None}


def run(args: argparse.Namespace) -> int:
    start = time.perf_counter()
    with tqdm(total=args.videos, unit="video", disable=getattr(args, "quiet", False)) as bar:
        generate_dataset(
            args.out, videos=args.videos, frames=args.frames, size=tuple(args.size), seed=args.seed,
            sources=args.sources, preset=args.preset, overwrite=args.overwrite, on_video=lambda _: bar.update(1),
            **_overrides(args),
        )
    elapsed = time.perf_counter() - start
    logger.info("Wrote %d videos x %d frames (%dx%d) to %s in %.1f s", args.videos, args.frames, args.size[1],
                args.size[0], args.out, elapsed)
    return 0
