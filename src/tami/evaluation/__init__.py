"""Evaluation runs: find the videos of a dataset and of each method, pair them and their frames, score them with
:mod:`tami.metrics` (which only scores arrays) and collect the report.

:mod:`.evaluator` walks folders and pairs videos (:class:`Evaluator`, :func:`discover_videos`, and
:func:`pick_videos` for videos picked by name); :mod:`.compare` scores one video of several methods from paths or
memory (:func:`evaluate_methods`, what the report uses); :mod:`.protocols` names the published splits and frame
ranges.
"""

from .compare import evaluate_methods
from .evaluator import Evaluator, discover_videos, pick_videos
from .protocols import EVAL_PROTOCOLS, EvalProtocol, get_protocol

__all__ = [
    "EVAL_PROTOCOLS", "EvalProtocol", "Evaluator", "discover_videos", "evaluate_methods", "get_protocol", "pick_videos",
]
