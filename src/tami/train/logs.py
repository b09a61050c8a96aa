"""Run logs: a JSONL file of every logged step, TensorBoard events when installed, and a progress bar.

Log keys follow the project convention: ``loss/*``, ``metric/*``, ``time/*``, plus ``step``, ``lr`` and
``grad_norm`` (before clipping).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
from pathlib import Path
from typing import Any

from tqdm import tqdm

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


class ProgressBar:
    """A tqdm bar over the iterations with the latest loss terms and learning rate (it/s and ETA from tqdm).

    Args:
        total: the run's total iterations.
        initial: iterations already done (resumed run).
        enabled: show the bar (rank 0, not quiet; only ever on a terminal).
    """

    def __init__(self, total: int, initial: int, *, enabled: bool) -> None:
        # disable=None: tqdm also stays silent when stderr is not a terminal (no carriage-return noise in logs).
        self._bar = tqdm(total=total, initial=initial, unit="it", dynamic_ncols=True,
                         disable=None if enabled else True, desc="train")

    def update(self, values: dict[str, float] | None = None) -> None:
        """Advance one iteration; refresh the shown values when given."""
        if values is not None:
            shown = {k.split("/", 1)[-1]: f"{v:.4g}" for k, v in values.items()
                     if k.startswith("loss/") or k in ("lr", "grad_norm")}
            self._bar.set_postfix(shown, refresh=False)
        self._bar.update(1)

    def write(self, text: str) -> None:
        """Print a line above the bar."""
        self._bar.write(text)

    def close(self) -> None:
        self._bar.close()
