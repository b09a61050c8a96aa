"""Throughput of tami.data: video decode/encode, clip loading from npy vs png frames, synthetic clip generation.

Usage:  python benchmarks/data_io.py [--frames 60]

Prints one line per measurement (frames/s or ms per clip) and the peak RSS growth while streaming a 1080p video.
Everything is generated in a temporary folder; nothing is downloaded.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from tami.data.datasets import build_dataset
from tami.data.synthetic import builtin_images, synthesize
from tami.data.video import open_video, open_writer


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def _frames(count: int, height: int, width: int) -> list[np.ndarray]:
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    return [np.clip(0.5 + 0.3 * np.sin((xx + 4 * t) / 23.0)[..., None] * np.cos(yy / 17.0)[..., None]
                    * np.array([1.0, 0.9, 0.8], np.float32), 0, 1) for t in range(count)]


def bench_video(tmp: Path, frames: int) -> None:
    for height, width in ((360, 640), (1080, 1920)):
        data = _frames(frames, height, width)
        path = tmp / f"v{height}.mp4"
        start = time.perf_counter()
        with open_writer(path, fps=30, crf=18) as writer:
            for frame in data:
                writer.write(frame)
        enc = frames / (time.perf_counter() - start)
        base, peak = _rss(), 0
        start = time.perf_counter()
        for _ in open_video(path):
            peak = max(peak, _rss() - base)
        dec = frames / (time.perf_counter() - start)
        print(f"video {width}x{height}: encode (H.264 crf 18) {enc:.1f} fps, decode {dec:.1f} fps, "
              f"RSS growth while streaming {peak / 2**20:.1f} MB")


def bench_clips(tmp: Path) -> None:
    height, width = 512, 960
    rng = np.random.default_rng(0)
    for ext in (".npy", ".png"):
        root = tmp / f"clips{ext}"
        for side in ("input", "GT"):
            folder = root / side / "v0"
            folder.mkdir(parents=True)
            for i in range(10):
                frame = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
                if ext == ".npy":
                    np.save(folder / f"{i:04d}.npy", frame)
                else:
                    cv2.imwrite(str(folder / f"{i:04d}.png"), frame)
        for crop in (256, None):
            ds = build_dataset("generic", root, clip_len=5, crop=crop, seed=0)
            start = time.perf_counter()
            for start_frame in range(6):
                ds[(0, start_frame)]
            ms = (time.perf_counter() - start) / 6 * 1000
            print(f"clip 5x{width}x{height} from {ext[1:]}, crop {crop}: {ms:.1f} ms per clip (input + GT)")


def bench_synth() -> None:
    image = dict(builtin_images("train"))["astronaut"]
    for size in ((128, 128), (256, 256)):
        start = time.perf_counter()
        synthesize(image, frames=16, size=size, seed=0, flicker=0.05, color_cast=0.05)
        ms = (time.perf_counter() - start) * 1000
        print(f"synthesize 16 frames {size[1]}x{size[0]}: {ms:.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=60, help="frames per benchmark video (default: 60)")
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {cv2.getNumberOfCPUs()} CPUs, "
          f"opencv {cv2.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        bench_video(Path(tmp), args.frames)
        bench_clips(Path(tmp))
    bench_synth()


if __name__ == "__main__":
    main()
