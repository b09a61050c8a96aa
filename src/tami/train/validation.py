"""Validation: enhance the first frames of every validation video and average the metrics over videos."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from ..metrics.registry import create_metric
from .distributed import DistInfo, all_reduce_sum


def metric_functions(names: tuple[str, ...]) -> dict[str, Callable[[Tensor, Tensor], float]]:
    """Registered metrics by name (``psnr``, ``ssim``, ``mabd``, ``ewarp``, ``jitter``; default options), each a
    function of ``(pred, gt)`` ``(T, 3, H, W)`` clips."""
    return {name: create_metric(name) for name in names}


def center_crop(clip: Tensor, size: int | None) -> Tensor:
    """Centre crop ``(..., H, W)`` to ``size x size`` (no-op for ``None`` or smaller frames)."""
    if size is None:
        return clip
    h, w = clip.shape[-2:]
    th, tw = min(size, h), min(size, w)
    top, left = (h - th) // 2, (w - tw) // 2
    return clip[..., top : top + th, left : left + tw]


@torch.no_grad()
def validate(
    predict: Callable[[Tensor], Tensor],
    dataset: Any,
    metrics: dict[str, Callable[[Tensor, Tensor], float]],
    info: DistInfo,
    *,
    crop: int | None = None,
    max_videos: int | None = None,
    autocast: Callable[[], Any],
) -> dict[str, float]:
    """Mean of each metric over the validation videos (each video: one clip from its first frame).

    Videos are split across processes and the sums all-reduced, so every process returns the same numbers.

    Args:
        predict: maps ``(1, T, 3, H, W)`` low-light clips to enhanced clips in [0, 1].
        dataset: indexable by ``(video, start)``, giving ``lq``/``gt`` ``(T, 3, H, W)``.
        metrics: name → function of ``(pred, gt)`` ``(T, 3, H, W)`` clips in [0, 1].
        info: process placement.
        crop: centre crop in pixels, if any.
        max_videos: only the first videos.
        autocast: returns the precision context for the forward pass.

    Returns:
        ``{"metric/<name>": mean over videos}``.
    """
    count = len(dataset.videos) if max_videos is None else min(max_videos, len(dataset.videos))
    names = list(metrics)
    sums = torch.zeros(len(names) + 1, dtype=torch.float64)
    for index in range(info.rank, count, info.world_size):
        sample = dataset[(index, 0)]
        lq = center_crop(sample["lq"], crop)
        gt = center_crop(sample["gt"], crop).float()
        with autocast():
            out = predict(lq[None].to(info.device))
        out = out[0].float().cpu()
        for j, name in enumerate(names):
            sums[j] += float(metrics[name](out, gt))
        sums[-1] += 1
    device_sums = all_reduce_sum(info, sums.to(info.device) if info.device.type == "cuda" else sums).cpu()
    videos = max(1.0, float(device_sums[-1]))
    return {f"metric/{name}": float(device_sums[j]) / videos for j, name in enumerate(names)}
