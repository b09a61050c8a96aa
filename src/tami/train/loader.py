"""Training and validation data: synthetic generation into the run folder, and a resumable sharded batch stream.

The stream turns the clip sampler's epochs into global batches of ``batch_size x world_size`` clips; process ``r``
takes the ``r``-th slice of every global batch, so the processes together see exactly what one process with the
global batch would see (the data-parallel counterpart of ``DistributedSampler``). Its state — the epoch, the
position inside it, and the sampler's state at the start of the epoch — goes into every checkpoint, so a resumed
run draws the same clips as one that never stopped.
"""

from __future__ import annotations

import json
import logging
import os
import signal
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader

from ..errors import InputError
from .config import DataConfig, SyntheticConfig
from .distributed import DistInfo, barrier

logger = logging.getLogger(__name__)

_RECORD = "synth.json"


def prepare_root(cfg: DataConfig, run_dir: str | os.PathLike[str], name: str, info: DistInfo) -> Path:
    """The dataset root of ``cfg``; a synthetic dataset is generated first (by rank 0) unless already there.

    Synthetic data goes to ``cfg.root`` when set, else to ``RUN_DIR/data/<name>``. The generator records its
    settings in ``synth.json``; an existing folder made with the same settings is reused (a resumed run does not
    regenerate it), one made with other settings is an error. The generator writes atomically.

    Raises:
        InputError: a missing root, or an existing folder that is not the requested synthetic dataset.
    """
    if cfg.synthetic is None:
        root = Path(cfg.root or "")
        if not root.is_dir():
            raise InputError(f"dataset root {root} is not a folder; fix data.root (or val.data.root) in the config")
        return root
    root = Path(cfg.root) if cfg.root is not None else Path(run_dir) / "data" / name
    if info.is_main:
        if root.exists():
            _check_synthetic(root, cfg.synthetic)
        else:
            _generate(cfg.synthetic, root)
    barrier(info)
    return root


def _settings(syn: SyntheticConfig) -> dict[str, Any]:
    from ..data.synthetic import synth_options

    return {"videos": syn.videos, "frames": syn.frames, "size": list(syn.size), "seed": syn.seed,
            "sources": syn.sources, "preset": syn.preset,
            **synth_options(syn.preset, **syn.generator_options()).to_dict()}


def _check_synthetic(root: Path, syn: SyntheticConfig) -> None:
    record = root / _RECORD
    if not record.is_file():
        raise InputError(f"{root} exists but is not a synthetic dataset (no {_RECORD}); delete it or choose another "
                         "data root")
    found = json.loads(record.read_text()).get("config", {})
    wanted = _settings(syn)
    differing = {k: (found.get(k), v) for k, v in wanted.items() if found.get(k) != v}
    if differing:
        shown = ", ".join(f"{k}: {a!r} there vs {b!r} asked" for k, (a, b) in differing.items())
        raise InputError(f"{root} holds synthetic data made with other settings ({shown}); delete the folder or "
                         "point the config elsewhere")


def _generate(syn: SyntheticConfig, root: Path) -> None:
    from ..data.synthetic import generate_dataset

    logger.info("generating %d synthetic videos of %d frames at %dx%d into %s",
                syn.videos, syn.frames, syn.size[1], syn.size[0], root)
    generate_dataset(root, videos=syn.videos, frames=syn.frames, size=tuple(syn.size), seed=syn.seed,
                     sources=syn.sources, preset=syn.preset, **syn.generator_options())


def build_dataset(cfg: DataConfig, root: Path, *, seed: int, train: bool) -> Any:
    """The paired clip dataset of ``cfg`` (random crops/flips for training; whole frames for validation)."""
    from ..data.datasets import build_dataset as build

    return build(
        cfg.layout, root, split=cfg.split, clip_len=cfg.clip_len, crop=cfg.crop if train else None,
        flip=cfg.flip and train, seed=seed, protocol=cfg.protocol, scene=cfg.scene,
        resize=tuple(cfg.resize) if cfg.resize is not None else None,
        clip_key="data.clip_len" if train else "val.data.clip_len",
    )


def build_sampler(dataset: Any, seed: int) -> Any:
    """One random clip per video per epoch, in shuffled order."""
    from ..data.datasets import ClipSampler

    return ClipSampler(dataset, mode="random", seed=seed, shuffle=True)


def collate(samples: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack clips into ``{"lq": (B, T, 3, H, W), "gt": (B, T, 3, H, W), "video": [...], "start": [...]}``."""
    return {
        "lq": torch.stack([s["lq"] for s in samples]),
        "gt": torch.stack([s["gt"] for s in samples]),
        "video": [s["video"] for s in samples],
        "start": [int(s["start"]) for s in samples],
    }


class BatchStream:
    """Endless, resumable stream of this process's share of every global batch.

    Batches are planned in the main process (sampler epochs cut into global batches) and loaded either here or by
    a pool of ``DataLoader`` workers that lives across epochs. Each planned batch carries its position, and the
    position advances only when the batch is actually consumed, so prefetching never shifts a resume point.

    Args:
        dataset: indexable by the sampler's clip indices, returning dicts with ``lq``/``gt`` ``(T, 3, H, W)``.
        sampler: yields one epoch of clip indices per iteration; has ``state_dict``/``load_state_dict``.
        batch_size: clips per process and step.
        info: process placement (rank, world size).
        workers: loader worker processes (0 = load here).
        seed: seeds the loader's worker RNGs.
        pin_memory: pin host memory (for CUDA).
    """

    def __init__(self, dataset: Any, sampler: Any, *, batch_size: int, info: DistInfo, workers: int = 0,
                 seed: int = 0, pin_memory: bool = False) -> None:
        self.dataset = dataset
        self.sampler = sampler
        self.batch_size = batch_size
        self.info = info
        self.workers = workers
        self.seed = seed
        self.pin_memory = pin_memory
        self.epoch = 0
        self.offset = 0
        self._epoch_start: dict[str, Any] | None = None
        self._resume_from: dict[str, Any] | None = None
        self._initial = sampler.state_dict()
        self._planned: deque[tuple[int, int, dict[str, Any]]] = deque()
        self._iter: Iterator[dict[str, Any]] | None = None

    @property
    def global_batch(self) -> int:
        return self.batch_size * self.info.world_size

    def state_dict(self) -> dict[str, Any]:
        """Epoch, global batches consumed in it, and the sampler's state at the epoch's start."""
        return {"epoch": self.epoch, "offset": self.offset, "sampler": self._epoch_start}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`state_dict`: the next batch is the one that followed it."""
        self.epoch, self.offset = int(state["epoch"]), int(state["offset"])
        self._epoch_start = self._resume_from = state["sampler"]
        self._planned.clear()
        self._iter = None

    def _cut(self, indices: list[Any]) -> list[list[Any]]:
        """This process's batches of one epoch (incomplete global batches are dropped)."""
        n = len(indices) // self.global_batch
        if n == 0:
            raise InputError(
                f"an epoch has {len(indices)} clips (one per video) but a step needs {self.global_batch} "
                f"(train.batch_size {self.batch_size} x {self.info.world_size} processes); add videos or lower "
                "train.batch_size"
            )
        lo, hi = self.info.rank * self.batch_size, (self.info.rank + 1) * self.batch_size
        return [indices[i * self.global_batch :][lo:hi] for i in range(n)]

    def _plan(self) -> Iterator[list[Any]]:
        """Index batches from the current position on, forever; notes each one's position as it is planned."""
        epoch, offset = self.epoch, self.offset
        if self._resume_from is not None:
            self.sampler.load_state_dict(self._resume_from)
            self._resume_from = None
        while True:
            start = self.sampler.state_dict()
            batches = self._cut(list(iter(self.sampler)))
            for position in range(offset, len(batches)):
                self._planned.append((epoch, position + 1, start))
                yield batches[position]
            epoch, offset = epoch + 1, 0

    def _loader(self) -> Iterator[dict[str, Any]]:
        if self.workers == 0:
            return (collate([self.dataset[i] for i in batch]) for batch in self._plan())
        loader = DataLoader(
            self.dataset, batch_sampler=_Plan(self._plan()), num_workers=self.workers, collate_fn=collate,
            generator=torch.Generator().manual_seed(self.seed * 100_003 + self.epoch), pin_memory=self.pin_memory,
            worker_init_fn=_worker_init,
        )
        return iter(loader)

    def close(self) -> None:
        """Stop the loader workers (dropping the last reference shuts them down); the position is kept."""
        self._iter = None
        self._planned.clear()
        self._resume_from = self._epoch_start if self._epoch_start is not None else self._initial

    def __iter__(self) -> BatchStream:
        return self

    def __next__(self) -> dict[str, Any]:
        if self._iter is None:
            self._iter = self._loader()
        batch = next(self._iter)
        self.epoch, self.offset, self._epoch_start = self._planned.popleft()
        return batch


SIGTERM_GRACE_S = 30


def _worker_init(worker_id: int) -> None:
    """Loader workers outlive SIGTERM by a grace period.

    Schedulers and ``timeout`` signal the whole process group; the training process then finishes its iteration,
    writes a checkpoint and shuts the workers down itself. A worker dying at once would abort that (the loader turns
    a killed worker into an error), one ignoring SIGTERM for good could hang an interpreter exit.
    """
    signal.signal(signal.SIGTERM, _exit_after_grace)


def _exit_after_grace(signum: int, frame: Any) -> None:
    signal.signal(signal.SIGALRM, _exit_now)
    signal.alarm(SIGTERM_GRACE_S)


def _exit_now(signum: int, frame: Any) -> None:
    os._exit(0)


class _Plan:
    """An already-running batch plan handed to ``DataLoader`` as its batch sampler."""

    def __init__(self, plan: Iterator[list[Any]]) -> None:
        self.plan = plan

    def __iter__(self) -> Iterator[list[Any]]:
        return self.plan


def to_device(batch: dict[str, Any], device: torch.device) -> tuple[Tensor, Tensor]:
    """``(lq, gt)`` of a collated batch on ``device``."""
    non_blocking = device.type == "cuda"
    return batch["lq"].to(device, non_blocking=non_blocking), batch["gt"].to(device, non_blocking=non_blocking)
