"""Where the bundled backbone's flicker comes from, and how much of it the adapter's injection point can reach.

TAMI changes one feature map of the frozen backbone: the input of its bottleneck (``Backbone.decode``'s ``adapt``,
the injection point the reference code uses). This script runs oracles on the held-out clips of
``benchmarks/heldout.py`` and prints the E_warp/MABD/PSNR change of each against the bundled backbone alone:

* **Budget** - the backbone on a better input, with everything else (path, exposure, colour cast, noise draws)
  unchanged: without the per-frame exposure flicker; without the sensor noise; without both. This splits the
  backbone's temporal error into what flicker and what noise cause.
* **Injection point** - the backbone on the real input, with only the bottleneck replaced: by the bottleneck of the
  flicker-free input (perfect flicker removal where TAMI acts); of the noise- and flicker-free input; or by a
  recursive average of the bottleneck with its predecessor warped by the *ground-truth* flow,
  ``z'_t = (1 - h) z_t + h warp(z'_{t-1})`` (perfect temporal fusion where TAMI acts).
* **Everywhere** - the same temporal fusion applied to every feature the encoder hands to the decoder (skips and
  illumination features), without and with the global residual ``img * illu_map + img`` that Retinexformer adds
  to its output. This shows where the temporal error actually travels.

    python benchmarks/injection_ceiling.py                 # 8 clips, history 0.5
    python benchmarks/injection_ceiling.py --history 0.8
    python benchmarks/injection_ceiling.py --flicker 0.2   # the supplementary stronger-flicker clips

The results are in benchmarks/RESULTS.md and docs/MODEL_CARD.md.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from tami.backbones.base import Backbone, Encoded
from tami.data.synthetic import synth_options
from tami.demo import DEMO_DEGRADATION, heldout_clip, score
from tami.bundled import load_enhancement_model
from tami.metrics import FlowCache
from tami.metrics.flow import DISFlow

# Degradations that remove one effect and keep the rest of the clip: a shot-noise term of 1e-12 (the read term
# follows it, as in Brooks et al.) leaves noise far below one 8-bit step, with the camera path, exposures and colour
# cast drawn before it unchanged; a flicker of 1e-9 still draws the per-frame jitter, so every later draw (colour
# cast, noise) is the same as in the real clip.
NO_NOISE = {"shot_noise": (1e-12, 1e-12)}
NO_FLICKER = 1e-9


def to_tensor(video: np.ndarray) -> Tensor:
    return torch.from_numpy(np.ascontiguousarray(video.transpose(0, 3, 1, 2)))


def to_video(frames: Tensor) -> np.ndarray:
    return frames.clamp(0, 1).permute(0, 2, 3, 1).numpy()


def warp_features(features: Tensor, flow: np.ndarray) -> Tensor:
    """Backward-warp ``(1, C, h, w)`` features with a full-resolution ``(H, W, 2)`` pixel flow (bilinear)."""
    h, w = features.shape[-2:]
    scale = torch.tensor([w / flow.shape[1], h / flow.shape[0]]).view(1, 2, 1, 1)
    full = torch.from_numpy(flow).permute(2, 0, 1)[None]
    small = F.interpolate(full, size=(h, w), mode="bilinear", align_corners=False) * scale
    rows, cols = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32),
                                indexing="ij")
    grid = torch.stack([(cols + small[0, 0]) / max(w - 1, 1), (rows + small[0, 1]) / max(h - 1, 1)], -1) * 2 - 1
    return F.grid_sample(features, grid[None], mode="bilinear", padding_mode="border", align_corners=True)


def fuse(features: Tensor, flows: np.ndarray, history: float) -> Tensor:
    """Recursive GT-flow-aligned average over the frames (dim 0) of ``(T, C, h, w)`` features."""
    out: list[Tensor] = []
    for t in range(features.shape[0]):
        current = features[t:t + 1]
        if out:
            current = (1 - history) * current + history * warp_features(out[-1], flows[t - 1])
        out.append(current)
    return torch.cat(out)


def fuse_retinexformer(enc: Encoded, flows: np.ndarray, history: float, *, residual: bool) -> Encoded:
    """Fuse the bottleneck and every skip of a Retinexformer encoding; the global residual only if ``residual``."""
    image, encoder_features, illumination = enc.skips
    return Encoded(
        key=fuse(enc.key, flows, history),
        skips=(fuse(image, flows, history) if residual else image,
               tuple(fuse(f, flows, history) for f in encoder_features),
               tuple(fuse(f, flows, history) for f in illumination)),
    )


def oracle_videos(backbone: Backbone, index: int, flicker: float, history: float,
                  cache: FlowCache) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Every oracle's output for held-out clip ``index``, and the clip's ground truth (its flow lands in ``cache``)."""
    _, lq, gt = heldout_clip(index, flicker=flicker)
    variants = {"no flicker": (NO_FLICKER, {}), "no noise": (flicker, NO_NOISE), "neither": (NO_FLICKER, NO_NOISE)}
    videos = {name: heldout_clip(index, flicker=f, **extra)[1] for name, (f, extra) in variants.items()}
    flows = cache.get(np.rint(gt * 255).astype(np.uint8), DISFlow()).flows
    enc = backbone.encode(to_tensor(lq))
    encs = {name: backbone.encode(to_tensor(video)) for name, video in videos.items()}

    def run(e: Encoded, adapt: Callable[[Tensor], Tensor] | None = None) -> np.ndarray:
        return to_video(backbone.decode(e, adapt=adapt))

    fused_key = fuse(enc.key, flows, history)
    out = {
        "backbone": run(enc),
        "budget: input without flicker": run(encs["no flicker"]),
        "budget: input without noise": run(encs["no noise"]),
        "budget: input without flicker and noise": run(encs["neither"]),
        "injection point: bottleneck of the flicker-free input": run(enc, lambda _: encs["no flicker"].key),
        "injection point: bottleneck of the flicker- and noise-free input": run(enc, lambda _: encs["neither"].key),
        f"injection point: GT-flow fusion of the bottleneck, history {history:g}": run(enc, lambda _: fused_key),
    }
    if backbone.arch == "retinexformer":
        out["everywhere: GT-flow fusion of the bottleneck and all skips"] = run(
            fuse_retinexformer(enc, flows, history, residual=False))
        out["everywhere: ... and of the global residual"] = run(fuse_retinexformer(enc, flows, history, residual=True))
    return out, gt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="bundled name or model file (default: bundled)")
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--flicker", type=float, default=synth_options(**DEMO_DEGRADATION).flicker,
                        help="exposure flicker of the clips (default: the recipe's)")
    parser.add_argument("--history", type=float, default=0.5, help="weight of the warped history (0-1)")
    args = parser.parse_args()

    torch.set_grad_enabled(False)
    backbone = load_enhancement_model(args.model).backbone.eval()
    rows: dict[str, list[dict[str, float]]] = {}
    for i in range(args.clips):
        cache = FlowCache()
        videos, gt = oracle_videos(backbone, i, args.flicker, args.history, cache)
        for name, video in videos.items():
            rows.setdefault(name, []).append(score(video, gt, cache=cache))
        print(f"clip {i + 1}/{args.clips}", flush=True)
    metrics = ("ewarp", "mabd", "psnr")
    base = {m: np.mean([r[m] for r in rows["backbone"]]) for m in metrics}
    print(f"{args.clips} held-out clips (flicker {args.flicker:g}), {backbone.arch} backbone; changes against the "
          f"backbone alone (E_warp {base['ewarp'] * 1e3:.3f}e-3, MABD {base['mabd'] * 1e3:.3f}e-3, "
          f"PSNR {base['psnr']:.2f} dB)")
    print("| oracle | E_warp | MABD | PSNR (dB) |\n|---|---:|---:|---:|")
    for name, values in list(rows.items())[1:]:
        mean = {m: np.mean([r[m] for r in values]) for m in metrics}
        print(f"| {name} | {mean['ewarp'] / base['ewarp'] - 1:+.1%} | {mean['mabd'] / base['mabd'] - 1:+.1%} "
              f"| {mean['psnr'] - base['psnr']:+.2f} |")


if __name__ == "__main__":
    main()
