"""Small tensor helpers shared by the adapter modules: working grids, resizing, luma, channel LayerNorm."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..frames import LUMA_709


def scaled_grid(height: int, width: int, scale: float, max_tokens: int | None = None) -> tuple[int, int]:
    """Size of a ``height x width`` map scaled by ``scale``, shrunk further to at most ``max_tokens`` cells.

    Args:
        height, width: size of the map being scaled.
        scale: linear factor (``0.25`` keeps one cell per 4x4 block); each side is rounded, at least 1.
        max_tokens: cap on ``rows * cols``; when exceeded both sides shrink by the same factor (aspect kept).

    Returns:
        ``(rows, cols)``.
    """
    rows, cols = max(1, round(height * scale)), max(1, round(width * scale))
    if max_tokens is not None and rows * cols > max_tokens:
        shrink = math.sqrt(max_tokens / (rows * cols))
        rows, cols = max(1, math.floor(rows * shrink)), max(1, math.floor(cols * shrink))
    return rows, cols


def luma(x: Tensor) -> Tensor:
    """Rec. 709 luma ``(B, 1, H, W)`` of RGB ``x`` ``(B, 3, H, W)``."""
    return (x * x.new_tensor(LUMA_709).view(1, 3, 1, 1)).sum(1, keepdim=True)


def resize_to(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Resize ``x`` ``(B, C, H, W)`` to ``size``: unchanged if equal, area average when shrinking, else bilinear."""
    h, w = x.shape[-2:]
    if (h, w) == tuple(size):
        return x
    if size[0] <= h and size[1] <= w:
        return F.adaptive_avg_pool2d(x, size)
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class LayerNorm2d(nn.Module):
    """LayerNorm over the channels of every pixel of ``(B, C, H, W)`` (affine, biased variance).

    The result is laid out channels-last (no copy for channels-last input, which is what the IGFE uses).
    """

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        y = F.layer_norm(x.permute(0, 2, 3, 1), (x.shape[1],), self.weight, self.bias, self.eps)
        return y.permute(0, 3, 1, 2)


class Pointwise(nn.Conv2d):
    """A 1x1 convolution (same parameters as ``nn.Conv2d(in_ch, out_ch, 1)``) computed as one matrix product over
    the pixels when the input is channels-last (several times faster than the convolution kernels on CPU)."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__(in_ch, out_ch, 1)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last):
            return F.linear(x.permute(0, 2, 3, 1), self.weight.flatten(1), self.bias).permute(0, 3, 1, 2)
        return super().forward(x)
