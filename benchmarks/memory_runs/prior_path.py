"""Where a shift of the retrieved prior fades on its way to the output (validation clips only; no protocol).

Streams each clip of a run's generated validation data twice through a model, as ``diag/prior_sensitivity`` does:
once normally and once with the illumination prior raised by ``PRIOR_SHIFT`` on every memory read. Prints, over
frames 1 onwards, the relative change of the refined cue ``F_en`` (IR's output), of the term the IGFE adds to the
injection map, and the change of the output's mean value per unit of shift (a memory that carries brightness
would give about 1, a memory-blind model 0).

    python benchmarks/memory_runs/prior_path.py runs/probe_r7/export/model.safetensors runs/probe_r7/data/val
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from tami.adapter.io import load_model
from tami.data.video import list_frames, read_image
from tami.train.diagnostics import PRIOR_SHIFT, run_stream


def load_clip(folder: Path) -> Tensor:
    """``(T, 3, H, W)`` float frames of a frame folder."""
    return torch.from_numpy(np.stack([read_image(f) for f in list_frames(folder)])).permute(0, 3, 1, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path, help="exported model.safetensors")
    parser.add_argument("data", type=Path, help="a generic-layout folder (input/ and GT/), e.g. RUN/data/val")
    args = parser.parse_args()
    torch.set_num_threads(1)
    model = load_model(args.model).eval()
    captured: dict[str, list[Tensor]] = {}
    model.icmem.illu_refiner.register_forward_hook(
        lambda _m, _i, out: captured.setdefault("F_en", []).append(out[0].clone()))
    model.igfe.register_forward_hook(
        lambda _m, inp, out: captured.setdefault("IGFE term", []).append((out - inp[0]).clone()))

    def stream(clip: Tensor, mode: str) -> tuple[Tensor, dict[str, Tensor]]:
        captured.clear()
        out, _ = run_stream(model, clip, mode)
        return out, {name: torch.stack(values) for name, values in captured.items()}

    for video in sorted((args.data / "input").iterdir()):
        clip = load_clip(video)
        out, base = stream(clip, "memory")
        out_shifted, shifted = stream(clip, "shifted")
        parts = [f"{name} {float((shifted[name][1:] - value[1:]).norm() / value[1:].norm()):.3f}"
                 for name, value in base.items()]
        per_unit = float((out_shifted[1:] - out[1:]).mean()) / PRIOR_SHIFT
        print(f"{video.name}: relative change of {', '.join(parts)}; output mean change per unit shift "
              f"{per_unit:+.4f}", flush=True)


if __name__ == "__main__":
    main()
