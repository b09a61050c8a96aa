"""CPU forward time per 960x512 frame of every registered backbone; writes its section of benchmarks/RESULTS.md.

For each backbone (``tami.backbones.names()``, filtered by ``--only``) at its released configuration it times, in
float32, batch 1, under ``torch.inference_mode``:

* ``fp32``: the default forward;
* ``reference``: for backbones with a ``fast`` attribute, the same weights run with ``fast = False`` (the official
  operation order), timed in the same run and interleaved with ``fp32`` so machine load hits both alike;
* ``bf16``: the opt-in bfloat16 path (``forward_bf16`` where the backbone has one, else ``forward`` under
  ``torch.autocast("cpu", dtype=torch.bfloat16)``).

Accuracy is measured on the official fixtures (``$TAMI_FIXTURES`` or ``../shared/fixtures/backbones``) where they
exist: max-abs error of ``fp32`` against the official output, and of ``bf16`` against ``fp32``.

Usage::

    python benchmarks/backbones.py                      # every backbone, 3 repeats
    python benchmarks/backbones.py --only retinexformer --repeats 5
    python benchmarks/backbones.py --no-write            # print only

Rows of backbones not measured in a run are kept in RESULTS.md, so runs with ``--only`` accumulate.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

import tami.backbones as tb

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "RESULTS.md"
FIXTURES = Path(os.environ.get("TAMI_FIXTURES", REPO.parent / "shared" / "fixtures" / "backbones"))
HEADING = "## Backbones: CPU forward time per 960×512 frame (`benchmarks/backbones.py`)"
COLUMNS = ("backbone", "params", "fp32 s/frame", "reference s/frame", "fp32 / reference", "bf16 s/frame",
           "fp32 vs official (max abs)", "fp32 vs reference at size (max abs)", "bf16 vs fp32 (max abs)", "measured")


def bf16_forward(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The backbone's bfloat16 path: its ``forward_bf16`` if it has one, else autocast around ``forward``."""
    if hasattr(model, "forward_bf16"):
        return model.forward_bf16(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        return model(x).float()


@contextlib.contextmanager
def order(model: torch.nn.Module, fast: bool):
    """Temporarily switch a backbone with a ``fast`` attribute to the given operation order."""
    old = getattr(model, "fast", None)
    if old is not None:
        model.fast = fast
    try:
        yield model
    finally:
        if old is not None:
            model.fast = old


def time_interleaved(runs: dict[str, Callable[[], torch.Tensor]], repeats: int
                     ) -> tuple[dict[str, list[float]], dict[str, torch.Tensor]]:
    """Time every callable ``repeats`` times, round-robin, after one warm-up call each; also return the outputs."""
    outputs = {name: run() for name, run in runs.items()}
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    return times, outputs


def fixture_errors(arch: str) -> tuple[float | None, float | None]:
    """Max-abs errors on the ``released`` fixture: fp32 vs official output, bf16 vs fp32."""
    folder = FIXTURES / arch / "released"
    if not (folder / "io.safetensors").is_file():
        return None, None
    from safetensors.torch import load_file

    meta = json.loads((folder / "meta.json").read_text())
    model = tb.create(arch, **meta["constructor_kwargs"], **meta.get("inference_overrides", {})).eval()
    tb.load_state_dict(model, {k: v.float() for k, v in load_file(str(folder / "state_dict.safetensors")).items()})
    io = {k: v.float() for k, v in load_file(str(folder / "io.safetensors")).items()}
    with torch.inference_mode():
        out = model(io["input"])
        out_bf16 = bf16_forward(model, io["input"])
    return (out - io["output"]).abs().max().item(), (out_bf16 - out).abs().max().item()


def measure(arch: str, height: int, width: int, repeats: int) -> dict[str, str]:
    """One table row for ``arch``."""
    torch.manual_seed(0)
    model = tb.create(arch).eval()
    x, _ = tb.pad_to_multiple(torch.rand(1, 3, height, width), model.multiple_of)
    runs: dict[str, Callable[[], torch.Tensor]] = {}

    def fp32() -> torch.Tensor:
        with order(model, True):
            return model(x)

    runs["fp32"] = fp32
    if hasattr(model, "fast"):
        def reference() -> torch.Tensor:
            with order(model, False):
                return model(x)

        runs["reference"] = reference
    runs["bf16"] = lambda: bf16_forward(model, x)
    with torch.inference_mode():
        times, outputs = time_interleaved(runs, repeats)
    med = {name: statistics.median(t) for name, t in times.items()}
    err_official, err_bf16 = fixture_errors(arch)
    fmt_t = lambda name: f"{med[name]:.2f} (min {min(times[name]):.2f})" if name in med else "—"  # noqa: E731
    fmt_e = lambda e: "—" if e is None else f"{e:.1e}"  # noqa: E731
    ratio = f"{med['fp32'] / med['reference']:.2f}" if "reference" in med else "—"
    err_reference = (outputs["fp32"] - outputs["reference"]).abs().max().item() if "reference" in outputs else None
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return {
        "backbone": f"{arch} (released)",
        "params": f"{tb.count_parameters(model):,}",
        "fp32 s/frame": fmt_t("fp32"),
        "reference s/frame": fmt_t("reference"),
        "fp32 / reference": ratio,
        "bf16 s/frame": fmt_t("bf16"),
        "fp32 vs official (max abs)": fmt_e(err_official),
        "fp32 vs reference at size (max abs)": fmt_e(err_reference),
        "bf16 vs fp32 (max abs)": fmt_e(err_bf16),
        "measured": f"{datetime.date.today()}, median of {repeats}, load {load:.1f}",
    }


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return (f"{cpu}, {os.cpu_count()} logical cores, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads), Python {platform.python_version()}")


def _parse_rows(lines: list[str]) -> dict[str, list[str]]:
    rows = {}
    for line in lines:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) == len(COLUMNS) and cells[0] not in (COLUMNS[0], "---"):
            rows[cells[0]] = cells
    return rows


def write_section(path: Path, new_rows: list[dict[str, str]], command: str, height: int, width: int) -> None:
    """Replace this script's section in ``path`` (keeping other sections and rows of unmeasured backbones)."""
    text = path.read_text() if path.is_file() else "# Benchmark results\n"
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() == HEADING), None)
    if start is None:
        before, old, after = lines, [], []
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
        before, old, after = lines[:start], lines[start + 1:end], lines[end:]
    rows = _parse_rows(old)
    for row in new_rows:
        rows[row["backbone"]] = [row[c] for c in COLUMNS]
    section = [
        HEADING,
        "",
        f"Input 1×3×{height}×{width} float32 (`torch.rand`, seed 0), batch 1, `torch.inference_mode`, random "
        "weights at the released configuration; times in seconds per frame, median over repeats (minimum in "
        "brackets), after one warm-up call. `reference` is the same model with `fast = False` (the official "
        "operation order), timed in the same run, interleaved round-robin with `fp32` and `bf16`, so machine load "
        "affects all columns alike; the ratio is the meaningful number on a busy machine. `bf16` is the opt-in "
        "`forward_bf16` (autocast to bfloat16). `vs official` and `bf16 vs fp32` use the official fixtures (`released` "
        "variant, 128×192, its perturbed official weights); `vs reference at size` compares the timed outputs.",
        "",
        f"Last run: `{command}` on {machine()}. Note: measured while other jobs shared this machine's 2 cores "
        "(load average in the last column); absolute times are disturbed, ratios less so.",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
        *("| " + " | ".join(cells) + " |" for _, cells in sorted(rows.items())),
        "",
    ]
    if before and before[-1].strip():
        before = [*before, ""]
    path.write_text("\n".join([*before, *section, *after]).rstrip("\n") + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=None, help="comma-separated backbone names or shell patterns")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per variant (default 3)")
    parser.add_argument("--height", type=int, default=512)
    parser.add_argument("--width", type=int, default=960)
    parser.add_argument("--results", type=Path, default=RESULTS, help="markdown file to update")
    parser.add_argument("--no-write", action="store_true", help="print the rows, leave RESULTS.md alone")
    args = parser.parse_args(argv)
    patterns = args.only.split(",") if args.only else [None]
    arches = sorted({a for p in patterns for a in tb.names(p)})
    if not arches:
        print(f"no backbone matches {args.only!r}; registered: {', '.join(tb.names())}", file=sys.stderr)
        return 2
    rows = []
    for arch in arches:
        row = measure(arch, args.height, args.width, args.repeats)
        print(" | ".join(f"{k}: {v}" for k, v in row.items()), flush=True)
        rows.append(row)
    if not args.no_write:
        command = "python benchmarks/backbones.py " + " ".join(argv if argv is not None else sys.argv[1:])
        write_section(args.results, rows, command.strip(), args.height, args.width)
        print(f"updated {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
