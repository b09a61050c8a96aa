"""How much flicker a temporal prior of a given spatial scale could remove at best, on the held-out clips.

An oracle stabiliser on the bundled backbone's output: each frame is split into a low-pass band (Gaussian of
``sigma`` px; ``global`` = the frame's mean colour) and the rest, and the band is blended recursively with the
previous stabilised band warped by the *ground-truth* optical flow, ``L'_t = (1 - h) L_t + h warp(L'_{t-1})``.
No model can align better than the GT flow, so the E_warp/MABD reductions printed here bound what a memory
working on cells of about ``2 sigma`` pixels can achieve on these clips (docs/MODEL_CARD.md uses them).

    python benchmarks/temporal_ceiling.py                          # sigma 4, 16 and global; history 0.5
    python benchmarks/temporal_ceiling.py --sigma 2 8 --history 0.8
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np

from tami.demo import enhance_frames, heldout_clip, score
from tami.bundled import load_enhancement_model
from tami.enhance import EnhanceOptions, Enhancer
from tami.metrics import FlowCache
from tami.metrics.flow import DISFlow, warp


def low_pass(frame: np.ndarray, sigma: float | None) -> np.ndarray:
    """Gaussian low-pass of an ``(H, W, 3)`` frame; ``None``: its mean colour everywhere."""
    if sigma is None:
        return np.broadcast_to(frame.mean(axis=(0, 1)), frame.shape).astype(np.float32)
    return cv2.GaussianBlur(frame, (0, 0), sigma)


def stabilise(video: np.ndarray, flows: np.ndarray, sigma: float | None, history: float) -> np.ndarray:
    """Blend the low-pass band of each frame with the flow-warped stabilised band of the previous one."""
    out, previous = [], None
    for t, frame in enumerate(video):
        band = low_pass(frame, sigma)
        detail = frame - band
        if previous is not None:
            band = (1 - history) * band + history * warp(previous, flows[t - 1])
        previous = band
        out.append(np.clip(band + detail, 0.0, 1.0))
    return np.stack(out)


def _name(sigma: float | None) -> str:
    return "global mean" if sigma is None else f"sigma {sigma:g} px"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="bundled name or model file (default: bundled)")
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--sigma", type=float, nargs="*", default=[4.0, 16.0], help="band scales in px")
    parser.add_argument("--history", type=float, default=0.5, help="weight of the warped history (0-1)")
    args = parser.parse_args()

    backbone = Enhancer(load_enhancement_model(args.model), EnhanceOptions(device="cpu", backbone_only=True))
    scales: list[float | None] = [*args.sigma, None]
    rows: dict[str, list[dict[str, float]]] = {"backbone": [], **{_name(s): [] for s in scales}}
    for i in range(args.clips):
        _, lq, gt = heldout_clip(i)
        cache = FlowCache()
        flows = cache.get(np.rint(gt * 255).astype(np.uint8), DISFlow()).flows
        out = enhance_frames(backbone, list(lq))
        rows["backbone"].append(score(out, gt, cache=cache))
        for s in scales:
            rows[_name(s)].append(score(stabilise(out, flows, s, args.history), gt, cache=cache))
    base = {m: np.mean([r[m] for r in rows["backbone"]]) for m in ("ewarp", "mabd", "psnr")}
    print(f"history weight {args.history}, {args.clips} held-out clips, GT flow")
    print("| band | E_warp change | MABD change | PSNR change (dB) |\n|---|---:|---:|---:|")
    for name, values in rows.items():
        mean = {m: np.mean([r[m] for r in values]) for m in ("ewarp", "mabd", "psnr")}
        print(f"| {name} | {mean['ewarp'] / base['ewarp'] - 1:+.1%} | {mean['mabd'] / base['mabd'] - 1:+.1%} "
              f"| {mean['psnr'] - base['psnr']:+.2f} |")


if __name__ == "__main__":
    main()
