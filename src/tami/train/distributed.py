"""``torch.distributed`` helpers for data-parallel training launched by ``torchrun``.

A single process (no ``WORLD_SIZE`` in the environment, or ``WORLD_SIZE=1``) needs no process group; every helper
here is then a no-op, so the trainer has one code path. With several processes, gradients of the trained weights are
averaged explicitly after ``backward`` (one flat all-reduce), which keeps the result equal to a single process that
sees the same global batch.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from ..device import resolve_device

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in the job.

    Attributes:
        rank: global rank (0 for a single process).
        world_size: number of processes.
        local_rank: rank on this machine (selects the GPU).
        device: the device this process computes on.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup(preference: str) -> DistInfo:
    """Join the process group described by the ``torchrun`` environment, if any, and pick the device.

    Uses NCCL on CUDA and gloo on CPU.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(preference, local_rank=local_rank, kinds=("cuda", "cpu"), hint="device:")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, rank=rank, world_size=world)
        logger.info("joined process group: rank %d of %d (%s)", rank, world, backend)
    return DistInfo(rank=rank, world_size=world, local_rank=local_rank, device=device)


def cleanup(info: DistInfo) -> None:
    """Leave the process group joined by :func:`setup`."""
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    """Wait for every process."""
    if info.enabled:
        dist.barrier()


def _flat(tensors: list[Tensor]) -> Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])


def _unflat(flat: Tensor, like: list[Tensor]) -> None:
    offset = 0
    for t in like:
        n = t.numel()
        t.copy_(flat[offset : offset + n].view_as(t))
        offset += n


@torch.no_grad()
def broadcast_parameters(info: DistInfo, params: list[nn.Parameter]) -> None:
    """Copy rank 0's values of ``params`` to every process."""
    if not info.enabled or not params:
        return
    flat = _flat([p.detach() for p in params])
    dist.broadcast(flat, src=0)
    _unflat(flat, [p.data for p in params])


@torch.no_grad()
def average_gradients(info: DistInfo, params: list[nn.Parameter]) -> None:
    """Replace each gradient by its mean over the processes (missing gradients count as zero)."""
    if not info.enabled or not params:
        return
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    grads = [p.grad for p in params]
    flat = _flat(grads)
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat.div_(info.world_size)
    _unflat(flat, grads)


def all_reduce_sum(info: DistInfo, values: Tensor) -> Tensor:
    """Sum of ``values`` over the processes (a new tensor; the input is unchanged)."""
    out = values.clone()
    if info.enabled:
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out


def all_gather_object(info: DistInfo, obj: Any) -> list[Any]:
    """``[obj of rank 0, obj of rank 1, ...]`` on every process."""
    if not info.enabled:
        return [obj]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


@torch.no_grad()
def max_divergence(info: DistInfo, params: list[nn.Parameter]) -> float:
    """Largest absolute difference between this process's ``params`` and rank 0's, maximised over processes."""
    if not info.enabled or not params:
        return 0.0
    mine = _flat([p.detach() for p in params])
    ref = mine.clone()
    dist.broadcast(ref, src=0)
    diff = (mine - ref).abs().max().reshape(1)
    dist.all_reduce(diff, op=dist.ReduceOp.MAX)
    return float(diff.item())
