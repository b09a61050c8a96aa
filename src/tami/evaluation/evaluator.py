"""Score methods' outputs against a GT dataset: find videos, match frames, load, score, collect a report.

Layout: the GT folder and each method folder hold one sub-folder of frames or one video file per video, matched by
name (folder name or file stem); a folder of frames (or a single video file) is also accepted as a one-video
dataset. Frames of folders are matched by name; video files are matched by order. Without a frame range the frame
counts must be equal; a protocol's range (e.g. the first 30 frames) is taken from the GT order.

Each GT video is read once per run and shared by all methods (:class:`~tami.metrics.reference.Reference`), so its
flow and brightness curve are computed once whatever the number of methods.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..data.video import IMAGE_SUFFIXES, VIDEO_SUFFIXES, natural_key, open_video
from ..errors import InputError, UsageError
from ..frames import to_uint8
from ..metrics import EvaluationReport, FlowCache, MethodScores, Metric, Reference, score_video
from .protocols import describe_span, get_protocol

logger = logging.getLogger(__name__)


def discover_videos(root: str | os.PathLike[str], *, role: str = "input") -> dict[str, Path]:
    """Videos under ``root`` by name: sub-folders and video files; ``root`` itself when it is one video.

    Raises:
        InputError: ``root`` is missing or holds no video, or two entries share a name.
    """
    root = Path(root)
    if not root.exists():
        raise InputError(f"{role} folder not found: {root}")
    if root.is_file():
        return {root.stem: root}
    entries = [p for p in root.iterdir() if not p.name.startswith(".")]
    videos = [p for p in entries if p.is_dir() or (p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)]
    if not videos:
        if any(p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES for p in entries):
            return {root.name: root}
        raise InputError(f"{role} folder {root} holds no videos: expected sub-folders of frames or video files")
    out: dict[str, Path] = {}
    for path in sorted(videos, key=lambda p: natural_key(p.name)):
        name = path.name if path.is_dir() else path.stem
        if name in out:
            raise InputError(f"{role} folder {root} has two videos named {name!r}: {out[name].name} and {path.name}")
        out[name] = path
    return out


def pick_videos(available: Sequence[str], wanted: Sequence[str] | None, *, where: str) -> list[str]:
    """The videos to use: ``available`` in their order, only those in ``wanted`` when it is given.

    The one check of videos picked by name, for ``tami evaluate --videos`` and ``tami report --video`` alike.

    Args:
        available: the videos there are, in order.
        wanted: names the user picked (None or empty: all).
        where: what holds ``available``, for the message (``"the GT folder data/GT"``).

    Raises:
        UsageError: a picked name is not available; one line naming it and listing the available videos.
    """
    if not wanted:
        return list(available)
    unknown = [v for v in wanted if v not in available]
    if unknown:
        shown = ", ".join(available[:_LISTED]) + (f", and {len(available) - _LISTED} more"
                                                   if len(available) > _LISTED else "")
        raise UsageError(f"no video {unknown[0]!r} in {where} (videos: {shown}); pick from these")
    return [v for v in available if v in wanted]


_LISTED = 8  # videos an unknown-video message lists before "and N more"


def _read(path: Path, indices: list[int], *, bgr_npy: bool, strict: bool = False) -> np.ndarray:
    """Frames ``indices`` (any order) of a video as ``(N, H, W, 3) uint8``, decoding only up to the last one."""
    wanted = set(indices)
    last = max(indices)
    got: dict[int, np.ndarray] = {}
    with open_video(path, bgr_npy=bgr_npy, strict=strict) as reader:
        for i, frame in enumerate(reader):
            if i in wanted:
                got[i] = to_uint8(frame)
            if i >= last:
                break
    return np.stack([got[i] for i in indices])


def _frame_names(path: Path, *, bgr_npy: bool, strict: bool = False) -> tuple[list[str], bool]:
    """Frame names and whether they are real names (folders, images) rather than positions (video files)."""
    with open_video(path, bgr_npy=bgr_npy, strict=strict) as reader:
        return reader.frame_names(), reader.info.kind != "file"


@dataclass(frozen=True)
class _Plan:
    """Which frames of one video are scored: GT names, and the matching frame indices of each method / input."""

    gt_names: list[str]
    gt_index: list[int]
    methods: dict[str, list[int]]
    inp: list[int] | None


class Evaluator:
    """Scores one or more methods against a GT dataset, one video at a time.

    Args:
        gt: GT folder (see the module docstring for the layout).
        methods: method name -> output folder.
        metrics: the metrics to compute (see :func:`tami.metrics.create_metric`).
        protocol: a named protocol (``"sdsd-dynamic"``, ``"sdsd-static"``) restricting videos and frames.
        subset: the protocol's subset (``"indoor"``/``"outdoor"``); default: read from the GT path.
        frames: score only the first ``frames`` GT frames (overrides the protocol's range).
        videos: score only these videos.
        inp: low-light input folder, needed for E_warp with flow on the input.
        cache: flow cache shared by all videos (e.g. with a disk folder); default: in memory.
        bgr_npy: ``.npy`` frames hold BGR channels (SDSD ``*_np`` releases).

    Raises:
        InputError: missing folders, videos absent from the GT or from a method (named), unknown protocol.
        UsageError: a name in ``videos`` is not a GT video (of the protocol, when one is given).
    """

    def __init__(self, gt: str | os.PathLike[str], methods: dict[str, str | os.PathLike[str]], metrics: list[Metric],
                 *, protocol: str | None = None, subset: str | None = None, frames: int | None = None,
                 videos: list[str] | None = None, inp: str | os.PathLike[str] | None = None,
                 cache: FlowCache | None = None, bgr_npy: bool = False, strict: bool = False) -> None:
        if not methods:
            raise InputError("no method to evaluate: give --pred DIR or --method NAME=DIR")
        if not metrics:
            raise InputError("no metric selected")
        if frames is not None and frames < 1:
            raise InputError(f"frames must be >= 1, got {frames}")
        self.gt_root = Path(gt)
        self.metrics = metrics
        self.bgr_npy = bgr_npy
        self.strict = strict
        self.cache = cache if cache is not None else FlowCache()
        gt_videos = discover_videos(self.gt_root, role="GT")
        self.protocol: dict[str, Any] | None = None
        self.span: slice | None = slice(0, frames) if frames is not None else None
        if protocol is not None:
            proto = get_protocol(protocol)
            chosen = proto.subset_of(self.gt_root, subset)
            self.protocol = proto.to_dict(chosen)
            names = list(proto.videos[chosen])
            if frames is None:
                self.span = proto.frames
            absent = [n for n in names if n not in gt_videos]
            if absent:
                raise InputError(
                    f"video {absent[0]!r} of protocol {proto.name} ({chosen}) is missing from the GT folder "
                    f"{self.gt_root}" + (f" (and {len(absent) - 1} more)" if len(absent) > 1 else "")
                )
        else:
            names = list(gt_videos)
        where = (f"the {self.protocol['subset']} videos of protocol {self.protocol['name']}"
                 if self.protocol is not None else f"the GT folder {self.gt_root}")
        names = pick_videos(names, videos, where=where)
        self.videos = names
        span = describe_span(self.span)
        if self.protocol is None:
            self.protocol = {"name": "none", "subset": None, "description": f"every GT video given, {span}",
                             "videos": list(names), "frames": span}
        else:
            self.protocol.update(videos=list(names), frames=span)
        self.gt_paths = {n: gt_videos[n] for n in names}
        self.method_paths: dict[str, dict[str, Path]] = {}
        for method, root in methods.items():
            found = discover_videos(root, role=f"method {method!r}")
            if len(found) == 1 and len(names) == 1:  # one video each: names need not agree
                found = {names[0]: next(iter(found.values()))}
            for n in names:
                if n not in found:
                    raise InputError(f"video {n!r} is missing from method {method!r} ({root}): expected a folder "
                                     f"or video file named {n}")
            self.method_paths[method] = {n: found[n] for n in names}
        self.inp_paths: dict[str, Path] | None = None
        if inp is not None:
            found = discover_videos(inp, role="input")
            missing = [n for n in names if n not in found]
            if missing:
                raise InputError(f"video {missing[0]!r} is missing from the input folder {inp}")
            self.inp_paths = {n: found[n] for n in names}
        self.results = {m: MethodScores(m, str(Path(p))) for m, p in methods.items()}
        self.gt_brightness: dict[str, np.ndarray] = {}
        # Match every frame before scoring anything: a mismatch in the last video fails at once, not minutes later.
        self._plans = {n: self._plan(n) for n in names}

    def _plan(self, video: str) -> _Plan:
        all_names, gt_by_name = _frame_names(self.gt_paths[video], bgr_npy=self.bgr_npy, strict=self.strict)
        gt_index = list(range(len(all_names)))[self.span] if self.span is not None else list(range(len(all_names)))
        gt_names = [all_names[i] for i in gt_index]
        if any(m.info.temporal for m in self.metrics) and len(gt_names) < 2:
            raise InputError(f"video {video!r}: E_warp and MABD need at least 2 frames, the GT has {len(gt_names)}")
        methods = {method: self._match(video, f"method {method!r}", paths[video], gt_names, len(all_names),
                                       gt_by_name)
                   for method, paths in self.method_paths.items()}
        inp = None
        if self.inp_paths is not None:
            inp = self._match(video, "the input", self.inp_paths[video], gt_names, len(all_names), gt_by_name)
        return _Plan(gt_names, gt_index, methods, inp)

    def _match(self, video: str, who: str, path: Path, gt_names: list[str], gt_total: int,
               gt_by_name: bool) -> list[int]:
        """Indices of ``path``'s frames that correspond to ``gt_names`` (the scored GT frames)."""
        names, by_name = _frame_names(path, bgr_npy=self.bgr_npy, strict=self.strict)
        limited = self.span is not None
        if not limited and len(names) != gt_total:
            raise InputError(f"video {video!r}: {who} has {len(names)} frames, GT has {gt_total}; frame counts must "
                             "match (or restrict the range with --frames/--protocol)")
        if by_name and gt_by_name:
            index = {n: i for i, n in enumerate(names)}
            missing = [n for n in gt_names if n not in index]
            if missing:
                raise InputError(f"video {video!r}: {who} lacks frame {missing[0]!r}"
                                 + (f" and {len(missing) - 1} more" if len(missing) > 1 else "")
                                 + f" of the GT ({path}); frames are matched by file name")
            return [index[n] for n in gt_names]
        if len(names) < len(gt_names):
            raise InputError(f"video {video!r}: {who} has {len(names)} frames, {len(gt_names)} are scored")
        # Video files carry no frame names: a method's output holds exactly the scored frames, in order.
        return list(range(len(gt_names)))

    def evaluate_video(self, video: str) -> None:
        """Score every method on ``video`` (results accumulate in :attr:`results`)."""
        plan = self._plans[video]
        gt = _read(self.gt_paths[video], plan.gt_index, bgr_npy=self.bgr_npy, strict=self.strict)
        inp = None
        if self.inp_paths is not None and plan.inp is not None:
            frames = _read(self.inp_paths[video], plan.inp, bgr_npy=self.bgr_npy, strict=self.strict)
            inp = self._checked(video, "the input", frames, gt)
        ref = Reference(gt, inp=inp, name=video, cache=self.cache)
        temporal = any(m.info.temporal for m in self.metrics)
        if temporal:
            self.gt_brightness[video] = ref.brightness_changes()
        for method, paths in self.method_paths.items():
            who = f"method {method!r}"
            frames = _read(paths[video], plan.methods[method], bgr_npy=self.bgr_npy, strict=self.strict)
            pred = self._checked(video, who, frames, gt)
            self.results[method].videos[video] = score_video(pred, ref, self.metrics, plan.gt_names)

    @staticmethod
    def _checked(video: str, who: str, frames: np.ndarray, gt: np.ndarray) -> np.ndarray:
        if frames.shape != gt.shape:
            raise InputError(f"video {video!r}: {who} frames are {frames.shape[2]}x{frames.shape[1]}, GT frames "
                             f"are {gt.shape[2]}x{gt.shape[1]}; resize the output to the GT size")
        return frames

    def report(self, *, command: str | None = None, seconds: float = 0.0) -> EvaluationReport:
        """The results so far as an :class:`~tami.metrics.results.EvaluationReport`.

        A frame range longer than the videos is described by what was scored ("first 8 frames", not 20).
        """
        protocol = self.protocol
        scored = [len(v.frames) for m in self.results.values() for v in m.videos.values()]
        stop = self.span.stop if self.span is not None and (self.span.start or 0) == 0 else None
        if protocol is not None and scored and stop is not None and max(scored) < stop:
            longest = max(scored)
            span = f"first {longest} frames" if min(scored) == longest else f"first {stop} frames (at most {longest})"
            protocol = {**protocol, "frames": span,
                        "description": protocol["description"].replace(describe_span(self.span), span)}
        return EvaluationReport(self.metrics, list(self.results.values()), str(self.gt_root), protocol,
                                dict(self.gt_brightness), command, seconds)
