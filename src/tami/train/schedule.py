"""Learning-rate schedule: linear warm-up followed by a cosine decay, stepped once per iteration."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.optim.lr_scheduler import LambdaLR


@dataclass
class WarmupCosine:
    """Multiplier of the peak learning rate at iteration ``step`` (0-based).

    * ``step < warmup``: linear ramp ``(step + 1) / warmup`` (reaches 1 at the last warm-up step);
    * afterwards: ``floor + (1 - floor) * (1 + cos(pi * p)) / 2`` with ``p`` the fraction of the post-warm-up
      iterations done, clamped to 1, so the rate ends at ``floor`` (= ``min_lr / lr``).

    A plain dataclass (not a closure) so that ``LambdaLR.state_dict`` records it.
    """

    warmup: int
    total: int
    floor: float

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / self.warmup
        span = max(1, self.total - self.warmup)
        progress = min(1.0, (step - self.warmup) / span)
        return self.floor + (1.0 - self.floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def build_scheduler(
    optimizer: torch.optim.Optimizer, *, warmup: int, total: int, lr: float, min_lr: float
) -> LambdaLR:
    """A per-iteration :class:`LambdaLR` following :class:`WarmupCosine` from ``lr`` down to ``min_lr``."""
    return LambdaLR(optimizer, WarmupCosine(warmup=warmup, total=total, floor=min_lr / lr))


def retarget(scheduler: LambdaLR, *, warmup: int, total: int, lr: float, min_lr: float) -> bool:
    """Make a restored scheduler follow the current config's schedule (e.g. more iterations on resume).

    Keeps the iteration count; when the schedule differs from the restored one, replaces it and sets each
    group's learning rate for the next iteration. Returns whether anything changed (an exact resume changes nothing).
    """
    fresh = WarmupCosine(warmup=warmup, total=total, floor=min_lr / lr)
    if scheduler.lr_lambdas[0] == fresh and all(b == lr for b in scheduler.base_lrs):
        return False
    scheduler.lr_lambdas = [fresh for _ in scheduler.lr_lambdas]
    scheduler.base_lrs = [lr for _ in scheduler.base_lrs]
    for group in scheduler.optimizer.param_groups:
        group["lr"] = lr * fresh(scheduler.last_epoch)
    return True
