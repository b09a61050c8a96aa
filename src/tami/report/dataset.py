"""Reports and time slices over dataset folders laid out as ``tami evaluate`` reads them.

A dataset folder holds one sub-folder of frames or one video file per video (``GT/<video>/``,
``out/tami/<video>.mp4``, ...). Given such folders, the viewers either pick videos by name or make one page (or
one set of slices) per video, under ``OUT/<video>/``, with ``OUT/index.html`` linking them.
"""

from __future__ import annotations

import html
import os
import urllib.parse
from collections.abc import Callable, Mapping
from pathlib import Path

from ..atomic import atomic_path
from ..errors import InputError, UsageError
from ..evaluation.evaluator import discover_videos, pick_videos

INDEX = "index.html"


def is_dataset_folder(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a folder of videos (sub-folders or video files), not one video's frames."""
    path = Path(path)
    if not path.is_dir():
        return False
    try:
        return list(discover_videos(path).values()) != [path]
    except InputError:
        return False


def split_by_video(methods: Mapping[str, Path], gt: Path | None, videos: list[str] | None
                   ) -> dict[str, tuple[dict[str, Path], Path | None]] | None:
    """``{video: ({method: path}, gt_path)}`` when the inputs are dataset folders; ``None`` when each is one video.

    Videos are the GT's (else the first method's), in natural order, or those named in ``videos``.

    Raises:
        UsageError: dataset folders mixed with single videos, ``videos`` without dataset folders, or an unknown
            video name.
        InputError: a method lacks one of the videos.
    """
    inputs = {**methods, **({"GT": gt} if gt is not None else {})}
    kinds = {name: is_dataset_folder(path) for name, path in inputs.items()}
    if not any(kinds.values()):
        if videos:
            raise UsageError("--video picks videos of dataset folders (one sub-folder or video file per video); "
                             "the inputs given are single videos")
        return None
    single = [name for name, dataset in kinds.items() if not dataset]
    if single:
        raise UsageError(f"{single[0]} ({inputs[single[0]]}) is a single video but other inputs are dataset folders; "
                         "give every method (and --gt) as a dataset folder, or each as one video")
    found = {name: discover_videos(path, role=f"{name!r}") for name, path in inputs.items()}
    reference = found["GT"] if gt is not None else next(iter(found.values()))
    names = pick_videos(list(reference), videos, where="the dataset folders")
    out: dict[str, tuple[dict[str, Path], Path | None]] = {}
    for video in names:
        for name, entries in found.items():
            if video not in entries:
                raise InputError(f"video {video!r} is missing from {name!r} ({inputs[name]}); pick videos with "
                                 "--video NAME")
        out[video] = ({m: found[m][video] for m in methods}, found["GT"][video] if gt is not None else None)
    return out


def href(video: str, file: str) -> str:
    """``video/file`` as an escaped, URL-quoted attribute value for the index page."""
    return html.escape(urllib.parse.quote(f"{video}/{file}"))


def check_output(out: Path) -> None:
    """Refuse to replace a non-empty folder that is not an earlier per-video output (it has ``index.html``)."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"output {out} is a file; give a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / INDEX).is_file():
        raise UsageError(f"output {out} is a non-empty folder that is not an earlier tami output; give a new or "
                         "empty folder")


def write_per_video(out: str | os.PathLike[str], videos: list[str], build: Callable[[str, Path], str],
                    *, title: str, header: str = "") -> Path:
    """Run ``build(video, folder)`` for every video into ``OUT/<video>/`` and link the results from
    ``OUT/index.html``; the folder appears whole once everything is written (an earlier one is replaced).

    Args:
        out: output folder.
        videos: video names, in order.
        build: writes one video's output into the given folder; returns the HTML shown for it in the index
            (relative links are relative to ``OUT``).
        title: the index page's title.
        header: trusted HTML shown above the list (e.g. the dataset metrics table).
    """
    out = Path(out)
    check_output(out)
    with atomic_path(out, directory=True) as tmp:
        items = [f"<section><h2>{html.escape(video)}</h2>{build(video, tmp / video)}</section>" for video in videos]
        page = (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
                "<style>body{font-family:sans-serif;margin:2em}img{max-width:100%}table{border-collapse:collapse}"
                "td,th{padding:2px 8px;border-bottom:1px solid #ccc;text-align:right}</style></head><body>"
                f"<h1>{html.escape(title)}</h1><p>{len(videos)} video{'s' if len(videos) != 1 else ''}</p>"
                f"{header}{''.join(items)}</body></html>")
        (tmp / INDEX).write_text(page, encoding="utf-8")
    return out / INDEX
