"""What ``tami demo`` does, as a library: a held-out synthetic clip (or the user's video), the bundled model with
and without its adapter, a no-memory control when one is given, and everything a newcomer needs to see the
difference.

The control is an adapter of the same size trained with the same recipe but without memory (``memory_frames``
0): TAMI beating the backbone alone shows the adapter helps, TAMI beating the control shows its memory does.

The synthetic clips use photographs that the bundled model never saw in training (``builtin:test``) and seeds
outside the training recipe's, with the same degradation model (exposure, noise, flicker, colour cast).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .atomic import atomic_path
from .data.synthetic import builtin_images, synthesize_clip
from .data.video import open_video, open_writer
from .adapter import TAMI
from .bundled import bundled_models, load_enhancement_model
from .enhance import EnhanceOptions, Enhancer
from .errors import InputError, UsageError
from .frames import to_uint8
from .wording import count
from .metrics import METRICS, FlowCache, Reference, create_metric
from .metrics.frames import quantize_frames
from .metrics.results import format_score, render_markdown
from .metrics.scoring import score_video
from .report import build_report
from .timeslice import SliceLine, save_time_slices, time_slices

logger = logging.getLogger(__name__)

# The degradations of the bundled model's training data (configs/bundled_*.yaml, synthetic preset v2): held-out
# clips must look like the training data.
DEMO_DEGRADATION: dict[str, Any] = {"preset": "v2"}
HELDOUT_SEED = 10_000  # training recipes use seeds below 1,000
#: Runs of the demo (file stem) and their labels on the side-by-side panels, in panel order.
PANEL_LABELS = {"backbone": "backbone", "control": "control", "tami": "TAMI"}
#: The bundled no-memory control shipped with the bundled model, when the package has one.
BUNDLED_CONTROL = "demo_control"


def default_control(model: str | os.PathLike[str] | None) -> str | None:
    """The control to run beside ``model``: the bundled control for the bundled model (None if not shipped)."""
    return BUNDLED_CONTROL if model is None and BUNDLED_CONTROL in bundled_models() else None


def heldout_clip(index: int, *, frames: int = 30, size: tuple[int, int] = (256, 256),
                 flicker: float | None = None, **degradation: Any) -> tuple[str, np.ndarray, np.ndarray]:
    """The ``index``-th held-out synthetic clip: ``(name, lq, gt)`` with ``(T, H, W, 3) float32`` frames.

    Clips cycle over the held-out photographs; every index has its own seed (``HELDOUT_SEED + index``).
    ``flicker`` (``None``: the recipe's) and ``degradation`` override options of
    :func:`tami.data.synthetic.synthesize`.
    """
    images = builtin_images("test")
    name, image = images[index % len(images)]
    options = {**DEMO_DEGRADATION, **degradation}
    if flicker is not None:
        options["flicker"] = flicker
    lq, gt = synthesize_clip(image, frames=frames, size=size, seed=HELDOUT_SEED + index, **options)
    return f"{index:02d}_{name}", lq, gt


def enhance_frames(enhancer: Enhancer, frames: Sequence[np.ndarray],
                   on_frame: Callable[[int], None] | None = None) -> np.ndarray:
    """Run ``enhancer`` over one video held in memory; returns ``(T, H, W, 3) float32``."""
    out = []
    for i, frame in enumerate(enhancer.enhance_frames(frames), start=1):
        out.append(frame)
        if on_frame is not None:
            on_frame(i)
    return np.stack(out)


def score(pred: np.ndarray, gt: np.ndarray | None, *, inp: np.ndarray | None = None,
          cache: FlowCache | None = None) -> dict[str, float]:
    """The protocol metrics of one ``(T, H, W, 3)`` video, scored in the readers' layout through the registry.

    With ``gt``: PSNR, SSIM, E_warp (flow on GT) and MABD. Without (a user's video): E_warp with the flow
    estimated on the input ``inp``, the only one of them that needs no reference.
    """
    p = quantize_frames(pred, name="pred")
    if gt is None:
        if inp is None:
            raise InputError("score needs gt, or inp for the reference-free E_warp")
        i = quantize_frames(inp, name="inp")
        ref, metrics = Reference(i, inp=i, cache=cache), [create_metric("ewarp", source="input")]
    else:
        ref = Reference(quantize_frames(gt, name="gt"), cache=cache)
        metrics = [create_metric(name) for name in ("psnr", "ssim", "ewarp", "mabd")]
    if p.shape != ref.gt.shape:
        raise InputError(f"pred has {p.shape[0]} frames of {p.shape[2]}x{p.shape[1]}, the reference "
                         f"{ref.gt.shape[0]} of {ref.gt.shape[2]}x{ref.gt.shape[1]}; they must match")
    return score_video(p, ref, metrics, [str(t) for t in range(len(p))]).scores


def metrics_table(rows: dict[str, dict[str, float]]) -> str:
    """Markdown table of metric rows, headed, scaled and rounded as every tami table (:mod:`tami.metrics.results`)."""
    infos = [METRICS.get(c).info for c in ("psnr", "ssim", "ewarp", "mabd") if any(c in r for r in rows.values())]
    body = [[name, *(format_score(row[i.name], i) if i.name in row else "-" for i in infos)]
            for name, row in rows.items()]
    return render_markdown(["method", *(i.table_label for i in infos)], body)


def _label(frame: np.ndarray, text: str) -> np.ndarray:
    out = to_uint8(frame).copy()
    scale = max(0.4, frame.shape[0] / 600)
    thickness = max(1, round(scale * 2))
    org = (6, 6 + round(22 * scale))
    cv2.putText(out, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thickness + 2, cv2.LINE_AA)
    cv2.putText(out, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thickness, cv2.LINE_AA)
    return out


def _write_video(path: Path, frames: np.ndarray, fps: float) -> Path:
    with open_writer(path, fps) as writer:
        for frame in frames:
            writer.write(frame)
    return path


@dataclass
class DemoResult:
    """Paths and numbers of one demo run."""

    out_dir: Path
    source: str
    frames: int
    metrics: dict[str, dict[str, float]]
    files: list[Path] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)


def load_input(video: str | os.PathLike[str] | None, *, frames: int, size: tuple[int, int], strict: bool = False
               ) -> tuple[str, np.ndarray, np.ndarray | None, float]:
    """The demo input: a held-out synthetic clip with GT, or the first ``frames`` frames of ``video``."""
    if video is None:
        name, lq, gt = heldout_clip(0, frames=frames, size=size)
        return f"synthetic clip from the held-out photograph '{name[3:]}'", lq, gt, 25.0
    reader = open_video(video, strict=strict)
    clip = []
    for frame in reader:
        clip.append(frame)
        if len(clip) == frames:
            break
    if len(clip) < 2:
        raise InputError(f"{video} has {len(clip)} frame(s); the demo needs a video of at least 2 frames")
    return str(video), np.stack(clip), None, reader.info.fps or 25.0


def load_control(control: str | os.PathLike[str]) -> TAMI:
    """The no-memory control model (bundled name or model file); refuses a model that keeps a memory."""
    net = load_enhancement_model(control)
    if net.config.memory_frames != 0:
        raise UsageError(
            f"the control {control} keeps {net.config.memory_frames} frames of memory; the control is an adapter "
            "trained without memory (adapter option memory_frames: 0)"
        )
    return net


def run_demo(out_dir: str | os.PathLike[str], video: str | os.PathLike[str] | None = None, *,
             model: str | os.PathLike[str] | None = None, control: str | os.PathLike[str] | None = None,
             frames: int = 30, size: tuple[int, int] = (256, 256), options: EnhanceOptions | None = None,
             on_frame: Callable[[str, int, int], None] | None = None, strict: bool = False) -> DemoResult:
    """Run the bundled model with and without its adapter (and the no-memory ``control``) on a demo clip and
    write everything to ``out_dir``.

    Writes ``input.mp4`` (and ``gt.mp4`` for the synthetic clip), ``backbone.mp4``, ``tami.mp4`` (and
    ``control.mp4``), ``compare.mp4`` (input | backbone [| control] | TAMI [| GT]), ``timeslice/`` (the centre
    column of every frame, per method, and their labelled ``grid.png``),
    ``metrics.md``/``metrics.json`` and a browsable ``report/index.html``. The folder appears whole when
    everything is written (nothing is left on an error or Ctrl-C) and replaces an earlier demo's output there.

    Args:
        out_dir: output folder: new, empty, or an earlier demo's output.
        video: the user's video (first ``frames`` frames); None generates a held-out synthetic clip.
        model: bundled model name or model file (default: the bundled model).
        control: the no-memory control, a bundled name or model file (:func:`default_control` gives the one
            shipped with the bundled model); None runs no control.
        frames, size: length and frame size of the synthetic clip (``size`` is ignored for user videos).
        options: device/precision/... for both runs (``backbone_only`` is set per run).
        on_frame: progress callback ``(run name, frames done, frames total)``.
        strict: a truncated or damaged ``video`` is an error (else its decodable frames are used).

    Raises:
        InputError: ``out_dir`` holds something else; the video cannot be read or is shorter than 2 frames.
        UsageError: the control keeps a memory.
    """
    target = Path(out_dir)
    _check_replaceable(target)
    source, lq, gt, fps = load_input(video, frames=frames, size=size, strict=strict)
    options = options or EnhanceOptions()
    net = load_enhancement_model(model)
    runs = [("backbone", net, True)]
    if control is not None:
        runs.append(("control", load_control(control), False))
    runs.append(("tami", net, False))
    results: dict[str, np.ndarray] = {}
    seconds: dict[str, float] = {}
    for name, run_net, backbone_only in runs:
        enhancer = Enhancer(run_net, EnhanceOptions(**{**options.__dict__, "backbone_only": backbone_only}))
        start = time.perf_counter()
        results[name] = enhance_frames(
            enhancer, list(lq), None if on_frame is None else (lambda i, n=name: on_frame(n, i, len(lq))))
        seconds[name] = time.perf_counter() - start
    cache = FlowCache()
    rows = {"input": score(lq, gt, inp=lq, cache=cache)} if gt is not None else {}
    rows.update({name: score(video_out, gt, inp=lq, cache=cache) for name, video_out in results.items()})
    panels = [("input", lq), *((PANEL_LABELS[name], results[name]) for name in results)]
    if gt is not None:
        panels.append(("GT", gt))
    with atomic_path(target, directory=True) as out:
        files = _write_outputs(out, panels, fps)
        table = metrics_table(rows)
        (out / "metrics.md").write_text(f"# tami demo\n\nSource: {source}, {count(len(lq), 'frame')}.\n\n{table}\n")
        (out / "metrics.json").write_text(json.dumps({"source": source, "frames": len(lq), "metrics": rows,
                                                      "seconds": seconds}, indent=2))
        files += [out / "metrics.md", out / "metrics.json"]
        files = [target / path.relative_to(out) for path in files]
    return DemoResult(target, source, len(lq), rows, files, seconds)


def _check_replaceable(out: Path) -> None:
    """Refuse an output folder that holds anything but an earlier demo's output (it is replaced as a whole)."""
    if not out.exists():
        return
    if not out.is_dir():
        raise InputError(f"{out} is a file; choose a folder for the demo's output with -o")
    earlier_demo = (out / "metrics.json").is_file() and (out / "input.mp4").is_file()
    if any(out.iterdir()) and not earlier_demo:
        raise InputError(f"{out} is not empty and is not an earlier demo's output; choose another folder with -o")


def _write_outputs(out: Path, panels: list[tuple[str, np.ndarray]], fps: float) -> list[Path]:
    """The videos, the side-by-side video, the time slices and the report of ``panels`` under ``out``."""
    videos = dict(panels)
    files = [_write_video(out / "input.mp4", videos["input"], fps)]
    if "GT" in videos:
        files.append(_write_video(out / "gt.mp4", videos["GT"], fps))
    files += [_write_video(out / f"{name}.mp4", videos[label], fps) for name, label in PANEL_LABELS.items()
              if label in videos]
    frames = len(videos["input"])
    compare = np.stack([np.concatenate([_label(v[t], label) for label, v in panels], axis=1) for t in range(frames)])
    files.append(_write_video(out / "compare.mp4", compare, fps))
    files += _timeslice(out / "timeslice", panels)
    files.append(_report(out / "report", panels, fps))
    return files


def _timeslice(folder: Path, panels: list[tuple[str, np.ndarray]]) -> list[Path]:
    """Time slices along the frame's centre column: ``<method>_slice.png``, ``<method>_line.png``, ``grid.png``."""
    width = panels[0][1].shape[2]
    result = time_slices({label: video for label, video in panels}, SliceLine("x", width // 2), stripe=4)
    return save_time_slices(result, folder)


def _report(folder: Path, panels: list[tuple[str, np.ndarray]], fps: float) -> Path:
    methods = {label: video for label, video in panels if label != "GT"}
    gt = next((video for label, video in panels if label == "GT"), None)
    title = "tami demo: backbone alone vs " + ("no-memory control vs " if "control" in methods else "") + "TAMI"
    return build_report(methods, folder, gt=gt, fps=fps, title=title)
