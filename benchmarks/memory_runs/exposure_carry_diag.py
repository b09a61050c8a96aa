"""Validation-only diagnostic of an exposure-anchor model's carry (not part of any protocol).

Why does round 10 carry less of the pinned frame's correction than its unit-weight test allows? Prints the head's
learned response to the memory's mean correction ``c`` and to the raw level offset ``s``, then scores Tier A's
protocol on the validation photographs with the model as trained (each output frame writes ``raw + applied gain``)
and with one change at inference: each output frame writes ``raw + c``, the correction it read, so the pinned
frame's correction is not diluted by the shrunk gains of the frames after it.

    python benchmarks/memory_runs/exposure_carry_diag.py MODEL.safetensors PHOTOS/val
    python benchmarks/memory_runs/exposure_carry_diag.py MODEL.safetensors --export OUT.safetensors

``--export`` writes the same weights with ``anchor_mode: carry`` in the file's configuration (Tier A round 11's
information-only arm, ``probe_r11_r10_as_carry``), the same model ``main`` scores as "writes c".
"""
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from memory import tier_a  # noqa: E402
from tami.adapter import TAMI  # noqa: E402
from tami.adapter.io import load_model  # noqa: E402


def head_response(anchor: torch.nn.Module) -> None:
    """Finite-difference slopes of the learned log gain in ``c`` and ``s`` around a few operating points."""
    with torch.no_grad():
        for s in (-0.2, 0.0, 0.2):
            c = torch.tensor([-0.2, 0.2])
            gains = anchor.gain(torch.stack([c, torch.full_like(c, s)], 1))
            print(f"  at s {s:+.1f}: d gain / d c = {float(gains[1] - gains[0]) / 0.4:.3f}")
        for c0 in (-0.2, 0.0, 0.2):
            s = torch.tensor([-0.2, 0.2])
            gains = anchor.gain(torch.stack([torch.full_like(s, c0), s], 1))
            print(f"  at c {c0:+.1f}: d gain / d s = {float(gains[1] - gains[0]) / 0.4:.3f}")


def as_carry(model: TAMI) -> TAMI:
    """The same weights with ``anchor_mode: carry``: each output frame writes ``raw + c``, the correction it read."""
    carry = TAMI(model.backbone, replace(model.config, anchor_mode="carry"))
    carry.load_state_dict(model.state_dict())
    return carry.eval()


def main(weights: str, photos: str) -> None:
    torch.set_num_threads(1)
    model = load_model(weights).eval()
    print("head response:")
    head_response(model.anchor)
    for variant, arm in (("as trained", model), ("writes c", as_carry(model))):
        result = tier_a(arm, Path(photos))
        rows, summary = result["clips"], result["summary"]
        print(f"{variant}: PSNR gain {summary['psnr_gain_db']:+.2f} dB, slope {summary['slope']:.2f} "
              f"(stateless {summary['slope_stateless']:.2f})")
        for stratum in ("static", "pan", "content"):
            gains = [r["psnr_memory"] - r["psnr_stateless"] for r in rows if r["stratum"] == stratum]
            print(f"  {stratum}: {np.mean(gains):+.2f} dB over {len(gains)} clips")


def export_as_carry(weights: str, out: str) -> None:
    """Copy ``weights`` with ``anchor_mode`` set to ``carry`` in the stored adapter configuration."""
    with safe_open(weights, "pt") as f:
        metadata = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    config = json.loads(metadata["tami_config"])
    assert config["anchor_mode"] == "exposure", config["anchor_mode"]
    metadata["tami_config"] = json.dumps({**config, "anchor_mode": "carry"})
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, out, metadata=metadata)


if __name__ == "__main__":
    if sys.argv[2] == "--export":
        export_as_carry(sys.argv[1], sys.argv[3])
    else:
        main(sys.argv[1], sys.argv[2])
