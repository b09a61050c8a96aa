"""Speed of the evaluation metrics on CPU at 960x512, and accuracy vs speed of the DIS flow presets.

Usage: python benchmarks/metrics.py [--frames 30] [--repeats 3]

Prints Markdown for benchmarks/RESULTS.md:
1. DIS presets: end-point error against a known smooth flow on a natural image, E_warp of the GT against itself
   with the estimated flow (0 would be perfect; the true flow gives the interpolation floor), ms per pair.
2. Milliseconds per 960x512 frame (pair) for each metric (E_warp with cached GT flow; GT flow estimation separately).
3. The full metric set on a 30-frame 960x512 video: cold (GT flow estimated) and with GT flows cached.
Timings are the minimum over ``--repeats`` runs.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from typing import Callable

import cv2
import numpy as np
import torch

from tami.metrics import FlowCache, Reference, create_flow, create_metric
from tami.metrics.flow import DIS_PRESETS, PairFlows, pair_flows, sample_maps, warp
from tami.metrics.temporal import ewarp_pairs_u8

H, W = 512, 960


def natural_canvas(height: int, width: int) -> np.ndarray:
    """A textured natural image (skimage photographs tiled and resized), (H, W, 3) float32 in [0, 1]."""
    from skimage import data

    tiles = [cv2.resize(getattr(data, n)(), (512, 512)) for n in ("astronaut", "coffee", "chelsea", "rocket")]
    canvas = np.concatenate([np.concatenate(tiles[:2], 1), np.concatenate(tiles[2:], 1)], 0)
    return cv2.resize(canvas, (width, height), interpolation=cv2.INTER_AREA).astype(np.float32) / 255


def smooth_flow(seed: int) -> np.ndarray:
    """A smooth flow field with translation, rotation-like shear and waves, (H, W, 2) float32, |w| <= ~8 px."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    a = rng.uniform(-1, 1, 6)
    fx = 3 * a[0] + 2 * np.sin(yy / 70 + a[1]) + 0.004 * (yy - H / 2) * a[2]
    fy = 2 * a[3] + 1.5 * np.cos(xx / 90 + a[4]) - 0.004 * (xx - W / 2) * a[5]
    return np.stack([fx, fy], -1).astype(np.float32)


def synthetic_video(frames: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """GT (T, H, W, 3) uint8 moved by smooth known flows, and its backward flows (T-1, H, W, 2)."""
    canvas = natural_canvas(H + 64, W + 64)
    frame = canvas[32:32 + H, 32:32 + W]
    gt, flows = [frame], []
    for t in range(1, frames):
        flow = smooth_flow(seed + t)  # frame t(p) = frame t-1(p + flow(p)): flow is exactly t -> t-1
        frame = warp(frame, flow)
        gt.append(frame)
        flows.append(flow)
    video = np.stack([np.rint(np.clip(f, 0, 1) * 255).astype(np.uint8) for f in gt])
    return video, np.stack(flows)


def best_time(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def dis_presets(repeats: int) -> list[str]:
    video, true = synthetic_video(6, seed=10)
    exact = PairFlows(true, np.stack([sample_maps(f)[2] for f in true]))
    floor = float(np.mean(ewarp_pairs_u8(video, exact)))
    lines = ["| DIS preset | EPE mean (px) | EPE median (px) | E_warp(GT, GT) ×10³ | ms per flow |",
             "|---|---:|---:|---:|---:|"]
    for preset in DIS_PRESETS:
        est = create_flow("dis", preset=preset)
        estimated = est(video[1:], video[:-1])
        epe = np.linalg.norm(estimated - true, axis=-1)[:, 16:-16, 16:-16]
        seconds = best_time(lambda: est(video[1:2], video[:1]), repeats + 2)
        flows = pair_flows(video, est)
        err = float(np.nanmean(ewarp_pairs_u8(video, flows)))
        lines.append(f"| {preset} | {epe.mean():.3f} | {np.median(epe):.3f} | {err * 1e3:.4f} | "
                     f"{seconds * 1e3:.1f} |")
    lines.append(f"| true flow (interpolation floor) | 0 | 0 | {floor * 1e3:.4f} | - |")
    return lines


def per_metric(repeats: int, frames: int = 4) -> list[str]:
    video, _ = synthetic_video(frames, seed=20)
    rng = np.random.default_rng(0)
    pred = np.clip(video * 0.9 + rng.normal(0, 3, video.shape), 0, 255).astype(np.uint8)
    ref = Reference(video)
    lines = ["| metric | ms per 960×512 frame (PSNR, SSIM) or frame pair (MABD, E_warp) |", "|---|---:|"]
    ewarp = create_metric("ewarp")
    ewarp.values(pred, ref)  # GT flow now cached in ref
    for name in ("psnr", "ssim", "mabd", "ewarp"):
        m = ewarp if name == "ewarp" else create_metric(name)
        count = frames - 1 if m.info.temporal else frames
        label = m.describe() + (", GT flow cached" if name == "ewarp" else "")
        lines.append(f"| {label} | {best_time(lambda: m.values(pred, ref), repeats) / count * 1e3:.2f} |")
    est = ewarp.estimator
    seconds = best_time(lambda: pair_flows(video, est), repeats) / (frames - 1)
    lines.append(f"| GT flow for E_warp (both directions + mask), DIS {est.settings()['preset']} | "
                 f"{seconds * 1e3:.1f} |")
    return lines


def full_set(frames: int, repeats: int) -> list[str]:
    video, _ = synthetic_video(frames, seed=30)
    rng = np.random.default_rng(1)
    gains = rng.uniform(0.85, 1.0, frames)[:, None, None, None]
    pred = np.clip(video * gains + rng.normal(0, 3, video.shape), 0, 255).astype(np.uint8)
    metrics = [create_metric(n) for n in ("psnr", "ssim", "ewarp", "mabd")]

    def run(ref: Reference) -> None:
        for m in metrics:
            m.score(m.values(pred, ref))

    cold = best_time(lambda: run(Reference(video, cache=FlowCache())), repeats)
    warm_ref = Reference(video, cache=FlowCache())
    run(warm_ref)
    cached = best_time(lambda: run(warm_ref), repeats)
    return [f"| full metric set, {frames}-frame 960×512 video | seconds |", "|---|---:|",
            f"| cold (GT flow estimated: DIS medium, both directions) | {cold:.2f} |",
            f"| GT flows cached (second method on the same GT) | {cached:.2f} |"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"torch threads {torch.get_num_threads()}, OpenCV {cv2.__version__} ({cv2.getNumThreads()} threads)")
    for block in (dis_presets(args.repeats), per_metric(args.repeats), full_set(args.frames, args.repeats)):
        print()
        print("\n".join(block))


if __name__ == "__main__":
    main()
