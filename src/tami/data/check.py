"""Check a paired video dataset on disk: missing pairs, frame-count mismatches, unreadable or odd-sized frames.

``validate`` never raises for problems in the data: it lists them, so one run shows everything to fix.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from ..errors import InputError
from ..wording import count
from .layouts import VideoFolders, frame_files, scan
from .video import decode_raw

logger = logging.getLogger(__name__)

IssueKind = Literal["missing_video", "missing_frames", "count_mismatch", "empty", "unreadable", "size_mismatch"]


@dataclass(frozen=True)
class Issue:
    """One problem: what kind, which video, and a one-line detail."""

    kind: IssueKind
    video: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind.replace('_', ' ')}: {self.video}: {self.detail}"


@dataclass
class ValidationReport:
    """Result of :func:`validate`.

    Attributes:
        root, layout: what was checked.
        videos: number of video folders seen; pairs: of those, how many have both sides.
        frames: input frames seen; checked: frames decoded (0 with ``decode=False``).
        issues: every problem found.
    """

    root: Path
    layout: str
    videos: int = 0
    pairs: int = 0
    frames: int = 0
    checked: int = 0
    issues: list[Issue] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when no issue was found."""
        return not self.issues

    def counts(self) -> dict[str, int]:
        """Number of issues of each kind."""
        out: dict[str, int] = {}
        for issue in self.issues:
            out[issue.kind] = out.get(issue.kind, 0) + 1
        return out

    def summary(self) -> str:
        """One line: totals and issue counts."""
        head = (f"{self.root} ({self.layout}): {count(self.videos, 'video')}, {self.pairs} paired, "
                f"{count(self.frames, 'input frame')}" + (f", {count(self.checked, 'frame')} decoded" if self.checked
                                                           else ""))
        if self.ok:
            return head + "; no problems found"
        return head + "; " + ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in sorted(self.counts().items()))


def _names(paths: list[Path], limit: int = 5) -> str:
    shown = ", ".join(p.name for p in paths[:limit])
    return shown + (f" and {len(paths) - limit} more" if len(paths) > limit else "")


def _frame_shape(path: Path) -> tuple[int, int]:
    """Height and width of one frame, decoding it fully (``.npy``: header and file size through a memory map)."""
    if path.suffix.lower() == ".npy":
        try:
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot read {path.name}: {exc}") from exc
    else:
        array = decode_raw(path)
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (1, 3, 4)):
        raise InputError(f"{path.name} has shape {array.shape}, expected (H, W) or (H, W, 3)")
    return int(array.shape[0]), int(array.shape[1])


def _check_video(video: VideoFolders, report: ValidationReport, *, decode: bool) -> None:
    if video.lq is None or video.gt is None:
        side = "input" if video.lq is None else "GT"
        report.issues.append(Issue("missing_video", video.name, f"no {side} folder for this video"))
        return
    report.pairs += 1
    lq, gt = frame_files(video.lq), frame_files(video.gt)
    if video.one_gt:
        gt = [p for p in gt if "half" not in p.name][:1]
    report.frames += len(lq)
    if not lq or not gt:
        report.issues.append(Issue("empty", video.name, f"no {'input' if not lq else 'GT'} frames"))
        return
    if not video.one_gt:
        if len(lq) != len(gt):
            report.issues.append(Issue("count_mismatch", video.name, f"{len(lq)} input vs {len(gt)} GT frames"))
        lq_stems, gt_stems = {p.stem for p in lq}, {p.stem for p in gt}
        if lq_stems & gt_stems or len(lq) != len(gt):
            only_lq = [p for p in lq if p.stem not in gt_stems]
            only_gt = [p for p in gt if p.stem not in lq_stems]
            if only_lq:
                report.issues.append(Issue("missing_frames", video.name, f"no GT for {_names(only_lq)}"))
            if only_gt:
                report.issues.append(Issue("missing_frames", video.name, f"no input for {_names(only_gt)}"))
    if not decode:
        return
    sizes: dict[tuple[int, int], list[Path]] = {}
    for path in [*lq, *gt]:
        try:
            shape = _frame_shape(path)
        except InputError as exc:
            report.issues.append(Issue("unreadable", video.name, f"{path.parent.name}/{path.name}: {exc}"))
            continue
        report.checked += 1
        sizes.setdefault(shape, []).append(path)
    if len(sizes) > 1:
        common = max(sizes, key=lambda k: len(sizes[k]))
        odd = [p for k, ps in sizes.items() if k != common for p in ps]
        report.issues.append(Issue("size_mismatch", video.name,
                                   f"most frames are {common[1]}x{common[0]} but {_names(odd)} differ"))


def validate(root: str | Path, layout: str = "generic", *, protocol: str | None = None, scene: str | None = None,
             decode: bool = True, progress: Callable[[int, int], None] | None = None) -> ValidationReport:
    """Check every video of a dataset.

    Args:
        root: dataset root.
        layout: ``generic``, ``sdsd``, ``smid`` or ``did``.
        protocol, scene: narrow an SDSD root to one protocol's folders / one scene.
        decode: decode every frame (slow on large datasets); False only checks names and counts.
        progress: called as ``progress(done, total)`` after each video.

    Returns:
        A :class:`ValidationReport`; ``report.ok`` is True when nothing is wrong.

    Raises:
        InputError: the root is not a folder of this layout at all.
    """
    videos = scan(layout, root, protocol=protocol, scene=scene)
    report = ValidationReport(Path(root), layout, videos=len(videos))
    for i, video in enumerate(videos):
        _check_video(video, report, decode=decode)
        if progress is not None:
            progress(i + 1, len(videos))
    logger.debug(report.summary())
    return report
