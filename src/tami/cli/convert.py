"""Convert an official backbone checkpoint (.pth/.pt/.safetensors) into tami's safetensors format.

The output carries the architecture and its configuration, so ``tami.backbones.load(OUT)`` rebuilds the backbone
without being told what it is. The architecture is recognised by the checkpoint's keys and its configuration by
matching tensor shapes against the presets (see `tami info`). For weights that match no preset, name the
architecture and give the constructor arguments they were trained with (official argument names; values are YAML).
Pickled checkpoints are read with ``weights_only=True``: nothing in them runs.

Examples:
  tami convert RetinexFormer_SDSD_indoor.pth retinexformer_sdsd.safetensors
  tami convert narrow.pth narrow.safetensors --arch retinexformer --set n_feat=16 --set "num_blocks=[1, 2, 2]"
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
from pathlib import Path
from typing import Any

import yaml

from .. import backbones
from ..backbones.checkpoints import UnknownConfiguration
from ..backbones.registry import resolve
from ..errors import CheckpointError, UsageError

NAME = "convert"
HELP = "convert an official backbone checkpoint to tami's safetensors format"

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("input", type=Path, help="official checkpoint (.pth, .pt or .safetensors)")
    parser.add_argument("output", type=Path, help="output .safetensors file")
    parser.add_argument(
        "--arch", "--backbone", dest="backbone", default=None, metavar="NAME",
        help="architecture or preset (e.g. retinexformer, retinexformer.released); default: detected from keys",
    )
    parser.add_argument("--set", dest="options", action="append", default=[], metavar="KEY=VALUE",
                        help="constructor argument of the architecture (official name, YAML value), for weights "
                             "that match no preset, e.g. --set n_feat=16 (repeatable; needs --arch)")


def parse_options(items: list[str]) -> dict[str, Any]:
    """``["n_feat=16", "num_blocks=[1, 2, 2]"]`` to ``{"n_feat": 16, "num_blocks": [1, 2, 2]}``.

    Raises:
        UsageError: an item without ``=`` or with a value that is not YAML.
    """
    options: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set expects KEY=VALUE (e.g. n_feat=16), got {item!r}")
        try:
            options[key.strip()] = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise UsageError(f"--set {key}: cannot parse {raw!r} as a YAML value ({exc.problem})") from None
    return options


def run(args: argparse.Namespace) -> int:
    if args.output.suffix != ".safetensors":
        raise UsageError(f"output must end in .safetensors, got {args.output.name}")
    options = parse_options(args.options)
    if options and args.backbone is None:
        raise UsageError("--set needs --arch NAME: constructor arguments belong to an architecture")
    if args.backbone is not None:
        resolve(args.backbone)  # an unknown name is a usage error (with close matches) before the file is read
    try:
        model = backbones.load(args.input, args.backbone, **options)
    except UnknownConfiguration as exc:
        example = " ".join(f"--set {shlex.quote(f'{k}={json.dumps(v)}')}" for k, v in exc.closest.items())
        raise CheckpointError(f"{args.input}: {exc.detail}; give the constructor arguments it was trained with: "
                              f"--arch {exc.arch} {example} (the closest preset's, to adapt)") from None
    backbones.save(model, args.output)
    n = backbones.count_parameters(model)
    logger.info("wrote %s (%s, %s parameters, %s)", args.output, model.arch, f"{n:,}",
                ", ".join(f"{k}={v}" for k, v in model.config.items()))
    return 0
