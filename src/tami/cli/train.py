"""Train a backbone (stage ``image``) or the TAMI adapter on a frozen backbone (stage ``video``) from a YAML recipe.

Examples:
  tami train configs/demo_image.yaml
  tami train configs/demo_video.yaml --set train.iterations=2000 -o runs/demo_video_long
  tami train configs/sdsd_retinexformer.yaml --set model.backbone_weights=weights/SDSD_indoor.pth
  tami train runs/demo_video --resume auto     # continue a run after Ctrl-C, SIGTERM or --stop-at
  torchrun --nproc_per_node 4 -m tami.cli.main train configs/sdsd_restormer.yaml   # data-parallel

The run folder (default runs/<config name>) receives the resolved config (config.yaml), the command line, a
JSONL log, checkpoints (checkpoints/last.pt, checkpoints/best.pt) and the exported weights (export/). To continue
a run, pass the run folder itself (or its config.yaml): `tami train RUN --resume auto` uses the config the run was
started with, including every --set; add --set only for what may change on resume (train.iterations, optim.lr,
logging and validation cadence). A resume that cannot work fails before it changes anything in RUN.

Relative paths in a config file are relative to the file's folder; --set paths to the current folder. config.yaml
records them as absolute paths, so a run resumes from any folder.

Ctrl-C (SIGINT) and SIGTERM stop after the current iteration with a checkpoint; a second Ctrl-C aborts at once.
Weights for `tami enhance --model`: the run folder itself, or RUN/export/model.safetensors (stage video) and
RUN/export/backbone.safetensors (stage image). The whole path, step by step: docs/workflow.md; memory diagnostics: docs/training.md.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
from pathlib import Path

from tqdm import tqdm

from ..errors import UsageError
from ..train import load_config, train

NAME = "train"
HELP = "train a backbone or the TAMI adapter from a YAML recipe"



def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", type=Path, metavar="CONFIG|RUN",
                        help="YAML recipe (see configs/), or a run folder to continue (its config.yaml)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config value, e.g. --set optim.lr=1e-4 (repeatable; values are YAML)")
    parser.add_argument("--resume", metavar="PATH|auto", default=None,
                        help="continue from a checkpoint file or run folder; 'auto' continues the run folder's "
                             "last checkpoint when there is one and starts fresh otherwise")
    parser.add_argument("-o", "--output", type=Path, default=None, metavar="RUN_DIR",
                        help="run folder (default: runs/<config file name>; the run folder itself when CONFIG is "
                             "one)")
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


def config_and_run_dir(config: Path, output: Path | None) -> tuple[Path, Path]:
    """The config file and run folder of ``tami train CONFIG [-o RUN]``: a run folder (or its config.yaml) is its
    own default output."""
    if config.is_dir():
        if not (config / "config.yaml").is_file():
            raise UsageError(f"{config} is a folder without config.yaml; pass a YAML recipe or a run folder")
        return config / "config.yaml", output if output is not None else config
    if output is None and config.name == "config.yaml" and (config.parent / "commands.txt").is_file():
        return config, config.parent  # a run folder's own config
    return config, output if output is not None else Path("runs") / config.stem


def run(args: argparse.Namespace) -> int:
    config_file, run_dir = config_and_run_dir(args.config, args.output)
    config = load_config(config_file, args.overrides)
    main_process = int(os.environ.get("RANK", "0")) == 0
    if not main_process:  # under torchrun, only rank 0 reports progress
        logging.getLogger("tami").setLevel(logging.WARNING)
    result = train(config, run_dir, resume=args.resume, stop_at=args.stop_at, command=_command(args, run_dir),
                   progress=ProgressBar() if not args.quiet and main_process and sys.stderr.isatty() else None)
    if not main_process:
        return 0
    shown = ", ".join(f"{k} {v:.4g}" for k, v in result.last.items() if k.startswith(("loss/total", "metric/")))
    if not result.finished and result.stop_reason is not None:  # printed even with -q: it is why the run ended
        print(f"Stopped at iteration {result.step} of {config.train.iterations}: {result.stop_reason}; see the diag/* "
              f"entries of {result.run_dir / 'log.jsonl'} (checkpoint kept; do not tune on the test set)")
    elif not result.finished:  # printed even with -q: it is what to do next
        print(f"Stopped at iteration {result.step} of {config.train.iterations}; continue with: "
              f"tami train {shlex.quote(str(result.run_dir))} --resume auto")
    elif not args.quiet:
        print(f"Trained {result.step} iterations into {result.run_dir}" + (f" ({shown})" if shown else ""))
        for path in result.exports:
            print(f"  {path}")
        if result.best is not None:
            print(f"  best {result.best['metric']} {result.best['value']:.4f} at step {result.best['step']}")
    return 0


class ProgressBar:
    """The trainer's progress (:class:`tami.train.logs.TrainProgress`) as a tqdm bar over the iterations, with the
    latest loss terms and learning rate (it/s and ETA from tqdm)."""

    def __init__(self) -> None:
        self._bar: tqdm | None = None

    def start(self, total: int, done: int) -> None:
        self._bar = tqdm(total=total, initial=done, unit="it", dynamic_ncols=True, desc="train")

    def update(self, values: dict[str, float] | None) -> None:
        """Advance one iteration; refresh the shown values when given."""
        if values is not None:
            shown = {k.split("/", 1)[-1]: f"{v:.4g}" for k, v in values.items()
                     if k.startswith("loss/") or k in ("lr", "grad_norm")}
            self._bar.set_postfix(shown, refresh=False)
        self._bar.update(1)

    def write(self, text: str) -> None:
        """A line above the bar."""
        self._bar.write(text)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
