"""List every backbone and preset with its parameter count, the bundled models and the installed optional features.

Columns: "size" is the multiple that frame sides are padded to for the backbone (x8: a 270-pixel side becomes 272
inside the model; the output is cropped back); "injection" is the scale of the backbone features the TAMI adapter
works on (H/8: an eighth of the frame height). Bundled models run with `tami enhance --model NAME`.

Examples:
  tami info
  tami info 'retinexformer.*'
"""

from __future__ import annotations

import argparse
import fnmatch
import importlib.util
import json

import torch
from safetensors import safe_open

from .. import backbones
from ..backbones.registry import resolve
from ..bundled import WEIGHTS_DIR, bundled_models
from ..errors import InputError

NAME = "info"
HELP = "list backbones, presets and their parameter counts"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pattern", nargs="?", default=None,
                        help="only backbones and presets matching this shell pattern, e.g. 'restormer*'")


def _param_count(name: str, counted: dict[str, int]) -> int:
    """Parameter count of an arch or preset, built on the meta device once per distinct configuration."""
    arch, config = resolve(name)
    key = f"{arch} {json.dumps(config, sort_keys=True, default=str)}"
    if key not in counted:
        with torch.device("meta"):
            counted[key] = backbones.count_parameters(backbones.create(arch, **config))
    return counted[key]


def _bundled_arch(name: str) -> str:
    """The backbone architecture a bundled model file names in its metadata."""
    with safe_open(str(WEIGHTS_DIR / f"{name}.safetensors"), framework="pt") as f:
        return (f.metadata() or {}).get("backbone_arch", "unknown backbone")


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
    models = [m for m in bundled_models() if not args.pattern or fnmatch.fnmatch(m, args.pattern)]
    if not rows and not models:
        raise InputError(f"no backbone or preset matches {args.pattern!r}; backbones: {', '.join(backbones.names())} "
                         f"(presets: tami info 'NAME.*'); bundled models: {', '.join(bundled_models()) or 'none'}")
    if not rows:  # the pattern names bundled models only
        for name in models:
            print(f"{name}: bundled model ({_bundled_arch(name)} + TAMI adapter); tami enhance --model {name}")
        return 0
    header = ("backbone / preset", "parameters", "size", "injection")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(4)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    for row in rows:
        print("  ".join(c.ljust(w) if i in (0, 2, 3) else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))))
    extras = {m: importlib.util.find_spec(m) is not None for m in ("av", "matplotlib", "skimage", "tensorboard")}
    print()
    print(f"bundled models (tami enhance --model NAME): {', '.join(bundled_models()) or 'none'}")
    print("size: frame sides are padded to this multiple inside the model; injection: scale of the backbone features "
          "the adapter works on")
    print(f"torch {torch.__version__}; cuda available: {torch.cuda.is_available()}; "
          + "; ".join(f"{m}: {'yes' if ok else 'no'}" for m, ok in extras.items()))
    return 0
