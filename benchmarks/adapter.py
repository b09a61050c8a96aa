"""Per-frame CPU time of a backbone alone vs backbone + TAMI, and memory over a long stream.

Usage::

    python benchmarks/adapter.py                       # retinexformer preset, 256x256 and 960x512, 100-frame stream
    python benchmarks/adapter.py --backbone restormer --sizes 256x256 --threads 2
    python benchmarks/adapter.py --bundled --sizes 960x512 --stream-frames 1000   # the bundled model itself
    python benchmarks/adapter.py --adapter-options '{"memory_scale": 1}' --sizes 960x512  # released + reference grid

Timing: random-weight backbone and adapter (speed does not depend on the weights; ``--bundled`` times the installed
bundled model, ``tami.bundled``, whose configuration is the one that matters), batch 1, ``torch.no_grad``.
The adapter is timed in steady state (memory full: ``k + 1`` frames streamed first); backbone and TAMI runs are
interleaved and the medians of ``--repeats`` runs are reported, as wall time and as process CPU time (less
sensitive to other jobs on a shared machine; with several threads it includes their spin-waits).

Memory: a fresh subprocess streams ``--stream-frames`` frames through TAMI and reports the process's peak resident
set size (``ru_maxrss``) after frame ``k + 1`` and after the last frame, plus the bytes held by the memory buffers.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time

import torch

from tami import backbones
from tami.adapter import TAMI
from tami.bundled import load_enhancement_model


def _size(text: str) -> tuple[int, int]:
    w, h = text.lower().split("x")
    return int(w), int(h)


def _frame(width: int, height: int, t: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(t)
    return torch.rand(1, 3, height, width, generator=g) * (0.2 + 0.05 * (t % 5))


def _build(arch: str, backbone_options: dict | None = None, adapter_options: dict | None = None,
           bundled: bool = False) -> TAMI:
    if bundled:
        return load_enhancement_model().eval()
    backbone = backbones.create(arch, **(backbone_options or {})).eval()
    model = TAMI.from_preset(backbone, **(adapter_options or {})).eval()
    torch.nn.init.normal_(model.igfe.gamma, std=0.1)  # the adapter's cost does not depend on gamma; make it active
    return model


@torch.no_grad()
def time_size(model: TAMI, width: int, height: int, repeats: int) -> dict[str, float]:
    """Median seconds per frame of the backbone alone and of a TAMI step with a full memory."""
    k = model.config.memory_frames + int(model.config.pin_first)
    state = model.init_state(1)
    for t in range(k + 1):
        model.step(_frame(width, height, t), state)
    wall: dict[str, list[float]] = {"backbone": [], "tami": []}
    cpu: dict[str, list[float]] = {"backbone": [], "tami": []}

    def backbone_only(x: torch.Tensor) -> None:
        model.backbone(x)  # pads and crops itself

    for r in range(repeats):
        x = _frame(width, height, 100 + r)
        for name, run in (("backbone", backbone_only), ("tami", lambda f: model.step(f, state))):
            start, start_cpu = time.perf_counter(), time.process_time()
            run(x)
            wall[name].append(time.perf_counter() - start)
            cpu[name].append(time.process_time() - start_cpu)
    b, t = statistics.median(wall["backbone"]), statistics.median(wall["tami"])
    bc, tc = statistics.median(cpu["backbone"]), statistics.median(cpu["tami"])
    return {"backbone_s": b, "tami_s": t, "overhead": t / b - 1, "backbone_cpu": bc, "tami_cpu": tc,
            "overhead_cpu": tc / bc - 1}


@torch.no_grad()
def stream(arch: str, width: int, height: int, frames: int, backbone_options: dict | None = None,
           adapter_options: dict | None = None, bundled: bool = False) -> dict[str, float]:
    """Peak RSS (MiB) after frame k+1 and after ``frames`` frames of one stream."""
    model = _build(arch, backbone_options, adapter_options, bundled)
    k = model.config.memory_frames + int(model.config.pin_first)
    state = model.init_state(1)
    out: dict[str, float] = {}
    for t in range(frames):
        model.step(_frame(width, height, t), state)
        if t + 1 == k + 1:
            out["peak_mib_at_k+1"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            out["memory_bytes_at_k+1"] = state.memory.nbytes()
    out["peak_mib_at_end"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["memory_bytes_at_end"] = state.memory.nbytes()
    out["frames"] = frames
    out["k+1"] = k + 1
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="retinexformer")
    parser.add_argument("--sizes", default="256x256,960x512", help="comma-separated WIDTHxHEIGHT")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--stream-frames", type=int, default=100)
    parser.add_argument("--stream-size", default="256x256")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--backbone-options", type=json.loads, default=None, help="JSON constructor overrides")
    parser.add_argument("--adapter-options", type=json.loads, default=None, help="JSON TAMIConfig overrides")
    parser.add_argument("--bundled", action="store_true", help="the installed bundled model (tami.bundled)")
    parser.add_argument("--stream-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.bundled and (args.backbone_options or args.adapter_options):
        parser.error("--bundled times the installed model as it is; drop --backbone-options/--adapter-options")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.stream_only:
        print(json.dumps(stream(args.backbone, *_size(args.stream_size), args.stream_frames, args.backbone_options,
                                args.adapter_options, args.bundled)))
        return 0

    model = _build(args.backbone, args.backbone_options, args.adapter_options, args.bundled)
    name = "the bundled model" if args.bundled else f"{args.backbone} {json.dumps(args.backbone_options or {})}"
    print(f"## Adapter speed and memory: {name} + TAMI\n")
    print(f"* machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
          f"torch {torch.__version__}, Python {platform.python_version()}")
    print(f"* command: `python benchmarks/adapter.py {' '.join(sys.argv[1:])}`".rstrip())
    adapter = sum(p.numel() for p in model.adapter_parameters())
    print(f"* adapter: {adapter / 1e6:.3f} M parameters; config {model.config.to_json()}\n")
    print("| size | backbone s/frame | backbone+TAMI s/frame | TAMI overhead | backbone CPU s | backbone+TAMI CPU s "
          "| overhead (CPU time) |")
    print("|---|---|---|---|---|---|---|")
    for text in args.sizes.split(","):
        r = time_size(model, *_size(text), args.repeats)
        print(
            f"| {text} | {r['backbone_s']:.3f} | {r['tami_s']:.3f} | {100 * r['overhead']:+.1f}% "
            f"| {r['backbone_cpu']:.3f} | {r['tami_cpu']:.3f} | {100 * r['overhead_cpu']:+.1f}% |",
            flush=True,
        )
    del model
    cmd = [sys.executable, __file__, "--stream-only", "--backbone", args.backbone, "--stream-size", args.stream_size,
           "--stream-frames", str(args.stream_frames)] + (["--threads", str(args.threads)] if args.threads else [])
    cmd += ["--bundled"] if args.bundled else []
    for flag, value in (("--backbone-options", args.backbone_options), ("--adapter-options", args.adapter_options)):
        if value:
            cmd += [flag, json.dumps(value)]
    res = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    growth = res["peak_mib_at_end"] / res["peak_mib_at_k+1"] - 1
    print(f"\nStream of {res['frames']} frames at {args.stream_size}: peak RSS {res['peak_mib_at_k+1']:.1f} MiB after "
          f"frame {res['k+1']}, {res['peak_mib_at_end']:.1f} MiB after frame {res['frames']} ({100 * growth:+.2f}%); "
          f"memory buffers {res['memory_bytes_at_k+1']} B -> {res['memory_bytes_at_end']} B.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
