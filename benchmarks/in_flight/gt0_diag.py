"""Validation-only diagnostic of a stage-video run's latest EMA weights (not part of any protocol).

Does the model score better when frame 0 is written into memory from the ground truth (as in training, with
``teacher_first: 1``) than from its own output (as at inference)? Prints PSNR on frames 1-15 of six v2 clips of
the validation photographs for the backbone alone, stateless, memory from the output and memory from the ground truth.

    python benchmarks/in_flight/gt0_diag.py runs/bundled_video_tami
"""
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from memory import _chw, run_arm  # noqa: E402
from tami.adapter.io import load_model  # noqa: E402
from tami.data.synthetic import load_sources, synthesize  # noqa: E402
from tami.metrics import psnr  # noqa: E402

STRATA = ("static", "pan", "content")


def main(run: str, photos: str = "/work/photo-pool/val") -> None:
    torch.set_num_threads(1)
    model = load_model(f"{run}/export/best/model.safetensors")  # the architecture; the weights come next
    checkpoint = torch.load(f"{run}/checkpoints/last.pt", weights_only=True, map_location="cpu")
    model.load_state_dict(checkpoint["ema"]["shadow"], strict=False)  # the EMA holds the adapter only
    model.eval()
    print("step", checkpoint["step"])
    images = load_sources(photos)
    rows = []
    for i in range(6):
        name, image = images[i % len(images)]
        clip = synthesize(image, frames=16, size=(128, 128), seed=50_000 + i, preset="v2", stratum=STRATA[i % 3])
        arms = [run_arm(model, clip.lq, "backbone"), run_arm(model, clip.lq, "stateless"),
                run_arm(model, clip.lq, "tami"), run_arm(model, clip.lq, "tami", gt0=clip.gt[0])]
        rows.append([psnr(_chw(out[1:]), _chw(clip.gt[1:])) for out in arms])
        print(name, "backbone %.2f stateless %.2f memory (own frame 0) %.2f memory (GT frame 0) %.2f" % tuple(rows[-1]),
              flush=True)
    print("mean", np.mean(rows, 0).round(2))


if __name__ == "__main__":
    main(*sys.argv[1:])
