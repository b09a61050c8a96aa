"""How much of a brightness change can the adapter's injection point carry? (validation clips; no protocol)

TAMI changes one feature map of the frozen backbone, the one ``Backbone.decode``'s ``adapt`` hands over (the
bottleneck input for Retinexformer, the HV-branch feature for HVI-CIDNet). Tier A asks the adapter to make a
frame's output ``g`` times brighter than the backbone makes it. For one frame of each validation clip and each
gain ``g`` this prints, in units of ``ln g`` (1: all of the gain reaches the output's mean linear luminance):

* ``swap``: the injection map of the same frame made ``g`` times brighter at the sensor, put in place of the
  frame's own (what a memory that copied a brighter frame's features would give);
* ``reachable``: the injection map optimised by gradient descent (Adam, ``--steps``) to make the output equal to
  the backbone's own output times ``g`` in linear light: a bound for *any* adapter that acts only there.

    python benchmarks/memory_runs/bottleneck_leverage.py runs/bundled_image_retinexformer/export/backbone.safetensors \\
        runs/bundled_image_hvi_cidnet/export/backbone.safetensors --photos /work/photo-pool/val
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from tami import backbones
from tami.backbones.base import Backbone
from tami.data.synthetic import linear_to_srgb, load_sources, srgb_to_linear, synthesize

LUMA = (0.2126, 0.7152, 0.0722)


def to_linear(x: Tensor) -> Tensor:
    """sRGB in [0, 1] to linear light (differentiable)."""
    x = x.clamp(0, 1)
    return torch.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def log_luminance(frame: Tensor) -> float:
    """Log of the mean linear-light Rec. 709 luminance of a ``(1, 3, H, W)`` frame."""
    lin = to_linear(frame)
    return float(torch.log((lin * lin.new_tensor(LUMA).view(1, 3, 1, 1)).sum(1).mean() + 1e-6))


def reachable(net: Backbone, lq: Tensor, gain: float, steps: int) -> float:
    """Log-luminance change (per ``ln gain``) of the best injection map found for the target ``gain * output``."""
    with torch.no_grad():
        enc = net.encode(lq)
        out = net.decode(enc)
        target = to_linear(out) * gain
    z = enc.key.detach().clone().requires_grad_(True)
    optimizer = torch.optim.Adam([z], lr=0.05 * float(enc.key.std()))
    for _ in range(steps):
        pred = net.decode(enc, adapt=lambda _key: z)
        loss = (to_linear(pred) - target).abs().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        return (log_luminance(net.decode(enc, adapt=lambda _key: z)) - log_luminance(out)) / np.log(gain)


@torch.no_grad()
def swap(net: Backbone, lq: Tensor, brighter: Tensor, gain: float) -> float:
    """Log-luminance change (per ``ln gain``) from the injection map of the brighter input alone."""
    enc, enc_g = net.encode(lq), net.encode(brighter)
    base = log_luminance(net.decode(enc))
    return (log_luminance(net.decode(enc, adapt=lambda _key: enc_g.key)) - base) / np.log(gain)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("backbones", type=Path, nargs="+", help="backbone.safetensors files")
    parser.add_argument("--photos", type=Path, required=True, help="a folder of photographs (the pool's val/)")
    parser.add_argument("--clips", type=int, default=3)
    parser.add_argument("--gains", type=float, nargs="+", default=[0.8, 1.25])
    parser.add_argument("--steps", type=int, default=150)
    args = parser.parse_args()
    torch.set_num_threads(1)
    images = load_sources(args.photos)
    for path in args.backbones:
        net = backbones.load(path).eval()
        net.requires_grad_(False)
        swaps, reached = [], []
        for i in range(args.clips):
            _, image = images[i % len(images)]
            clip = synthesize(image, frames=1, size=(256, 256), seed=60_000 + i, preset="v2")
            lq = torch.from_numpy(np.ascontiguousarray(clip.lq)).permute(0, 3, 1, 2).float()
            for gain in args.gains:
                bright = linear_to_srgb(np.clip(srgb_to_linear(clip.lq) * gain, 0, 1)).astype(np.float32)
                brighter = torch.from_numpy(np.ascontiguousarray(bright)).permute(0, 3, 1, 2)
                swaps.append(swap(net, lq, brighter, gain))
                reached.append(reachable(net, lq, gain, args.steps))
        print(f"{net.arch}: swap {np.mean(swaps):+.2f} (range {min(swaps):+.2f} to {max(swaps):+.2f}), reachable "
              f"{np.mean(reached):+.2f} (range {min(reached):+.2f} to {max(reached):+.2f}) of ln g, "
              f"{len(reached)} frames x gains", flush=True)


if __name__ == "__main__":
    main()
