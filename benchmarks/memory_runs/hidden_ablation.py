"""Validation-only diagnostic (not part of any protocol): which of the adapter's two paths from earlier frames,
the memory read or the carried hidden state, makes its effect? Inference-time ablations per motion stratum.

Arms: backbone alone; stateless (empty memory and zero hidden state on every frame); memory (as trained);
nohidden (memory kept, hidden state zeroed before every frame); hiddenonly (hidden state kept, memory emptied
before every frame, so the prior is zero); oracle (as memory, but the prior read is replaced by the current frame's
ground-truth illumination map: what a perfect prior would give). PSNR on frames 1-15 of v2 clips (16 frames,
seeds 60,000 + i, strata cycling static/pan/content) of the validation photographs.

    python benchmarks/memory_runs/hidden_ablation.py 6 256 PHOTOS/val runs/RUN         # the run's latest EMA weights
    python benchmarks/memory_runs/hidden_ablation.py 6 256 PHOTOS/val benchmarks/memory_runs/probe_r6@export
"""
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from memory import _array, _chw, _tensor, run_arm as protocol_arm  # noqa: E402
from tami.adapter import TAMI  # noqa: E402
from tami.adapter.io import load_model  # noqa: E402
from tami.adapter.memory import KVMemory  # noqa: E402
from tami.adapter.model import StreamState  # noqa: E402
from tami.adapter.ops import resize_to  # noqa: E402
from tami.data.synthetic import load_sources, synthesize  # noqa: E402
from tami.metrics import psnr  # noqa: E402
from tami.train.config import load_config  # noqa: E402
from tami.train.stages import VideoStage  # noqa: E402

STRATA = ("static", "pan", "content")
ARMS = ("backbone", "stateless", "memory", "nohidden", "hiddenonly", "oracle")


def load(spec: str) -> TAMI:
    """``RUN@export``: the run's exported model; ``RUN``: its latest checkpoint's EMA weights."""
    if spec.endswith("@export"):
        print(spec, flush=True)
        return load_model(f"{spec[:-7]}/export/model.safetensors").eval()
    stage = VideoStage(load_config(f"{spec}/config.yaml"), torch.device("cpu"))
    checkpoint = torch.load(f"{spec}/checkpoints/last.pt", weights_only=True, map_location="cpu")
    stage.model.load_state_dict(checkpoint["ema"]["shadow"], strict=False)  # the EMA holds the adapter only
    print(spec, "step", checkpoint["step"], flush=True)
    return stage.model.eval()


@torch.inference_mode()
def run_arm(model: TAMI, lq: np.ndarray, gt: np.ndarray, arm: str) -> np.ndarray:
    if arm in ("backbone", "stateless", "memory"):  # the protocol's own arms
        return protocol_arm(model, lq, "tami" if arm == "memory" else arm)
    cfg = model.config

    def fresh_memory() -> KVMemory:
        return KVMemory(cfg.memory_frames, pin_first=cfg.pin_first)

    state, outs = StreamState(fresh_memory()), []
    for t, frame in enumerate(lq):
        if arm == "nohidden":
            state.hidden = None
        elif arm == "hiddenonly":
            state.memory = fresh_memory()
        elif arm == "oracle" and len(state.memory):
            truth, read = _tensor(gt[t]), KVMemory.read

            def oracle_read(memory: KVMemory, query: torch.Tensor, *args, **kwargs):
                f_hp, _ = read(memory, query, *args, **kwargs)
                grid = tuple(query.shape[-2:])
                return f_hp, model.icmem.illu_encoder(resize_to(truth, grid), grid, frozen=True)

            state.memory.read = oracle_read.__get__(state.memory)
        out, state, _ = model.step(_tensor(frame), state)
        outs.append(_array(out))
    return np.stack(outs)


def main(clips: str, size: str, photos: str, *specs: str) -> None:
    torch.set_num_threads(1)
    images = load_sources(photos)
    for spec in specs:
        model = load(spec)
        scores = {s: {a: [] for a in ARMS} for s in STRATA}
        for i in range(int(clips)):
            name, image = images[i % len(images)]
            stratum = STRATA[i % 3]
            clip = synthesize(image, frames=16, size=(int(size), int(size)), seed=60_000 + i, preset="v2",
                              stratum=stratum)
            for arm in ARMS:
                out = run_arm(model, clip.lq, clip.gt, arm)
                scores[stratum][arm].append(psnr(_chw(out[1:]), _chw(clip.gt[1:])))
            print(name, stratum, {a: round(scores[stratum][a][-1], 2) for a in ARMS}, flush=True)
        for stratum in STRATA:
            print(f"{stratum:8s}", " ".join(f"{a} {np.mean(scores[stratum][a]):.2f}" for a in ARMS))
        print("all     ", " ".join(f"{a} {np.mean([x for s in STRATA for x in scores[s][a]]):.2f}" for a in ARMS),
              flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
