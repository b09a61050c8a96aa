#!/usr/bin/env python3
"""Pick the bundled model's backbone among finished stage-image runs by the rule in docs/MODEL_CARD.md.

Usage: python tools/choose_backbone.py RUN [RUN ...] [--prefer RUN] [--margin 0.3] [--metric psnr]

Each RUN is a `tami train` folder; its score is the validation metric of its final step in RUN/log.jsonl (the
final EMA weights, validated at the last step). The run with the best score wins, except that --prefer wins
whenever it is within --margin of the best. Prints the winning folder on stdout and the scores on stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def final_score(run: Path, metric: str) -> tuple[int, float]:
    """``(step, value)`` of ``metric/<metric>`` at the last validated step of ``run``; raises ``ValueError``."""
    log = run / "log.jsonl"
    if not log.is_file():
        raise ValueError(f"{run} has no log.jsonl; give finished `tami train` run folders")
    rows = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    scored = [row for row in rows if f"metric/{metric}" in row]
    if not scored:
        raise ValueError(f"{log} has no validation value of {metric}")
    config = run / "config.yaml"
    last = scored[-1]
    if config.is_file():
        import yaml

        iterations = yaml.safe_load(config.read_text())["train"]["iterations"]
        if last["step"] != iterations:
            raise ValueError(f"{run} stopped at step {last['step']} of {iterations}; finish it with "
                             f"`tami train {run} --resume auto` before choosing")
    return last["step"], float(last[f"metric/{metric}"])


def choose(scores: dict[Path, float], prefer: Path | None, margin: float) -> Path:
    """The run with the highest score, or ``prefer`` when it is within ``margin`` of that score."""
    best = max(scores, key=scores.__getitem__)
    if prefer is not None and scores[best] - scores[prefer] <= margin:
        return prefer
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path, help="finished stage-image run folders")
    parser.add_argument("--prefer", type=Path, default=None, help="the run that wins ties within --margin")
    parser.add_argument("--margin", type=float, default=0.3, help="tie margin in the metric's unit (default: 0.3)")
    parser.add_argument("--metric", default="psnr", help="validation metric, higher is better (default: psnr)")
    args = parser.parse_args(argv)
    if args.prefer is not None and args.prefer not in args.runs:
        parser.error(f"--prefer {args.prefer} is not one of the runs")
    try:
        scores = {run: final_score(run, args.metric)[1] for run in args.runs}
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for run, value in scores.items():
        print(f"{run}: final validation {args.metric} {value:.4f}", file=sys.stderr)
    print(choose(scores, args.prefer, args.margin))
    return 0


if __name__ == "__main__":
    sys.exit(main())
