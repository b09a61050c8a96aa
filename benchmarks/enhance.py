"""End-to-end speed of ``tami enhance`` (decode, model, encode) and its memory over a long video.

Usage::

    python benchmarks/enhance.py                                  # bundled 'demo' model if present
    python benchmarks/enhance.py --model my_model.safetensors --sizes 960x512 --frames 5
    python benchmarks/enhance.py --skip-long --profile           # per-op times of one frame, fp32 vs bf16

Model: ``--model`` (a bundled name or a model file); by default the bundled ``demo`` model when it is installed,
otherwise the released Retinexformer with its TAMI preset and random weights (speed does not depend on the
weights). The output says which.

Speed: for every size a dark synthetic video of ``--frames`` frames is written first (not timed); then
:meth:`tami.enhance.Enhancer.enhance_video` turns it into an H.264 mp4 exactly as ``tami enhance`` does. Reported:
frames/s over the whole call (``end to end``: open, decode, model, encode, finish the file; the first frame includes
one-off kernel setup) and frames/s from the end of the first frame to the end of the last (``steady``). Precisions
are interleaved per repeat, so machine load affects them alike.

Memory: a fresh subprocess enhances a ``--long-frames``-frame video at ``--long-size`` and reads its resident set
size (``VmRSS``) after every frame; it compares the largest reading over frames 51-100 with the largest over the
last 50 frames (single readings jitter by one activation buffer, see :func:`long_run`); the bound is 5 %.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from tami.adapter import TAMI
from tami.backbones import create
from tami.data.video import open_video, open_writer
from tami.bundled import bundled_models, load_enhancement_model
from tami.enhance import EnhanceOptions, Enhancer


def _size(text: str) -> tuple[int, int]:
    w, h = text.lower().split("x")
    return int(w), int(h)


def _model(name: str | None) -> tuple[TAMI, str]:
    if name is not None:
        return load_enhancement_model(name), f"`{name}`"
    if "demo" in bundled_models():
        return load_enhancement_model("demo"), "bundled `demo` model"
    torch.manual_seed(0)
    model = TAMI.from_preset(create("retinexformer"))
    torch.nn.init.normal_(model.igfe.gamma, std=0.1)
    return model.eval(), "released Retinexformer + its TAMI preset, random weights (no bundled model installed)"


def _dark_video(path: Path, width: int, height: int, frames: int, fps: float = 25.0) -> Path:
    """A dark, slowly panning textured clip with exposure flicker."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = 0.5 + 0.25 * np.sin(xx / 23.0) * np.cos(yy / 17.0) + 0.15 * np.sin((xx + 2 * yy) / 61.0)
    tint = np.stack([np.ones_like(base), 0.9 + 0.1 * np.sin(yy / 80.0), 0.85 + 0.1 * np.cos(xx / 90.0)], -1)
    image = (base[..., None] * tint).astype(np.float32)
    rng = np.random.default_rng(0)
    with open_writer(path, fps=fps) as writer:
        for t in range(frames):
            frame = np.roll(image, 3 * t, axis=1) * (0.12 * rng.uniform(0.8, 1.2))
            writer.write(np.clip(frame + rng.normal(0, 0.01, frame.shape).astype(np.float32), 0, 1))
    return path


def _time_video(enhancer: Enhancer, source: Path, output: Path) -> dict[str, float]:
    stamps: list[float] = []
    start = time.perf_counter()
    stats = enhancer.enhance_video(source, output, on_frame=lambda _: stamps.append(time.perf_counter()))
    total = time.perf_counter() - start
    steady = (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 else float("nan")
    return {"frames": stats.frames, "seconds": total, "end_to_end_fps": stats.frames / total, "steady_fps": steady}


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            return next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


def long_run(model_name: str | None, width: int, height: int, frames: int, precision: str) -> dict[str, float]:
    """Enhance a ``frames``-long video; RSS around frame 100 and the last frame; frames and fps written.

    The resident set size is read after every frame. Besides the values right after frame 100 and the last frame,
    the maximum over the 50 frames up to each is kept: glibc keeps or returns a freed activation buffer (tens of
    MiB at 320x240) depending on the heap layout of the moment, so single readings jitter by that much in both
    directions while the envelope shows whether memory grows.
    """
    if frames < 100:
        raise SystemExit("--long-frames must be at least 100")
    model, _ = _model(model_name)
    enhancer = Enhancer(model, EnhanceOptions(device="cpu", precision=precision))
    rss: list[int] = []
    with tempfile.TemporaryDirectory() as tmp:
        source = _dark_video(Path(tmp) / "long.mp4", width, height, frames, fps=30.0)
        start = time.perf_counter()
        stats = enhancer.enhance_video(source, Path(tmp) / "long_tami.mp4", on_frame=lambda _: rss.append(_rss_kib()))
        seconds = time.perf_counter() - start
        written = open_video(Path(tmp) / "long_tami.mp4")
        count = sum(1 for _ in written)
    early, late = max(rss[50:100]) / 1024, max(rss[-50:]) / 1024
    return {"frames_in": stats.frames, "frames_out": count, "fps_out": written.info.fps or 0.0,
            "rss_100_mib": rss[99] / 1024, "rss_last_mib": rss[-1] / 1024, "envelope_100_mib": early,
            "envelope_last_mib": late, "growth_pct": 100.0 * (late - early) / early, "seconds": seconds}


def _profile(enhancer: Enhancer, width: int, height: int, rows: int) -> str:
    from torch.profiler import ProfilerActivity, profile

    frame = np.full((height, width, 3), 0.1, np.float32)
    for _ in range(enhancer.model.config.memory_frames + 1):  # memory full, kernels set up
        enhancer.step(frame)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        enhancer.step(frame)
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="bundled name or model file (default: see above)")
    parser.add_argument("--sizes", nargs="+", type=_size, default=[(640, 360), (960, 512)], metavar="WxH")
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16"])
    parser.add_argument("--frames", type=int, default=4, help="frames per timed video (default 4)")
    parser.add_argument("--repeats", type=int, default=1, help="timed videos per size and precision")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--long-size", type=_size, default=(320, 240), metavar="WxH")
    parser.add_argument("--long-frames", type=int, default=1000)
    parser.add_argument("--long-precision", default="fp32", choices=["fp32", "bf16"])
    parser.add_argument("--skip-long", action="store_true", help="skip the long-video memory run")
    parser.add_argument("--skip-speed", action="store_true", help="only the long-video memory run")
    parser.add_argument("--profile", action="store_true", help="per-op CPU times of one frame, each precision")
    parser.add_argument("--long-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.long_child:
        print(json.dumps(long_run(args.model, *args.long_size, args.long_frames, args.long_precision)))
        return

    model, described = _model(args.model)
    print(f"model: {described}")
    print(f"machine: {_cpu_name()}, {os.cpu_count()} logical cores, "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads), Python {platform.python_version()}, "
          f"load average at start {os.getloadavg()[0]:.1f}")
    if not args.skip_speed:
        print("\n| size | precision | frames | end to end frames/s | steady frames/s | load |")
        print("|---|---|---|---|---|---|")
        with tempfile.TemporaryDirectory() as tmp:
            for width, height in args.sizes:
                source = _dark_video(Path(tmp) / f"in_{width}x{height}.mp4", width, height, args.frames)
                enhancers = {p: Enhancer(model, EnhanceOptions(device="cpu", precision=p)) for p in args.precisions}
                results: dict[str, list[dict[str, float]]] = {p: [] for p in args.precisions}
                for _ in range(args.repeats):
                    for precision, enhancer in enhancers.items():
                        results[precision].append(_time_video(enhancer, source, Path(tmp) / f"out_{precision}.mp4"))
                for precision, runs in results.items():
                    e2e = max(r["end_to_end_fps"] for r in runs)
                    steady = max(r["steady_fps"] for r in runs)
                    print(f"| {width}x{height} | {precision} | {args.frames} | {e2e:.3f} | {steady:.3f} | "
                          f"{os.getloadavg()[0]:.1f} |", flush=True)
                if args.profile:
                    for precision, enhancer in enhancers.items():
                        print(f"\nper-op self CPU time, one frame at {width}x{height}, {precision}:")
                        print(_profile(enhancer, width, height, 14))
    if not args.skip_long:
        width, height = args.long_size
        command = [sys.executable, __file__, "--long-child", "--long-size", f"{width}x{height}",
                   "--long-frames", str(args.long_frames), "--long-precision", args.long_precision]
        if args.model:
            command += ["--model", args.model]
        if args.threads:
            command += ["--threads", str(args.threads)]
        result = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
        print(f"\nlong video: {result['frames_in']} frames {width}x{height} ({args.long_precision}) in "
              f"{result['seconds']:.0f} s; output {result['frames_out']} frames at {result['fps_out']:g} fps; "
              f"RSS max over frames 51-100 {result['envelope_100_mib']:.1f} MiB, over the last 50 frames "
              f"{result['envelope_last_mib']:.1f} MiB ({result['growth_pct']:+.2f} %; bound 5 %); single readings "
              f"after frame 100 {result['rss_100_mib']:.1f} MiB, after the last {result['rss_last_mib']:.1f} MiB")


if __name__ == "__main__":
    main()
