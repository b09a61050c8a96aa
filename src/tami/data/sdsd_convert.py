"""Convert SDSD's ``.npy`` release (BGR frames) to PNG frames in the generic paired layout.

Each SDSD scene folder (``indoor_np``, ``outdoor_static_np``, ...) becomes ``OUT[/<scene folder>]/{train,eval}/
{input,GT}/<video>/<frame>.png`` split by the chosen protocol, the layout of the TAMI release. The result reads
with ``build_dataset("sdsd", OUT/...)`` (test split: the protocol's first 30 frames) or ``build_dataset("generic",
...)`` (all frames). Frames are written as RGB PNGs (8-bit, or 16-bit for 16-bit arrays); the output folder appears
only when every frame is converted.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from ..atomic import atomic_path
from ..errors import InputError
from .layouts import DATASET_SPLITS, VideoFolders, frame_files, scan
from .video import decode_raw, to_float_rgb

logger = logging.getLogger(__name__)


def _png_bytes(path: Path, *, bgr: bool) -> bytes:
    raw = decode_raw(path)
    bgr = bgr or path.suffix.lower() != ".npy"  # OpenCV decodes images to BGR
    if raw.dtype not in (np.uint8, np.uint16):
        raw = np.rint(to_float_rgb(raw, bgr=bgr, source=path) * 255).astype(np.uint8)[:, :, ::-1]
    elif raw.ndim == 3 and raw.shape[2] >= 3:
        raw = raw[:, :, :3] if bgr else raw[:, :, 2::-1]  # OpenCV encodes BGR arrays as RGB PNGs
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(raw))
    if not ok:
        raise InputError(f"cannot encode {path} as png")
    return buf.tobytes()


def _convert_frame(src: Path, dst: Path, bgr: bool) -> None:
    dst.write_bytes(_png_bytes(src, bgr=bgr))


def _scene_of(video: VideoFolders) -> str | None:
    group = video.group.lower()
    return "indoor" if "indoor" in group else "outdoor" if "outdoor" in group else None


def convert_sdsd(src: str | os.PathLike[str], out: str | os.PathLike[str], *, protocol: str | None = None,
                 scene: str | None = None, workers: int = 4, overwrite: bool = False,
                 progress: Callable[[int], None] | None = None) -> Path:
    """Convert SDSD ``.npy`` frames (BGR) to RGB PNGs in the generic paired layout, split by protocol.

    Args:
        src: an SDSD root (holding ``indoor_np``, ``outdoor_static_np``, ...) or one scene folder.
        out: output folder (must not exist unless ``overwrite``).
        protocol: ``sdsd-dynamic`` or ``sdsd-static`` (default: from the folder names, ``_static_`` → static).
        scene: convert only ``indoor`` or ``outdoor``.
        workers: frames converted in parallel (PNG encoding releases the GIL).
        overwrite: replace an existing ``out``.
        progress: called with the number of frames written since the last call.

    Returns:
        ``out`` as a Path.

    Raises:
        InputError: not an SDSD folder, unpaired videos, unreadable frames (nothing is written then).
    """
    out = Path(out)
    if scene not in (None, "indoor", "outdoor"):
        raise InputError(f"unknown SDSD scene {scene!r}; expected indoor or outdoor")
    if out.exists() and not overwrite:
        raise InputError(f"{out} already exists; choose a new folder or pass overwrite=True (CLI: --overwrite)")
    found = scan("sdsd", src, protocol=protocol, scene=scene)
    skipped = sorted({v.group for v in found if v.group.endswith("_png")})
    if skipped:
        logger.info("skipping %s (already PNG)", ", ".join(skipped))
    videos = [v for v in found if not v.group.endswith("_png")]
    pairs = [(v, v.lq, v.gt) for v in videos if v.lq is not None and v.gt is not None]
    if len(pairs) < len(videos):
        broken = [v.name for v in videos if v.lq is None or v.gt is None]
        raise InputError(f"{len(broken)} SDSD videos miss their input or GT folder ({', '.join(broken[:5])}); "
                         f"run `tami data check {src} --layout sdsd`")
    groups = sorted({v.group for v in videos})
    jobs: list[tuple[Path, Path, bool]] = []
    for video, lq, gt in pairs:
        group_scene = scene or _scene_of(video)
        if group_scene is None:
            raise InputError(f"cannot tell whether {video.group} is SDSD indoor or outdoor; pass scene "
                             "(CLI: --scene indoor|outdoor)")
        name = protocol or ("sdsd-static" if "static" in video.group else "sdsd-dynamic")
        if name not in DATASET_SPLITS:
            raise InputError(f"unknown SDSD protocol {name!r}; expected one of {', '.join(DATASET_SPLITS)}")
        base = video.name.rsplit("/", 1)[-1]
        split = "eval" if base in DATASET_SPLITS[name].test[group_scene] else "train"
        prefix = Path(video.group) if len(groups) > 1 else Path()
        for side, folder in (("input", lq), ("GT", gt)):
            for frame in frame_files(folder):
                jobs.append((frame, prefix / split / side / base / f"{frame.stem}.png", video.bgr_npy))
    if not jobs:
        raise InputError(f"{src}: no SDSD frames found")
    with atomic_path(out, directory=True) as tmp:
        for folder in sorted({(tmp / dst).parent for _, dst, _ in jobs}):
            folder.mkdir(parents=True, exist_ok=True)
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            futures = [pool.submit(_convert_frame, s, tmp / d, bgr) for s, d, bgr in jobs]
            for future in futures:
                future.result()
                if progress is not None:
                    progress(1)
    logger.debug("converted %d frames of %d videos to %s", len(jobs), len(videos), out)
    return out
