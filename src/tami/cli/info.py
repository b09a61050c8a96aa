"""List every backbone and preset with its parameter count, and the installed optional features."""

from __future__ import annotations

import argparse
import fnmatch
import importlib.util
import json

import torch

from .. import backbones
from ..backbones.registry import resolve

NAME = "info"
HELP = "list backbones, presets and their parameter counts"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pattern", nargs="?", default=None, help="only presets matching this shell pattern")


def _param_count(name: str, counted: dict[str, int]) -> int:
    """Parameter count of an arch or preset, built on the meta device once per distinct configuration."""
    arch, config = resolve(name)
    key = f"{arch} {json.dumps(config, sort_keys=True, default=str)}"
    if key not in counted:
        with torch.device("meta"):
            counted[key] = backbones.count_parameters(backbones.create(arch, **config))
    return counted[key]


def run(args: argparse.Namespace) -> int:
    rows = []
    counted: dict[str, int] = {}
    for arch in backbones.names():
        cls = backbones.BACKBONES.get(arch)
        for preset in [arch, *backbones.preset_names(f"{arch}.*")]:
            if args.pattern and not fnmatch.fnmatch(preset, args.pattern):
                continue
            count = _param_count(preset, counted)
            rows.append((preset, f"{count:,}", f"x{cls.multiple_of}", f"H/{cls.inject_stride}"))
    header = ("backbone / preset", "parameters", "size", "injection")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    for row in rows:
        print("  ".join(c.ljust(w) if i in (0, 2, 3) else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))))
    extras = {m: importlib.util.find_spec(m) is not None for m in ("av", "matplotlib", "skimage")}
    print()
    print(f"torch {torch.__version__}; cuda available: {torch.cuda.is_available()}; "
          + "; ".join(f"{m}: {'yes' if ok else 'no'}" for m, ok in extras.items()))
    return 0
