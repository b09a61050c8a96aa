"""Training checkpoints: atomic writes, safe reads, RNG state capture, and finding what to resume.

A checkpoint is one ``torch.save`` file holding only tensors and plain Python values (so it loads with
``weights_only=True``): the trained weights, optimizer, scheduler, EMA, the RNG states of every process, the data
stream position, the best validation score and the resolved config. It is written to a temporary file, flushed to
disk and renamed over the target, so a reader (or a resumed run) sees either the previous complete file or the new
complete file, never a partial one — even when the writer is killed mid-write.
"""

from __future__ import annotations

import logging
import os
import random
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch

from ..atomic import atomic_path
from ..errors import CheckpointError

logger = logging.getLogger(__name__)

FORMAT = "tami.train-checkpoint"
VERSION = 1
LAST = "last.pt"
BEST = "best.pt"


def rng_state() -> dict[str, Any]:
    """The Python, NumPy and torch (CPU and CUDA) global RNG states as plain values and tensors."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": [version, list(internal), gauss],
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore the states captured by :func:`rng_state`."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _write(state: dict[str, Any], stream: BinaryIO) -> None:
    torch.save(state, stream)


def save_checkpoint(state: dict[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write ``state`` to ``path`` atomically (temporary file, fsync, rename, fsync of the folder).

    Args:
        state: the checkpoint mapping (tensors and plain values only).
        path: target file; its folder is created.
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as stream:
            _write({"format": FORMAT, "version": VERSION, **state}, stream)
            stream.flush()
            os.fsync(stream.fileno())
    _fsync_dir(path.parent)
    return path


def _fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable (POSIX); silently skipped where folders cannot be opened."""
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a training checkpoint safely (``weights_only=True``) onto the CPU.

    Raises:
        CheckpointError: missing, unreadable or not a tami training checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(
            f"cannot read training checkpoint {path} ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
            "resume from another checkpoint or start a new run"
        ) from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is not a tami training checkpoint (expected format {FORMAT!r}); weights files are loaded "
            "through model.backbone_weights / model.adapter_weights instead"
        )
    if state.get("version", 0) > VERSION:
        raise CheckpointError(f"{path} was written by a newer tami (checkpoint version {state['version']}); upgrade tami")
    return state


def checkpoint_dir(run_dir: str | os.PathLike[str]) -> Path:
    """``RUN_DIR/checkpoints``."""
    return Path(run_dir) / "checkpoints"


def resolve_resume(spec: str | None, run_dir: str | os.PathLike[str]) -> Path | None:
    """The checkpoint file to resume from.

    Args:
        spec: ``None`` (fresh run), ``"auto"`` (``RUN_DIR/checkpoints/last.pt`` when it exists, else fresh), a
            checkpoint file, or a run folder (its ``checkpoints/last.pt``).
        run_dir: the run folder of this invocation.

    Raises:
        CheckpointError: an explicit path with no checkpoint.
    """
    if spec is None:
        return None
    if spec == "auto":
        last = checkpoint_dir(run_dir) / LAST
        return last if last.is_file() else None
    path = Path(spec)
    if path.is_dir():
        candidate = checkpoint_dir(path) / LAST
        if not candidate.is_file():
            raise CheckpointError(f"--resume {spec}: the folder holds no checkpoints/{LAST}; point at a .pt file")
        return candidate
    if not path.is_file():
        raise CheckpointError(f"--resume {spec}: no such checkpoint file or run folder")
    return path


def remove_partials(directory: str | os.PathLike[str]) -> list[Path]:
    """Delete temporary files a killed writer left in ``directory``; return what was removed."""
    directory = Path(directory)
    removed = []
    if directory.is_dir():
        for tmp in directory.glob(".*.partial*"):
            if tmp.is_file():
                tmp.unlink(missing_ok=True)
                removed.append(tmp)
    if removed:
        logger.info("removed %d partial checkpoint file(s) left by an interrupted run", len(removed))
    return removed
