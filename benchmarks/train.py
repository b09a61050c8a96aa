"""Training speed: iterations/s of stage video (Retinexformer + TAMI) and, for reference, stage image.

One iteration = forward, loss, backward, gradient clipping and the optimizer step on a batch already in memory (data
loading excluded; it runs in workers during real training). Default workload of the training issue: clips of 5
frames at 128x128, batch 2, the released Retinexformer with its TAMI preset and every loss term.

    python benchmarks/train.py                      # CPU, all threads
    python benchmarks/train.py --device cuda --precision bf16
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import torch

from tami.data.synthetic import builtin_images, synthesize_clip
from tami.train import from_dict
from tami.train.stages import build_stage, describe
from tami.train.trainer import build_optimizer, precision_context


def make_batch(frames: int, size: int, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    images = builtin_images("train")
    lqs, gts = [], []
    for i in range(batch):
        lq, gt = synthesize_clip(images[i % len(images)][1], frames=frames, size=(size, size), seed=i, flicker=0.1)
        lqs.append(torch.from_numpy(lq).permute(0, 3, 1, 2))
        gts.append(torch.from_numpy(gt).permute(0, 3, 1, 2))
    return torch.stack(lqs), torch.stack(gts)


def measure(stage_name: str, args: argparse.Namespace, lq: torch.Tensor, gt: torch.Tensor) -> dict:
    loss = {"charbonnier": 1.0} if stage_name == "image" else {"charbonnier": 1.0, "l_sm": 1.0, "l_i3a": 1.0,
                                                                  "l_im": 1.0}
    config = from_dict({
        "stage": stage_name, "device": args.device, "precision": args.precision,
        "model": {"backbone": "retinexformer", "backbone_options": json.loads(args.backbone_options)},
        "data": {"root": "unused"}, "loss": loss,
        "train": {"batch_size": args.batch, "teacher_forcing": 0.5},
    })
    device = torch.device(args.device)
    torch.manual_seed(0)
    stage = build_stage(config, device)
    params = [p for _, p in stage.trained()]
    optimizer = build_optimizer(config, params)
    lq, gt = lq.to(device), gt.to(device)

    def step(i: int) -> None:
        stage.train_mode()
        with precision_context(config, device):
            total, _ = stage.compute_loss(lq, gt, step=i, seed=0, policy=config.train.recurrence())
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()

    for i in range(args.warmup):
        step(i)
    if device.type == "cuda":
        torch.cuda.synchronize()
    times = []
    for i in range(args.steps):
        t0 = time.perf_counter()
        step(args.warmup + i)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    times.sort()
    median = times[len(times) // 2]
    counts = describe(stage)
    return {"stage": stage_name, "trained_params": counts["trained"], "total_params": counts["total"],
            "median_s_per_it": median, "it_per_s": 1.0 / median, "best_s_per_it": times[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=5)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--steps", type=int, default=10, help="timed iterations (median reported)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--backbone-options", default="{}", help='JSON, e.g. \'{"n_feat": 16}\' (default: released)')
    parser.add_argument("--stages", default="video,image")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    lq, gt = make_batch(args.frames, args.size, args.batch)
    print(f"# {platform.machine()} {platform.processor() or ''}; torch {torch.__version__}; threads "
          f"{torch.get_num_threads()}; device {args.device} {args.precision}; clips {args.batch}x{args.frames}x"
          f"{args.size}x{args.size}; backbone options {args.backbone_options}")
    for name in args.stages.split(","):
        r = measure(name, args, lq, gt)
        print(f"stage {name:5s}: {r['it_per_s']:.3f} it/s (median {r['median_s_per_it'] * 1000:.0f} ms/it, best "
              f"{r['best_s_per_it'] * 1000:.0f} ms); trained {r['trained_params']:,} of {r['total_params']:,} "
              "parameters")


if __name__ == "__main__":
    main()
