"""Can the adapter learn to use an informative prior at all? (validation only; not part of any protocol)

Fine-tunes a Tier A model (e.g. round 7's final weights) for a few hundred steps on Tier A training clips (v2,
target gain g in [0.8, 1.25], the training photographs) in one of two arms, and tracks on validation clips how much
the output follows the prior:

* ``memory``: the model as trained (frame 0 written from its ground truth, later frames from the output);
* ``oracle``: every memory read returns the current frame's ground-truth illumination (Rec. 709 luma on the
  working grid), a prior that carries g and the scene exactly.

If the oracle arm learns to follow its prior within a few hundred steps while the memory arm does not, the IGFE
and refiner can use a prior and what is missing is a memory that delivers one; if neither does, the path from the
prior to the output is the bottleneck. ``--shortcut`` tries a more direct path: a zero-initialised 1x1 convolution
from the log prior to the injection map, added beside the IGFE on frames that read a non-empty memory.

    python benchmarks/memory_runs/oracle_prior_finetune.py runs/probe_r7/export/model.safetensors oracle \\
        --photos /work/photo-pool --steps 300
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tami.adapter import TAMI
from tami.adapter.io import load_model
from tami.data.synthetic import load_sources, synthesize
from tami.metrics import psnr

LUMA = (0.2126, 0.7152, 0.0722)
SHIFT = 0.1


def luma_prior(gt: Tensor, grid: tuple[int, int]) -> Tensor:
    """``(B, 1, h, w)`` Rec. 709 luma of ``gt`` ``(B, 3, H, W)`` area-resized to ``grid``."""
    small = F.adaptive_avg_pool2d(gt, grid)
    return (small * small.new_tensor(LUMA).view(1, 3, 1, 1)).sum(1, keepdim=True).clamp(0, 1)


class PriorShortcut(nn.Module):
    """``z + IGFE(...) + m * conv1x1(ln(prior + 1e-3))``, the convolution zero at first (``m``: memory non-empty)."""

    def __init__(self, igfe: nn.Module, channels: int) -> None:
        super().__init__()
        self.igfe = igfe
        self.conv = nn.Conv2d(1, channels, 1)
        nn.init.zeros_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)

    def forward(self, z: Tensor, cue: Tensor, prior: Tensor) -> Tensor:
        read = (prior.flatten(1).amax(1) > 0).to(z.dtype).view(-1, 1, 1, 1)
        log_prior = torch.log(F.interpolate(prior, size=z.shape[-2:], mode="bilinear") + 1e-3)
        return self.igfe(z, cue, prior) + read * self.conv(log_prior)


def run_clip(model: TAMI, lq: Tensor, gt: Tensor, arm: str, shift: float = 0.0, empty: bool = False) -> Tensor:
    """Outputs ``(T, 3, H, W)`` of one clip ``(T, 3, H, W)``; ``shift`` raises every prior, ``empty`` zeroes it."""
    state = model.init_state(1)
    memory = state.memory
    read = memory.read
    current: dict[str, Tensor] = {}

    def patched(key: Tensor, *args, **kwargs) -> tuple[Tensor, Tensor]:
        f_hp, prior = read(key, *args, **kwargs)
        if arm == "oracle":
            prior = luma_prior(current["gt"], tuple(key.shape[-2:]))
        if empty:
            prior = torch.zeros_like(prior)
        return f_hp, (prior + shift).clamp(0, 1)

    memory.read = patched
    outs = []
    for t in range(lq.shape[0]):
        current["gt"] = gt[t : t + 1]
        out, state, _ = model.step(lq[t : t + 1], state, gt=gt[t : t + 1] if t == 0 else None)
        outs.append(out[0])
    return torch.stack(outs)


def to_tensor(video: np.ndarray) -> Tensor:
    """``(T, H, W, 3)`` float frames as a ``(T, 3, H, W)`` tensor."""
    return torch.from_numpy(np.ascontiguousarray(video)).permute(0, 3, 1, 2).float()


def clips(photos: Path, count: int, seed: int, size: int, frames: int) -> list[tuple[Tensor, Tensor]]:
    """``count`` Tier A-style clips ``(lq, gt)`` of ``(T, 3, H, W)`` from the photographs in ``photos``."""
    images = load_sources(photos)
    out = []
    for i in range(count):
        _, image = images[i % len(images)]
        clip = synthesize(image, frames=frames, size=(size, size), seed=seed + i, preset="v2",
                          target_gain=(0.8, 1.25))
        out.append((to_tensor(clip.lq), to_tensor(clip.gt)))
    return out


@torch.no_grad()
def evaluate(model: TAMI, arm: str, val: list[tuple[Tensor, Tensor]]) -> str:
    """PSNR with the arm's prior and with an empty one (frames 1-), and the output's mean change per unit shift."""
    model.eval()
    with_prior, without, per_unit = [], [], []
    for lq, gt in val:
        out = run_clip(model, lq, gt, arm)
        blind = run_clip(model, lq, gt, arm, empty=True)
        shifted = run_clip(model, lq, gt, arm, shift=SHIFT)
        with_prior.append(psnr(out[1:].clamp(0, 1).numpy(), gt[1:].numpy()))
        without.append(psnr(blind[1:].clamp(0, 1).numpy(), gt[1:].numpy()))
        per_unit.append(float((shifted[1:] - out[1:]).mean()) / SHIFT)
    model.train()
    return (f"PSNR with prior {np.mean(with_prior):.2f}, empty prior {np.mean(without):.2f} dB, "
            f"output change per unit shift {np.mean(per_unit):+.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path)
    parser.add_argument("arm", choices=("memory", "oracle"))
    parser.add_argument("--photos", type=Path, required=True, help="the photo pool (train/ and val/)")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--every", type=int, default=100)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--shortcut", action="store_true", help="add the direct log-prior path (PriorShortcut)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = load_model(args.model)
    model.backbone.requires_grad_(False)
    params = model.adapter_parameters()
    if args.shortcut:
        model.igfe = PriorShortcut(model.igfe, model.backbone.inject_channels)
        params += list(model.igfe.conv.parameters())
    model.train()
    optimizer = torch.optim.Adam(params, lr=args.lr)
    train = clips(args.photos / "train", 256, 70_000, 128, 8)
    val = clips(args.photos / "val", 4, 80_000, 128, 16)
    rng = np.random.default_rng(0)
    start = time.time()
    print(f"step 0: {evaluate(model, args.arm, val)}", flush=True)
    for step in range(1, args.steps + 1):
        lq, gt = train[rng.integers(len(train))]
        out = run_clip(model, lq, gt, args.arm)
        loss = torch.sqrt((out - gt) ** 2 + 1e-6).mean()
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        if step % args.every == 0:
            print(f"step {step} ({time.time() - start:.0f} s): {evaluate(model, args.arm, val)}", flush=True)


if __name__ == "__main__":
    main()
