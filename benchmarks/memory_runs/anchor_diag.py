"""Validation-only diagnostic of a brightness-anchor model (not part of any protocol).

On Tier A's clips of the validation photographs, per frame: the global brightness error
ln L(out_t) - ln L(gt_t) (L the mean linear-light luminance) of the memory arm (frame 0 from the ground truth) and
of the stateless arm, each arm's PSNR, and the anchor's spatial mean and spread of its log gain and of d.

    python benchmarks/memory_runs/anchor_diag.py MODEL.safetensors PHOTOS/val [CLIP_INDEX ...]
"""
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from memory import _chw, linear_luminance, make_clips, run_arm  # noqa: E402
from tami.adapter.io import load_model  # noqa: E402
from tami.metrics import psnr  # noqa: E402


def main(weights: str, photos: str, picks: list[int]) -> None:
    torch.set_num_threads(1)
    model = load_model(weights).eval()
    seen: list[tuple[float, float, float, float]] = []
    anchor = model.anchor

    def hook(module, inputs, output):
        out, prior = inputs
        d = module.log_ratio(out, prior)
        gain = torch.log(output.clamp_min(1e-6)).mean(1) - torch.log(out.clamp_min(1e-6)).mean(1)
        seen.append((float(d.mean()), float(d.std()), float(gain.mean()), float(gain.std())))

    anchor.register_forward_hook(hook)
    clips = make_clips("tier_a", Path(photos))
    for i in picks:
        clip = clips[i]
        seen.clear()
        memory = run_arm(model, clip["lq"], "tami", gt0=clip["gt"][0])
        trace = list(seen)
        stateless = run_arm(model, clip["lq"], "stateless")
        err = {k: np.log(linear_luminance(v)) - np.log(linear_luminance(clip["gt"])) for k, v in
               (("memory", memory), ("stateless", stateless))}
        print(f"{clip['name']} ({clip['stratum']}) g {clip['gain']:.3f}  ln g {np.log(clip['gain']):+.3f}")
        print(" t  err_mem err_sl  psnr_mem psnr_sl   d_mean d_std  gain_mean gain_std")
        for t in range(len(memory)):
            a = trace[t - 1] if 1 <= t <= len(trace) else (np.nan,) * 4
            print(f"{t:2d} {err['memory'][t]:+.3f} {err['stateless'][t]:+.3f}  "
                  f"{psnr(_chw(memory[t:t+1]), _chw(clip['gt'][t:t+1])):6.2f} "
                  f"{psnr(_chw(stateless[t:t+1]), _chw(clip['gt'][t:t+1])):6.2f}   "
                  f"{a[0]:+.3f} {a[1]:.3f}  {a[2]:+.3f} {a[3]:.3f}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], [int(i) for i in sys.argv[3:]] or [0, 1, 2, 3])
