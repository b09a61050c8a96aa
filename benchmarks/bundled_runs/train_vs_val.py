"""Does a stage-video pair generalise? PSNR of backbone, TAMI and control on training and validation clips.

Reads the synthetic data a video-stage run generated (``RUN/data/{train,val}``, generic layout) and scores every
frame (8-bit outputs) of ``N`` training videos spread over the list and of every validation video: the backbone
alone, TAMI streamed (writing its own outputs, as at inference) and the control. An adapter that beats its backbone
on training clips and loses to it on validation clips learned its training clips, not the task.

    python benchmarks/bundled_runs/train_vs_val.py runs/bundled_video_tami/data 12 \\
        src/tami/weights/demo.safetensors src/tami/weights/demo_control.safetensors
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from memory import _chw, run_arm  # noqa: E402
from tami.adapter.io import load_model  # noqa: E402
from tami.data.video import list_frames, read_image  # noqa: E402
from tami.metrics import psnr  # noqa: E402


def load_video(folder: Path) -> np.ndarray:
    """``(T, H, W, 3)`` float32 RGB frames of a frame folder."""
    return np.stack([read_image(f) for f in list_frames(folder)])


def mean_psnr(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean per-frame PSNR (after 8-bit quantisation) of ``(T, H, W, 3)`` ``pred`` against ``gt``."""
    return float(psnr(_chw(pred), _chw(gt)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path, help="a video-stage run's data folder (with train/ and val/)")
    parser.add_argument("videos", type=int, help="training videos to score, spread over the list")
    parser.add_argument("tami", type=Path)
    parser.add_argument("control", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.set_grad_enabled(False)
    tami, control = load_model(args.tami).eval(), load_model(args.control).eval()
    for split in ("train", "val"):
        videos = sorted((args.data / split / "input").iterdir())
        if split == "train":
            videos = videos[:: max(1, len(videos) // args.videos)][: args.videos]
        scores: dict[str, list[float]] = {"backbone": [], "tami": [], "control": []}
        for video in videos:
            lq, gt = load_video(video), load_video(args.data / split / "GT" / video.name)
            scores["backbone"].append(mean_psnr(run_arm(tami, lq, "backbone"), gt))
            scores["tami"].append(mean_psnr(run_arm(tami, lq, "tami"), gt))
            scores["control"].append(mean_psnr(run_arm(control, lq, "control"), gt))
        means = ", ".join(f"{arm} {np.mean(values):.2f}" for arm, values in scores.items())
        print(f"{split} ({len(videos)} videos): {means} dB", flush=True)


if __name__ == "__main__":
    main()
