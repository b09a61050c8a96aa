"""Run logs: a JSONL file of every logged step and TensorBoard events when installed.

Log keys follow the project convention: ``loss/*``, ``metric/*``, ``time/*``, plus ``step``, ``lr`` and
``grad_norm`` (before clipping).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
from pathlib import Path
from typing import Any, Protocol

from ..atomic import atomic_path

LOG_FILE = "log.jsonl"

logger = logging.getLogger(__name__)


def truncate_log(path: str | os.PathLike[str], step: int) -> None:
    """Drop entries after ``step`` from a JSONL log (a resumed run rewrites them), atomically."""
    path = Path(path)
    if not path.is_file():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short by a killed writer
        if int(entry.get("step", 0)) <= step:
            kept.append(line)
    with atomic_path(path) as tmp:
        tmp.write_text("".join(f"{line}\n" for line in kept))


def read_log(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """All complete entries of a JSONL log."""
    entries = []
    for line in Path(path).read_text().splitlines():
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return entries


class RunLog:
    """Appends logged values to ``RUN_DIR/log.jsonl`` and, when ``tensorboard`` is importable (the
    ``tami[tensorboard]`` extra), to event files in ``RUN_DIR/tensorboard``; without it, says so once.

    Args:
        run_dir: the run folder.
        enabled: write anything at all (only rank 0 writes).
        tensorboard: also write TensorBoard events when the package is installed.
    """

    def __init__(self, run_dir: str | os.PathLike[str], *, enabled: bool = True, tensorboard: bool = True) -> None:
        self.path = Path(run_dir) / LOG_FILE
        self.enabled = enabled
        self._writer = None
        if enabled and tensorboard:
            if importlib.util.find_spec("tensorboard") is None:
                logger.info("logging to %s only (JSONL); for TensorBoard, pip install 'tami[tensorboard]'", self.path)
            else:
                from torch.utils.tensorboard import SummaryWriter

                self._writer = SummaryWriter(log_dir=str(Path(run_dir) / "tensorboard"))

    def write(self, step: int, values: dict[str, float]) -> None:
        """Record ``values`` at ``step`` (one JSON line; scalars to TensorBoard)."""
        if not self.enabled:
            return
        entry = {"step": step, **{k: float(v) for k, v in values.items()}}
        with open(self.path, "a") as f:
            f.write(json.dumps(entry) + "\n")
        if self._writer is not None:
            for key, value in values.items():
                self._writer.add_scalar(key, float(value), step)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class TrainProgress(Protocol):
    """What the trainer reports while it runs (rank 0 only); the command line draws it as a progress bar."""

    def start(self, total: int, done: int) -> None:
        """The run has ``total`` iterations, ``done`` of them already (a resumed run)."""

    def update(self, values: dict[str, float] | None) -> None:
        """One iteration done; ``values`` are the step's logged values when it logged any."""

    def write(self, text: str) -> None:
        """A line to show (validation scores)."""

    def close(self) -> None:
        """The run ended."""
