"""GPU check of the SNR-Aware and LLFormer backbones: agreement with CPU, split exactness, time and peak memory.

For each backbone at its released configuration (random weights, seed 0) it checks on the accelerator, with TF32
off so float32 means float32:

* the accelerator's output against the CPU output of the same weights (the CPU paths are the ones the official
  fixtures and the formula tests validate; SNR-Aware's attention runs a different SDPA kernel on CUDA);
  for SNR-Aware also with an explicit SNR map in which some 4×4 patches take part in attention and some do not
  (the fixture's map masks every patch);
* ``decode(encode(x), identity) == forward(x)`` bit for bit;

then times batch-1 forwards (median of ``--repeats`` after two warm-ups, CUDA-synchronised) in float32 with TF32 off,
float32 with TF32 on, and bfloat16 autocast, with the peak memory allocated; for LLFormer also with its axis
attention swapped for ``scaled_dot_product_attention``, the alternative its chunked matrix products were chosen over.

Usage::

    python benchmarks/gpu_snr_llformer.py                 # cuda, 960x512 and 1920x1088
    python benchmarks/gpu_snr_llformer.py --device cpu --sizes 64x96 --repeats 1   # smoke run
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

import tami.backbones as tb
from tami.backbones import llformer

NAMES = ("snr_aware.released", "llformer.released")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(run: Callable[[], object], device: torch.device, repeats: int) -> tuple[float, float]:
    """Median seconds per call and peak GiB allocated (CUDA only, else nan)."""
    for _ in range(2):
        run()
    _sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        _sync(device)
        times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
    return statistics.median(times), peak


def _partial_mask(h: int, w: int) -> torch.Tensor:
    """An SNR map whose 16×16-pixel blocks (4×4 patches of the H/4 map) are either 0.95 or 0.05."""
    g = torch.Generator().manual_seed(1)
    blocks = (torch.rand(1, 1, h // 16, w // 16, generator=g) > 0.5).float() * 0.9 + 0.05
    return F.interpolate(blocks, size=(h, w), mode="nearest")


def _sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """LLFormer's axis attention through ``scaled_dot_product_attention`` (4-D, unscaled logits)."""
    return F.scaled_dot_product_attention(q[None], k[None], v[None], scale=1.0)[0]


def check(name: str, device: torch.device) -> None:
    torch.manual_seed(0)
    model = tb.create(name).eval()
    x = torch.rand(1, 3, 128, 192, generator=torch.Generator().manual_seed(0)) * 0.3
    extra = [_partial_mask(128, 192)] if name.startswith("snr_aware") else []
    with torch.inference_mode():
        cpu = [model(x)] + [model(x, m) for m in extra]
        model.to(device)
        xd = x.to(device)
        acc = [model(xd)] + [model(xd, m.to(device)) for m in extra]
        enc = model.encode(xd)
        split = model.decode(enc, lambda z: z)
    errors = [f"{(a.cpu() - c).abs().max().item():.1e}" for a, c in zip(acc, cpu)]
    exact = torch.equal(split, acc[0])
    print(f"{name}: {device} vs cpu max abs {' / '.join(errors)} (computed map / partial map); "
          f"split exact: {exact}; output range [{cpu[0].min():.3f}, {cpu[0].max():.3f}]", flush=True)


def bench(name: str, device: torch.device, sizes: list[tuple[int, int]], repeats: int) -> None:
    torch.manual_seed(0)
    model = tb.create(name).eval().to(device)
    for h, w in sizes:
        x = torch.rand(1, 3, h, w, device=device) * 0.3
        runs: dict[str, Callable[[], object]] = {}

        def fp32(tf32: bool) -> object:
            torch.backends.cuda.matmul.allow_tf32 = tf32
            torch.backends.cudnn.allow_tf32 = tf32
            try:
                return model(x)
            finally:
                torch.backends.cuda.matmul.allow_tf32 = False
                torch.backends.cudnn.allow_tf32 = False

        runs["fp32"] = functools.partial(fp32, False)
        if device.type == "cuda":
            runs["fp32+tf32"] = functools.partial(fp32, True)

        def bf16() -> object:
            with torch.autocast(device.type, dtype=torch.bfloat16):
                return model(x)

        runs["bf16"] = bf16
        results = []
        with torch.inference_mode():
            for label, run in runs.items():
                seconds, peak = _timed(run, device, repeats)
                results.append(f"{label} {seconds * 1e3:.1f} ms, peak {peak:.2f} GiB")
            if name.startswith("llformer") and device.type == "cuda" and h * w <= 512 * 960:
                original = llformer.softmax_attention
                llformer.softmax_attention = _sdpa
                try:
                    seconds, peak = _timed(runs["fp32"], device, repeats)
                finally:
                    llformer.softmax_attention = original
                results.append(f"fp32 with SDPA axis attention {seconds * 1e3:.1f} ms, peak {peak:.2f} GiB")
        print(f"{name} {w}x{h}: " + "; ".join(results), flush=True)
        del x


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--sizes", default="512x960,1088x1920", help="comma-separated HxW (multiples of 16)")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",")]
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"device {name}, torch {torch.__version__}", flush=True)
    for arch in NAMES:
        check(arch, device)
    for arch in NAMES:
        bench(arch, device, sizes, args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
