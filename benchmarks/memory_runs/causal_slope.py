"""Causal gain slope of a Tier A model, on validation clips only (a diagnostic, not part of the protocol).

Holds each clip's input fixed and scales only the ground truth written into memory at frame 0 by g in
{0.8, 1, 1.25}; prints per clip the slope of the outputs' mean log luminance (frames 1-7) on log g and the mean
retrieved prior at each g. A model that carries the gain has slope 1; the prior's own response shows how much of
the gain the illumination encoder passes on.

    python benchmarks/memory_runs/causal_slope.py benchmarks/memory_runs/probe_r4_pin/export/model.safetensors /work/photo-pool/val
"""
import sys
from pathlib import Path

import numpy as np
import torch
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from memory import make_clips, _tensor, linear_luminance
from tami.adapter.io import load_model


def main(model_path: str, photos: str) -> None:
    torch.set_num_threads(1)
    model = load_model(model_path).eval()
    clips = make_clips("tier_a", Path(photos))[:6]
    gains = [0.8, 1.0, 1.25]
    slopes = []
    with torch.inference_mode():
        for clip in clips:
            ys, ps = [], []
            for g in gains:
                state = model.init_state(1)
                gt0 = np.clip(clip["clean"][0] * g, 0, 1)
                outs = []
                for t in range(8):
                    out, state, aux = model.step(_tensor(clip["lq"][t]), state, gt=_tensor(gt0) if t == 0 else None)
                    outs.append(out[0].clamp(0, 1).permute(1, 2, 0).numpy())
                ys.append(np.log(linear_luminance(np.stack(outs[1:]))).mean())
                ps.append(float(aux.prior.mean()))
            slopes.append(np.polyfit(np.log(gains), ys, 1)[0])
            print(clip["name"], "slope", round(slopes[-1], 3), "prior mean at g", [round(p, 4) for p in ps], flush=True)
    print("mean causal slope", np.mean(slopes))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
