"""Peak memory of ``tami enhance`` on 4K (3840x2160) input: a still and a short clip, whole and in tiles.

Usage::

    python benchmarks/enhance_4k.py                          # bundled model, 3-frame clip, default configurations
    python benchmarks/enhance_4k.py --frames 2 --limits 2 1  # plan for 2 GiB, then 1 GiB

For each configuration a fresh ``python -m tami.cli.main enhance`` process enhances a synthetic dark 4K H.264 clip
(``--frames`` frames, written first, not timed) and a 4K png still; its peak resident set size is the kernel's
high-water mark of that process (``VmHWM``: the whole process - Python, torch, decoding, encoding - Linux only). Configurations:
``whole`` (no option: on a machine with enough free memory the frame is enhanced whole) and one per ``--limits``
value (``--memory-limit GB``: the frame is planned into tiles that fit, or refused before any work - then the
row shows the refusal and the cost of reaching it). The plan each run chose (whole or tile
size) and the estimate it was based on are printed with the measured peak, as Markdown rows for RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from tami.data.video import open_writer
from tami.bundled import load_enhancement_model
from tami.enhance import EnhanceOptions, Enhancer
from tami.errors import InputError

H, W = 2160, 3840


def _frame(t: int) -> np.ndarray:
    """A dark, textured, slowly moving 4K frame with a little noise (float32 RGB)."""
    rng = np.random.default_rng(t)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    luma = 0.08 + 0.05 * np.sin((xx + 8 * t) / 53.0) * np.cos(yy / 41.0) + 0.03 * np.sin((xx + yy) / 301.0)
    tint = np.stack([np.full_like(luma, 1.0), np.full_like(luma, 0.9), np.full_like(luma, 0.8)], -1)
    noisy = luma[..., None] * tint + rng.normal(0, 0.01, (H, W, 3)).astype(np.float32)
    return np.clip(noisy, 0, 1).astype(np.float32)


# Runs tami in the child and reports the child's own peak RSS (VmHWM: per address space, so unlike a parent's
# wait4 ru_maxrss it does not inherit the RSS the benchmark process had when it forked).
_CHILD = """import atexit, sys
def _peak():
    with open('/proc/self/status') as f:
        sys.stderr.write(next(line for line in f if line.startswith('VmHWM:')))
atexit.register(_peak)
from tami.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def _run(argv: list[str], threads: int, refused: bool = False) -> tuple[int, float, str]:
    """Run a tami command in a fresh process: (peak RSS in KiB, seconds, stderr); ``refused``: it must fail."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _CHILD, *argv], stderr=subprocess.PIPE, text=True, env=env,
                          check=False)
    seconds = time.perf_counter() - start
    if bool(proc.returncode) != refused:
        raise SystemExit(f"tami {' '.join(argv)} failed:\n{proc.stderr}")
    peak = next(line for line in proc.stderr.splitlines() if line.startswith("VmHWM:"))
    return int(peak.split()[1]), seconds, proc.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="demo", help="bundled model name or model file (default: demo)")
    parser.add_argument("--frames", type=int, default=3, help="frames of the 4K clip (default: 3)")
    parser.add_argument("--limits", type=float, nargs="*", default=[2.0, 1.5, 1.0],
                        help="--memory-limit values (GiB) to run besides 'whole' (default: 2 1.5 1)")
    parser.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of the runs (default: 1)")
    parser.add_argument("--skip-whole", action="store_true", help="run only the --limits configurations")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        clip, still = Path(tmp) / "dark4k.mp4", Path(tmp) / "dark4k.png"
        with open_writer(clip, fps=30) as writer:
            for t in range(args.frames):
                writer.write(_frame(t))
        cv2.imwrite(str(still), np.rint(_frame(0)[:, :, ::-1] * 255).astype(np.uint8))
        print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.python_version()}, "
              f"load average {os.getloadavg()[0]:.1f}; model {args.model}; {args.threads} thread(s)")
        print("| input | options | plan (estimate) | peak RSS | time | frames/s |")
        print("|---|---|---|---|---|---|")
        for limit in [*([] if args.skip_whole else [None]), *args.limits]:
            options = [] if limit is None else ["--memory-limit", f"{limit:g}"]
            try:
                plan = Enhancer(load_enhancement_model(args.model),
                                EnhanceOptions(device="cpu", memory_limit=limit)).plan(H, W).describe()
            except InputError as exc:
                plan = f"refused: {exc}"
            for source, count in ((still, 1), (clip, args.frames)):
                out = Path(tmp) / f"out{source.suffix}"
                rss, seconds, _ = _run(["enhance", str(source), "-o", str(out), "--model", args.model,
                                        "--device", "cpu", "-q", *options], args.threads, refused="refused" in plan)
                out.unlink(missing_ok=True)
                print(f"| 4K {'still' if count == 1 else f'clip, {count} frames'} | {' '.join(options) or '(none)'} "
                      f"| {plan} | **{rss / 2 ** 20:.2f} GiB** | {seconds:.0f} s | {count / seconds:.3f} |")


if __name__ == "__main__":
    main()
