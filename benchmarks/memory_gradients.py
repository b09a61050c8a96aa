"""How much of the reconstruction gradient reaches each memory-side module of the bundled architecture.

Trains a fresh adapter (bundled Retinexformer n_feat 16 frozen, 8-px memory and IGFE cells, 5 frames, full softmax)
for ``--steps`` steps on small v2 clips with a per-clip target gain, and prints, every ``--every`` steps, the norm of
the reconstruction loss's gradient for LEnc, LPrj, IR, HEnc and HPrj relative to the IGFE's, plus the spread of the
retrieval logits (max minus median over the memory entries) that decides whether reads are selective.

    python benchmarks/memory_gradients.py --steps 30 --every 10
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from tami.adapter import TAMI
from tami.adapter import memory as memory_module
from tami.bundled import load_enhancement_model
from tami.data.synthetic import builtin_images, synthesize
from tami.losses import build_loss
from tami.train.diagnostics import MEMORY_MODULES


def clips(images: list[np.ndarray], seed: int, batch: int, frames: int, size: int) -> tuple[torch.Tensor, ...]:
    lq, gt = [], []
    for b in range(batch):
        clip = synthesize(images[(seed + b) % len(images)], frames=frames, size=(size, size), seed=seed * 10 + b,
                          target_gain=(0.8, 1.25))
        lq.append(clip.lq)
        gt.append(clip.gt)
    return tuple(torch.from_numpy(np.stack(v)).permute(0, 1, 4, 2, 3).contiguous() for v in (lq, gt))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--every", type=int, default=10)
    parser.add_argument("--size", type=int, default=64)
    args = parser.parse_args()
    torch.manual_seed(0)
    model = TAMI.from_preset(load_enhancement_model().backbone, memory_scale=0.5, igfe_pool=2, memory_frames=5,
                             top_m=None)
    images = [image for _, image in builtin_images("train")]
    loss = build_loss({"charbonnier": 1.0, "l_sm_centred": 1.0, "l_i3a": 1.0, "l_im": 1.0})
    reconstruction = build_loss({"charbonnier": 1.0})
    optimizer = torch.optim.Adam(model.adapter_parameters(), lr=1e-3)
    groups = {name: list(getattr(model.icmem, name).parameters()) for name in MEMORY_MODULES}
    groups["igfe"] = list(model.igfe.parameters())
    params = [p for ps in groups.values() for p in ps]
    spreads: list[float] = []
    readout = memory_module.topm_readout

    def spy(query, keys, values, top_m, chunk=1024):  # records the logit spread of each read
        sim = (2 * query @ keys.transpose(1, 2) - keys.pow(2).sum(-1)[:, None, :]) / keys.shape[-1] ** 0.5
        spreads.append(float((sim.amax(-1) - sim.median(-1).values).mean()))
        return readout(query, keys, values, top_m, chunk)

    model.train()
    print("| step | " + " | ".join(MEMORY_MODULES) + " | logit spread |")
    print("|---:|" + "---:|" * (len(MEMORY_MODULES) + 1))
    for step in range(args.steps + 1):
        lq, gt = clips(images, step, 2, 6, args.size)
        measure = step % args.every == 0
        spreads.clear()
        memory_module.topm_readout = spy if measure else readout
        try:
            out, aux = model.forward_clip(lq, gt, teacher_mask=torch.ones(lq.shape[:2], dtype=torch.bool),
                                          loss_terms=True)
        finally:
            memory_module.topm_readout = readout
        if measure:
            value, _ = reconstruction(out, gt, aux)
            grads = torch.autograd.grad(value, params, retain_graph=True, allow_unused=True)
            by_param = {id(p): g for p, g in zip(params, grads)}
            norms = {name: float(sum(by_param[id(p)].pow(2).sum() for p in ps if by_param[id(p)] is not None)) ** 0.5
                     for name, ps in groups.items()}
            shares = " | ".join(f"{norms[n] / norms['igfe']:.1e}" for n in MEMORY_MODULES)
            print(f"| {step} | {shares} | {np.mean(spreads) if spreads else 0:.3g} |", flush=True)
        total, _ = loss(out, gt, aux)
        optimizer.zero_grad()
        total.backward()
        optimizer.step()


if __name__ == "__main__":
    main()
