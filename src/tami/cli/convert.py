"""Convert an official backbone checkpoint (.pth/.pt/.safetensors) into tami's safetensors format.

The output carries the architecture and its configuration, so ``tami.backbones.load(OUT)`` rebuilds the backbone
without being told what it is. Pickled checkpoints are read with ``weights_only=True``: nothing in them runs.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from .. import backbones
from ..errors import CheckpointError

NAME = "convert"
HELP = "convert an official backbone checkpoint to tami's safetensors format"

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", type=Path, help="official checkpoint (.pth, .pt or .safetensors)")
    parser.add_argument("output", type=Path, help="output .safetensors file")
    parser.add_argument(
        "--backbone",
        default=None,
        help="architecture or preset (e.g. retinexformer, retinexformer.released); default: detected from keys",
    )


def run(args: argparse.Namespace) -> int:
    if args.output.suffix != ".safetensors":
        raise CheckpointError(
            f"output must end in .safetensors, got {args.output.name}"
        )
    model = backbones.load(args.input, args.backbone)
    backbones.save(model, args.output)
    n = backbones.count_parameters(model)
    logger.info("wrote %s (%s, %s parameters, %s)", args.output, model.arch, f"{n:,}",
                ", ".join(f"{k}={v}" for k, v in model.config.items()))
    return 0
