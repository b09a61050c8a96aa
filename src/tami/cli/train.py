"""Train a backbone (stage ``image``) or the TAMI adapter on a frozen backbone (stage ``video``) from a YAML recipe.

Examples:
  tami train configs/demo_image.yaml
  tami train configs/demo_video.yaml --set train.iterations=2000 -o runs/demo_video_long
  tami train configs/sdsd_retinexformer.yaml --set model.backbone_weights=weights/SDSD_indoor.pth
  tami train configs/demo_video.yaml --resume auto          # continue runs/demo_video after an interruption
  torchrun --nproc_per_node 4 -m tami.cli.main train configs/sdsd_restormer.yaml   # data-parallel

The run folder (default runs/<config name>) receives the resolved config, the command line, a JSONL log,
checkpoints (checkpoints/last.pt, checkpoints/best.pt) and the exported weights (export/).
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
from pathlib import Path

from ..train import load_config, train

NAME = "train"
HELP = "train a backbone or the TAMI adapter from a YAML recipe"



def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", type=Path, help="YAML recipe (see configs/)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set optim.lr=1e-4 (repeatable; values are YAML)")
    parser.add_argument("--resume", metavar="PATH|auto", default=None,
                        help="continue from a checkpoint file or run folder; 'auto' continues the run folder's "
                             "last checkpoint when there is one and starts fresh otherwise")
    parser.add_argument("-o", "--output", type=Path, default=None, metavar="RUN_DIR",
                        help="run folder (default: runs/<config file name>)")
    parser.add_argument("--stop-at", type=int, default=None, metavar="STEP",
                        help="stop after this many iterations in total, with a checkpoint (continue with --resume)")


def _command(args: argparse.Namespace, run_dir: Path) -> str:
    """The invocation as a reproducible command line (from the parsed arguments, not the process's argv)."""
    parts = ["tami", "train", str(args.config)]
    for item in args.overrides:
        parts += ["--set", item]
    if args.resume is not None:
        parts += ["--resume", args.resume]
    if args.stop_at is not None:
        parts += ["--stop-at", str(args.stop_at)]
    parts += ["-o", str(run_dir)]
    return shlex.join(parts)


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config, args.overrides)
    run_dir = args.output if args.output is not None else Path("runs") / args.config.stem
    main_process = int(os.environ.get("RANK", "0")) == 0
    if not main_process:  # under torchrun, only rank 0 reports progress
        logging.getLogger("tami").setLevel(logging.WARNING)
    result = train(config, run_dir, resume=args.resume, stop_at=args.stop_at, command=_command(args, run_dir),
                   progress=not args.quiet and main_process)
    if not main_process:
        return 0
    shown = ", ".join(f"{k} {v:.4g}" for k, v in result.last.items() if k.startswith(("loss/total", "metric/")))
    if result.finished:
        print(f"Trained {result.step} iterations into {result.run_dir}" + (f" ({shown})" if shown else ""))
        for path in result.exports:
            print(f"  {path}")
        if result.best is not None:
            print(f"  best {result.best['metric']} {result.best['value']:.4f} at step {result.best['step']}")
    elif result.stop_reason is not None:
        print(f"Stopped at iteration {result.step} of {config.train.iterations}: {result.stop_reason}; see the diag/* "
              f"entries of {result.run_dir / 'log.jsonl'} (checkpoint kept; do not tune on the test set)")
    else:
        print(f"Stopped at iteration {result.step} of {config.train.iterations}; continue with "
              f"tami train {args.config} --resume auto -o {result.run_dir}")
    return 0
