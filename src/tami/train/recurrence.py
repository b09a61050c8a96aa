"""How a training clip runs through the recurrent adapter: teacher forcing and truncated back-propagation.

Both are training policy, so they live here and not in the model: :class:`RecurrencePolicy` decides, per step,
which frames write the memory from the ground truth (``teacher_mask``) and after how many frames the gradient
through the memory is cut; :meth:`tami.adapter.TAMI.forward_clip` only carries the decision out. Inference never
meets either (it has no ground truth and no gradient).

Teacher forcing has two knobs:

* ``teacher_first``: the first ``n`` frames of every clip always write the ground truth (the mechanism probe of
  ``benchmarks/memory.py`` writes frame 0 from the ground truth and every later frame from the output);
* ``teacher_forcing``: the probability, drawn per later frame and clip, that a frame writes the ground truth
  (the reference always does: 1.0; at inference the memory only ever holds outputs, so a model trained at 1.0
  never sees its own outputs in memory - exposure bias).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..errors import UsageError


@dataclass(frozen=True)
class RecurrencePolicy:
    """Teacher forcing and truncated BPTT of one training run (``train.*`` of the configuration).

    Attributes:
        teacher_forcing: probability that a frame after the first ``teacher_first`` writes the ground truth.
        teacher_first: frames at the start of every clip that always write the ground truth.
        detach_every: cut gradients through the memory and hidden state after every ``n`` frames (None: never).
    """

    teacher_forcing: float = 0.0
    teacher_first: int = 0
    detach_every: int | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.teacher_forcing <= 1.0:
            raise UsageError(f"train.teacher_forcing is a probability in [0, 1], got {self.teacher_forcing}")
        if self.teacher_first < 0:
            raise UsageError(f"train.teacher_first must be 0 or more frames, got {self.teacher_first}")
        if self.detach_every is not None and self.detach_every < 1:
            raise UsageError(f"train.detach_every must be at least 1 or null, got {self.detach_every}")

    @property
    def uses_ground_truth(self) -> bool:
        """Whether any frame can write the ground truth."""
        return self.teacher_forcing > 0 or self.teacher_first > 0

    def teacher_mask(self, batch: int, frames: int, generator: torch.Generator | None = None) -> Tensor | None:
        """``(batch, frames)`` bool: which frames write the memory from the ground truth (None: none do).

        The draws for the later frames come frame by frame from ``generator`` (``batch`` numbers per frame), so
        a run seeded per step draws the same masks after a resume.
        """
        if not self.uses_ground_truth:
            return None
        mask = torch.zeros(batch, frames, dtype=torch.bool)
        if self.teacher_forcing > 0:
            for t in range(frames):
                mask[:, t] = torch.rand(batch, generator=generator) < self.teacher_forcing
        mask[:, : self.teacher_first] = True
        return mask
