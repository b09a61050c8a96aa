"""Exponential moving average of the trained weights, swapped in for validation and export."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import Tensor, nn

from ..errors import CheckpointError


class EMA:
    """Shadow copies ``s ← d·s + (1 − d)·p`` of named parameters, updated after every optimizer step.

    The effective decay ramps up as ``min(decay, (1 + n) / (10 + n))`` after ``n`` updates, so early averages
    are not dominated by the random initialisation.

    Args:
        params: ``(name, parameter)`` pairs of the trained weights.
        decay: the final decay, in (0, 1).
    """

    def __init__(self, params: list[tuple[str, nn.Parameter]], decay: float) -> None:
        self.decay = decay
        self.params = dict(params)
        self.shadow: dict[str, Tensor] = {n: p.detach().clone() for n, p in self.params.items()}
        self.updates = 0

    @torch.no_grad()
    def update(self) -> None:
        """Move every shadow tensor towards its parameter."""
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for name, p in self.params.items():
            self.shadow[name].lerp_(p.detach(), 1.0 - decay)

    def state_dict(self) -> dict:
        return {"decay": self.decay, "updates": self.updates, "shadow": {n: t.clone() for n, t in self.shadow.items()}}

    def load_state_dict(self, state: dict) -> None:
        missing = sorted(set(self.shadow) - set(state["shadow"]))
        if missing:
            raise CheckpointError(
                f"the checkpoint's EMA state lacks {', '.join(missing[:5])}; resume with the model it was trained with"
            )
        self.updates = int(state["updates"])
        for name in self.shadow:
            self.shadow[name].copy_(state["shadow"][name])

    @contextlib.contextmanager
    def applied(self) -> Iterator[None]:
        """Temporarily put the averaged weights into the parameters; the trained ones come back afterwards."""
        saved = {n: p.detach().clone() for n, p in self.params.items()}
        with torch.no_grad():
            for name, p in self.params.items():
                p.copy_(self.shadow[name])
        try:
            yield
        finally:
            with torch.no_grad():
                for name, p in self.params.items():
                    p.copy_(saved[name])
