"""How much memory enhancing a frame takes, and how much the device has: the check made before any frame is run.

The model's need is measured, not guessed: :func:`measure_model` runs it on two small inputs under a dispatch
mode that adds up the bytes of every live tensor, and fits ``peak = per_pixel * pixels + fixed`` (the networks
are convolutional or attend within windows or channels, so memory grows linearly with the frame). The stream state
that stays alive between frames is measured apart, because with tiles every window keeps its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.multiprocessing.reductions import StorageWeakRef
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

# Kernels allocate scratch space the dispatch mode cannot see (im2col buffers, attention workspaces): margin.
SAFETY = 1.5
GIB = 2 ** 30


class _LiveBytes(TorchDispatchMode):
    """Tracks the bytes of tensor storages created under it that are still alive, and their peak."""

    def __init__(self) -> None:
        super().__init__()
        self.live: dict[int, tuple[StorageWeakRef, int]] = {}
        self.current = 0
        self.peak = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204
        out = func(*args, **(kwargs or {}))
        for key in [k for k, (ref, _) in self.live.items() if ref.expired()]:
            self.current -= self.live.pop(key)[1]
        for leaf in tree_leaves(out):
            if isinstance(leaf, torch.Tensor) and leaf.device.type != "meta":
                storage = leaf.untyped_storage()
                key = storage.data_ptr()
                if key and key not in self.live:
                    self.live[key] = (StorageWeakRef(storage), storage.nbytes())
                    self.current += storage.nbytes()
        self.peak = max(self.peak, self.current)
        return out


@dataclass(frozen=True)
class MemoryModel:
    """Bytes one enhancement step needs: ``per_pixel * pixels + fixed``, of which ``state_per_pixel * pixels``
    stays alive between frames (the adapter's memory and hidden state)."""

    per_pixel: float
    fixed: float
    state_per_pixel: float

    def frame_bytes(self, pixels: int) -> float:
        """Peak bytes of enhancing a frame of ``pixels`` pixels whole."""
        return SAFETY * (self.per_pixel * pixels + self.fixed)

    def tiled_bytes(self, tile_pixels: int, covered_pixels: int) -> float:
        """Peak bytes with tiles of ``tile_pixels`` whose states together cover ``covered_pixels``."""
        work = (self.per_pixel - self.state_per_pixel) * tile_pixels + self.fixed
        return SAFETY * (work + self.state_per_pixel * covered_pixels)


def measure_model(run: Callable[[torch.Tensor], int], sides: tuple[int, int], device: torch.device) -> MemoryModel:
    """Fit :class:`MemoryModel` from ``run(x)`` on two square inputs; ``run`` returns the bytes of state it keeps.

    ``run`` should take a few steps (enough to fill the model's memory) so the measured peak is the steady one.
    """
    peaks, states = [], []
    for side in sides:
        x = torch.full((1, 3, side, side), 0.25, device=device)  # sizes, not values, set the memory; no RNG use
        tracker = _LiveBytes()
        with tracker:
            states.append(run(x))
        peaks.append(tracker.peak)
    p1, p2 = sides[0] ** 2, sides[1] ** 2
    per_pixel = max(0.0, (peaks[1] - peaks[0]) / (p2 - p1))
    fixed = max(0.0, peaks[0] - per_pixel * p1)
    return MemoryModel(per_pixel, fixed, max(0.0, states[1] / p2))


def _meminfo_available() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def _cgroup_available() -> int | None:
    """Room left under a cgroup v2 memory limit (containers, Slurm), if there is one."""
    base = Path("/sys/fs/cgroup")
    try:
        limit = (base / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return max(0, int(limit) - int((base / "memory.current").read_text().strip()))
    except (OSError, ValueError):
        return None


def available_bytes(device: torch.device, limit: int | None = None) -> int | None:
    """Free memory on ``device`` now, at most ``limit`` (None where it cannot be known: nothing is refused then)."""
    values: list[int] = [] if limit is None else [limit]
    if device.type == "cuda":
        cached = torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)  # reusable by torch
        values.append(int(torch.cuda.mem_get_info(device)[0]) + cached)
    elif device.type == "cpu":
        values += [v for v in (_meminfo_available(), _cgroup_available()) if v is not None]
    return min(values) if values else None
