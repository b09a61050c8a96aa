"""URWKV: forward time per frame and where it goes, the WKV operator at every stage size, and device agreement.

Measures, on ``--device`` (cpu or cuda; float32, batch 1, ``torch.inference_mode``, TF32 off):

* the released-configuration forward per ``--size`` frame (random weights, seed 0; median of ``--repeats`` after one
  warm-up) and the share of it spent in the WKV operator and in the LAN normalisations (timed around the calls,
  CUDA-synchronised);
* the WKV operator alone at the ``(T, C)`` of each of the six URWKV stages of that frame, with the peak memory the
  call allocates on CUDA (on CPU: the growth of the process's peak resident memory, a coarse upper bound);
* on the official fixture (``released``, 128×192): the output's max-abs error against the official output, and on
  CUDA also against this package's CPU output.

Usage::

    python benchmarks/urwkv.py                       # cpu, 960x512, 3 repeats
    python benchmarks/urwkv.py --device cuda --repeats 5
    python benchmarks/urwkv.py --size 128x192 --repeats 1 --threads 1   # smoke run
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

import tami.backbones as tb
from tami.backbones import urwkv
from tami.backbones.urwkv_wkv import bi_wkv_channels_first

REPO = Path(__file__).resolve().parents[1]
FIXTURE = Path(os.environ.get("TAMI_FIXTURES", REPO.parent / "shared" / "fixtures" / "backbones"))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _median_time(fn: Callable[[], object], device: torch.device, repeats: int) -> float:
    fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


class _Timer:
    """Accumulates the wall time of calls to a wrapped function (synchronising around each call)."""

    def __init__(self, fn: Callable, device: torch.device) -> None:
        self.fn, self.device, self.total = fn, device, 0.0

    def __call__(self, *args, **kwargs):
        _sync(self.device)
        start = time.perf_counter()
        out = self.fn(*args, **kwargs)
        _sync(self.device)
        self.total += time.perf_counter() - start
        return out


def forward_breakdown(device: torch.device, size: tuple[int, int], repeats: int) -> None:
    torch.manual_seed(0)
    model = tb.create("urwkv.released").eval().to(device)
    x = torch.rand(1, 3, *size, generator=torch.Generator().manual_seed(0)).to(device)
    with torch.inference_mode():
        total = _median_time(lambda: model(x), device, repeats)
        wkv_timer = _Timer(urwkv.bi_wkv_channels_first, device)
        lan_timer = _Timer(urwkv.LuminanceAdaptiveNorm.forward, device)
        urwkv.bi_wkv_channels_first = wkv_timer
        urwkv.LuminanceAdaptiveNorm.forward = lambda self, *a: lan_timer(self, *a)
        try:
            model(x)
        finally:
            urwkv.bi_wkv_channels_first, urwkv.LuminanceAdaptiveNorm.forward = wkv_timer.fn, lan_timer.fn
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
            model(x)
            peak = f", peak allocated {torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB"
        else:
            peak = ""
    print(f"forward {size[1]}x{size[0]}: {total:.3f} s/frame (median of {repeats}); in one timed call: "
          f"WKV {wkv_timer.total:.3f} s, LAN {lan_timer.total:.3f} s{peak}")


def wkv_stages(device: torch.device, size: tuple[int, int], repeats: int) -> None:
    h, w = size
    stages = [("enc1/dec3", h * w, 32), ("enc2/dec2", h * w // 4, 32), ("dec2", h * w // 4, 64),
              ("enc3", h * w // 16, 64), ("dec1", h * w // 16, 128)]
    g = torch.Generator().manual_seed(0)
    for name, t, c in stages:
        k = (torch.randn(1, c, t, generator=g) * 3).to(device)  # channels-first, as URWKV's spatial mixing calls it
        v = torch.randn(1, c, t, generator=g).to(device)
        wd = (torch.linspace(-5, 3, c) / t).to(device)
        ud = (torch.randn(c, generator=g) / t).to(device)
        with torch.inference_mode():
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
                base = torch.cuda.memory_allocated(device)
                bi_wkv_channels_first(wd, ud, k, v)
                mem = (torch.cuda.max_memory_allocated(device) - base) / 2**20
            else:
                before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                bi_wkv_channels_first(wd, ud, k, v)
                mem = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
            seconds = _median_time(lambda: bi_wkv_channels_first(wd, ud, k, v), device, repeats)
        io_mb = 3 * t * c * 4 / 2**20
        print(f"WKV {name:9s} T={t:7d} C={c:3d}: {seconds * 1e3:8.1f} ms, peak +{mem:7.1f} MiB "
              f"(k, v, y: {io_mb:.1f} MiB)")


def fixture_agreement(device: torch.device) -> None:
    from safetensors.torch import load_file

    folder = FIXTURE / "urwkv" / "released"
    if not (folder / "io.safetensors").is_file():
        print(f"fixture not found at {folder}; skipped")
        return
    io = {k: v.float() for k, v in load_file(str(folder / "io.safetensors")).items()}
    model = tb.create("urwkv.released").eval()
    tb.load_state_dict(model, {k: v.float() for k, v in load_file(str(folder / "state_dict.safetensors")).items()})
    with torch.inference_mode():
        cpu = model(io["input"])
        line = f"fixture 128x192: cpu vs official {(cpu - io['output']).abs().max().item():.2e}"
        if device.type != "cpu":
            dev = model.to(device)(io["input"].to(device)).cpu()
            line += (f"; {device.type} vs official {(dev - io['output']).abs().max().item():.2e}, "
                     f"{device.type} vs cpu {(dev - cpu).abs().max().item():.2e}")
    print(line)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", default="512x960", help="HxW of the timed frame (default 512x960)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    device = torch.device(args.device)
    size = tuple(int(s) for s in args.size.lower().split("x"))
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu, {torch.get_num_threads()} threads"
    print(f"torch {torch.__version__}, {name}")
    fixture_agreement(device)
    wkv_stages(device, size, args.repeats)
    forward_breakdown(device, size, args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
