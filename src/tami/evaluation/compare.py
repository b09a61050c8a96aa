"""Score one video of several methods against a GT, whether the frames lie on disk or in memory.

Paths go through :class:`~.evaluator.Evaluator` (frames matched by name, streamed); frames in memory are paired by
position. Either way each method's video is scored by :func:`tami.metrics.score_video` against one
:class:`~tami.metrics.Reference`, so a report scores exactly as ``tami evaluate`` does.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..data.sources import FrameInput, FrameSource, open_sources
from ..errors import InputError
from ..metrics import EvaluationReport, MethodScores, Metric, Reference, quantize_frames, score_video
from .evaluator import Evaluator

GT_NAME = "GT"
IN_MEMORY = "(in memory)"


def _is_path(value: object) -> bool:
    return isinstance(value, (str, os.PathLike))


def _score_in_memory(methods: Mapping[str, FrameSource], gt: FrameSource, metrics: list[Metric],
                     video: str) -> EvaluationReport:
    """Score in-memory methods against an in-memory GT (frames aligned by position, all frames)."""
    gt_u8 = quantize_frames(np.stack(list(gt)), name=GT_NAME)
    ref = Reference(gt_u8, name=video)
    temporal = any(m.info.temporal for m in metrics)
    results = []
    for name, source in methods.items():
        pred = quantize_frames(np.stack(list(source)), name=name)
        if pred.shape != gt_u8.shape:
            raise InputError(f"method {name!r} has {pred.shape[0]} frames of {pred.shape[2]}x{pred.shape[1]}, GT has "
                             f"{gt_u8.shape[0]} of {gt_u8.shape[2]}x{gt_u8.shape[1]}; they must match for metrics")
        frames = [f"{i:06d}" for i in range(pred.shape[0])]
        results.append(MethodScores(name, IN_MEMORY, {video: score_video(pred, ref, metrics, frames)}))
    brightness = {video: ref.brightness_changes()} if temporal else {}
    return EvaluationReport(metrics, results, IN_MEMORY, None, brightness)


def evaluate_methods(methods: Mapping[str, FrameInput], gt: FrameInput, metrics: list[Metric],
                     *, video: str = "video") -> EvaluationReport:
    """Score one video of every method against the GT with :mod:`tami.metrics`.

    Paths go through :class:`~.evaluator.Evaluator` (frames matched by name, streamed per video); when any input is
    in memory, all frames are scored by position.

    Raises:
        InputError: unreadable inputs, frame counts or sizes that differ from the GT's.
    """
    if _is_path(gt) and all(_is_path(p) for p in methods.values()):
        evaluator = Evaluator(gt, {n: Path(p) for n, p in methods.items()}, metrics)  # type: ignore[arg-type]
        for name in evaluator.videos:
            evaluator.evaluate_video(name)
        return evaluator.report()
    sources = open_sources({**methods, GT_NAME: gt})
    gt_source = sources.pop(GT_NAME)
    return _score_in_memory(sources, gt_source, metrics, video)
