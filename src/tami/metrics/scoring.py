"""Scoring one video of one method: every metric's per-frame values and score, and its brightness curve.

The one way videos are scored, whether the frames came from dataset folders (:class:`tami.evaluation.Evaluator`)
or from memory (:func:`tami.evaluation.compare.evaluate_methods`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .reference import Reference
from .registry import Metric
from .results import VideoScores
from .temporal import brightness_changes_u8


def score_video(pred: np.ndarray, ref: Reference, metrics: Sequence[Metric], frames: Sequence[str]) -> VideoScores:
    """Score ``pred`` ``(T, H, W, 3) uint8`` against ``ref`` with every metric.

    Args:
        pred: the method's frames, quantised, the shape of the reference's.
        ref: the ground truth video (and what is derived from it once).
        metrics: the metrics to apply.
        frames: names of the scored frames (for the tables); the video is named after ``ref.name``.

    Returns:
        The per-frame values, the scores, and the brightness curve when a temporal metric is among ``metrics``.
    """
    values = {m.info.name: m.values(pred, ref) for m in metrics}
    scores = {m.info.name: m.score(values[m.info.name]) for m in metrics}
    curve = brightness_changes_u8(pred) if any(m.info.temporal for m in metrics) else None
    return VideoScores(ref.name, list(frames), values, scores, curve)
