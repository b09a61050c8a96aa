"""The brightness anchor: the memory's illumination prior applied to the output relative to the output's own brightness.

A deviation from the paper (``TAMIConfig.brightness_anchor``; off in the paper presets). The reference hands the
retrieved prior ``P`` to the refiner and the IGFE in absolute terms, so the signal a clip's exposure leaves in it
(a factor ``g`` on the whole clip) is a small shift of ``ln P`` under the scene's own luminance, which varies
several times more across a frame; seven registered Tier A rounds (``benchmarks/memory.py``) never taught that
path to follow ``g``, nor did 300 fine-tuning steps with a perfect prior. The anchor gives the prior relative to
the frame: on the working grid,

    d = clamp(ln(P + eps) - ln(L(out) + eps), -ln 4, ln 4),   L = Rec. 709 luma of the output, area-resized,
    c = head([d, mean(d)]),   out' = out * exp(upsample(c)),

with ``head`` a linear map of ``[d, mean(d)]`` plus a small convolutional branch, its output layer zero at first,
so a fresh anchor leaves the output unchanged bit for bit. ``d`` is zero where the output is already as bright as
the memory says, so the gradient that teaches the head to follow it is not buried in scene content; ``mean(d)``
gives a clip-wide exposure cue that survives motion, the per-cell ``d`` a local one the convolutions can trust or
not. Frames that read an empty memory are left as they are (the model does not call the anchor).

:class:`GlobalBrightnessAnchor` (``anchor_mode: global``, Tier A round 9) compares like with like: the retrieved
prior is spatially flat in practice (the read mixes the whole memory; spatial std about 1e-3 on round 8's
validation clips), so ``ln P`` is the log of a *mean* luma, while ``mean(d)`` above subtracts the *mean of the
log* of the output's luma. By Jensen's inequality the difference is positive and grows with the frame's contrast
(+0.36 on a high-contrast validation frame, +0.04 on a flat one): the cell anchor brightens contrasty frames,
writes them back and drifts. The global anchor uses one log ratio of means per frame,

    d = clamp(ln(mean P + eps) - ln(mean L(out) + eps), -ln 4, ln 4),   out' = out * exp(head(d)),

zero where the output is as bright as the memory whatever the frame's contrast, and one gain for the whole frame
(the clip exposure the memory knows is global; a per-cell gain on a flat prior only adds flicker).

:class:`ExposureAnchor` (``anchor_mode: exposure``, Tier A round 10) keeps its own numbers in the memory instead of
reading the prior: with every written frame ``k`` it stores ``r_k = ln(mean L(raw) + eps)`` (the output before the
anchor) and ``a_k``, the ground truth's ``ln(mean L + eps)`` under teacher forcing, else ``r_k`` plus the log gain
the anchor applied (exact, where recomputing it from the output would lose a little to ``eps`` and clipping on
every frame). A new frame with raw level ``r`` gets

    c = mean_k(a_k - r_k),   s = r - mean_k(r_k),   out' = out * exp(head([c, s])),

``c`` the correction the memory's frames imply (exactly the ground truth's on a ground-truth frame, and what was
applied on an output frame, so a followed correction is written back unchanged instead of fading), ``s`` how much
brighter the raw output is than the memory's (exposure jitter or new content). Round 9 followed a retrieved mean
that mixed the pinned frame with output frames and carried the read's own bias.

``anchor_mode: carry`` (Tier A round 11) is the same head with one change to what an output frame writes: ``a_k =
r_k + c``, the correction it *read*, instead of ``r_k`` plus the gain it applied. Round 10's head learned a gain of
about 0.34 c (a shrunk estimate, right for one frame whose ``c`` comes from a single noisy ground-truth frame), and
writing that shrunk gain back diluted the pinned frame's correction to about ``0.34 / (6 - 5 * 0.34) = 0.08`` of
itself once a five-frame ring had filled; writing the read correction keeps the memory's belief about the clip's
exposure unchanged until a ground-truth frame updates it, while each output still gets the head's gain. A video
with no ground truth has ``c = 0`` throughout (its first frame writes its raw level), so there the anchor smooths
the raw level against the memory's (the ``s`` term) and never drifts on its own corrections.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .ops import luma, resize_to

#: Offset inside the logarithms (linear units of [0, 1] frames): keeps dark cells from dominating ``d``.
EPS = 0.01
#: Bound on ``|d|``: a memory at most four times brighter or darker than the frame counts in full.
MAX_LOG_RATIO = math.log(4.0)


class BrightnessAnchor(nn.Module):
    """``(out, prior) -> out * exp(c)``, ``c`` a per-cell log gain computed from the prior relative to ``out``.

    Args:
        hidden: channels of the convolutional branch.
    """

    def __init__(self, hidden: int = 8) -> None:
        super().__init__()
        self.branch = nn.Conv2d(2, hidden, 3, padding=1)
        self.to_gain = nn.Conv2d(2 + hidden, 1, 3, padding=1)
        nn.init.zeros_(self.to_gain.weight)
        nn.init.zeros_(self.to_gain.bias)

    def log_ratio(self, out: Tensor, prior: Tensor) -> Tensor:
        """``d`` ``(B, 1, h, w)``: log of the prior over the output's luma on the prior's grid, bounded."""
        own = luma(resize_to(out.clamp(0.0, 1.0), tuple(prior.shape[-2:])))
        return (torch.log(prior + EPS) - torch.log(own + EPS)).clamp(-MAX_LOG_RATIO, MAX_LOG_RATIO)

    def forward(self, out: Tensor, prior: Tensor) -> Tensor:
        """Anchor ``out`` ``(B, 3, H, W)`` to the ``prior`` ``(B, 1, h, w)`` read from a non-empty memory."""
        d = self.log_ratio(out, prior)
        x = torch.cat([d, d.mean((2, 3), keepdim=True).expand_as(d)], 1)
        gain = self.to_gain(torch.cat([x, F.gelu(self.branch(x))], 1))
        return out * torch.exp(resize_to(gain, tuple(out.shape[-2:])))


def log_level(image: Tensor) -> Tensor:
    """``(B,)``: ``ln(mean L + eps)`` of ``image`` ``(B, 3, H, W)``, L its Rec. 709 luma in [0, 1]."""
    return torch.log(luma(image.clamp(0.0, 1.0)).mean((1, 2, 3)) + EPS)


class _FrameGain(nn.Module):
    """One log gain per frame from a few scalar signals: a linear term plus a small GELU branch, zero at first."""

    def __init__(self, signals: int, hidden: int) -> None:
        super().__init__()
        self.branch = nn.Linear(signals, hidden)
        self.to_gain = nn.Linear(signals + hidden, 1)
        nn.init.zeros_(self.to_gain.weight)
        nn.init.zeros_(self.to_gain.bias)

    def gain(self, x: Tensor) -> Tensor:
        """``(B,)`` log gains of the signals ``x`` ``(B, signals)``."""
        return self.to_gain(torch.cat([x, F.gelu(self.branch(x))], 1))[:, 0]


class GlobalBrightnessAnchor(_FrameGain):
    """``(out, prior) -> out * exp(c)``, ``c`` one log gain per frame from the prior's and the output's mean luma.

    Args:
        hidden: width of the small nonlinear branch beside the linear term.
    """

    def __init__(self, hidden: int = 8) -> None:
        super().__init__(1, hidden)

    def log_ratio(self, out: Tensor, prior: Tensor) -> Tensor:
        """``d`` ``(B, 1)``: log of the prior's mean over the output's mean luma, bounded."""
        ratio = torch.log(prior.mean((1, 2, 3)) + EPS) - log_level(out)
        return ratio.clamp(-MAX_LOG_RATIO, MAX_LOG_RATIO)[:, None]

    def forward(self, out: Tensor, prior: Tensor) -> Tensor:
        """Anchor ``out`` ``(B, 3, H, W)`` to the ``prior`` ``(B, 1, h, w)`` read from a non-empty memory."""
        return out * torch.exp(self.gain(self.log_ratio(out, prior))).view(-1, 1, 1, 1)


class ExposureAnchor(_FrameGain):
    """``(out, level, exposure) -> out * exp(c)``, one log gain per frame from the memory's exposure numbers.

    Args:
        hidden: width of the small nonlinear branch beside the linear term.
    """

    def __init__(self, hidden: int = 8) -> None:
        super().__init__(2, hidden)

    @staticmethod
    def signals(level: Tensor, exposure: Tensor) -> Tensor:
        """``(B, 2)``: the memory's mean correction and the raw level over the memory's, each bounded."""
        written, raw = exposure[..., 0], exposure[..., 1]  # (B, frames)
        signals = torch.stack([(written - raw).mean(1), level - raw.mean(1)], 1)
        return signals.clamp(-MAX_LOG_RATIO, MAX_LOG_RATIO)

    def forward(self, out: Tensor, level: Tensor, exposure: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Anchor ``out`` ``(B, 3, H, W)`` of raw ``level`` ``(B,)`` to a non-empty memory's ``exposure`` ``(B, k, 2)``.

        Returns:
            the anchored output, the log gain ``(B,)`` applied and the memory's mean correction ``c`` ``(B,)`` it
            read (the caller stores ``level + gain``, mode ``exposure``, or ``level + c``, mode ``carry``).
        """
        signals = self.signals(level, exposure)
        gain = self.gain(signals)
        return out * torch.exp(gain).view(-1, 1, 1, 1), gain, signals[:, 0]
