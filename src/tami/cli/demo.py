"""See what TAMI does in a couple of minutes, with no data of your own.

Without VIDEO, a short low-light clip is synthesised from a photograph the bundled model never saw in training
(with camera motion, noise and exposure flicker, and its clean ground truth). The bundled model runs twice:
its image backbone alone, frame by frame, and with the TAMI adapter; when the package ships a no-memory
control (an adapter of the same size trained the same way without memory) it runs too, so you see what the
memory itself adds. Written to the output folder:

  input.mp4, gt.mp4        the dark clip and its ground truth (synthetic clip only)
  backbone.mp4, tami.mp4   the enhanced versions (and control.mp4)
  compare.mp4              input | backbone | control | TAMI | GT side by side
  timeslice/grid.png       the centre column of every frame, per method: flicker shows as stripes
  metrics.md, .json        PSNR, SSIM, E_warp, MABD of both (E_warp only, on the input's flow, for your video)
  report/index.html        a page to play, scrub and slice all versions in sync (open it in a browser)

With VIDEO, its first --frames frames are used (no ground truth, so only the reference-free E_warp is scored).
The folder appears only once everything is written; an earlier demo's output in it is replaced, anything else
there is left alone (choose another folder).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from tqdm import tqdm

from ..demo import default_control, metrics_table, run_demo
from ..adapter.io import MODEL_FORMAT
from ..enhance import EnhanceOptions
from ..errors import UsageError
from ..model_files import file_format, find_weights

NAME = "demo"
HELP = "enhance a built-in low-light clip (or your video) with and without TAMI"

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("video", nargs="?", type=Path, default=None,
                        help="your video, frame folder or image (default: a held-out synthetic clip)")
    parser.add_argument("-o", "--output", type=Path, default=Path("tami-demo"),
                        help="output folder; an earlier demo's output there is replaced (default: tami-demo)")
    parser.add_argument("--model", default=None,
                        help="bundled model name, training run folder or exported model file (default: bundled)")
    parser.add_argument("--control", default=None, metavar="MODEL",
                        help="no-memory control to compare with: bundled name, run folder or model file "
                             "(default: the bundled control with the bundled model, none with --model)")
    parser.add_argument("--no-control", action="store_true", help="run no control")
    parser.add_argument("--frames", type=int, default=30, help="frames to process (default: 30)")
    parser.add_argument("--size", type=int, nargs=2, default=(256, 256), metavar=("H", "W"),
                        help="frame size of the synthetic clip (default: 256 256)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    parser.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default="fp32")
    parser.add_argument("--max-side", type=int, default=512, metavar="N",
                        help="process your video at most N pixels on its longer side (default: 512)")
    parser.add_argument("--strict", action="store_true",
                        help="refuse truncated or damaged video files instead of using every decodable frame")


def change(new: float, old: float) -> str:
    """Relative change as a signed percentage with one decimal; no "-0.0%" for a change that rounds to zero."""
    percent = round(100 * (new / old - 1), 1) if old else float("nan")
    return f"{percent + 0.0:+.1f}%"  # + 0.0 turns -0.0 into 0.0


def run(args: argparse.Namespace) -> int:
    options = EnhanceOptions(device=args.device, precision=args.precision, max_side=args.max_side)
    bars: dict[str, tqdm] = {}

    def progress(name: str, done: int, total: int) -> None:
        if name not in bars:
            for earlier in bars.values():
                earlier.close()
            bars[name] = tqdm(total=total, desc=name, unit="frame", disable=True if args.quiet else None,
                              leave=False)
        bars[name].update(1)

    model = None
    if args.model is not None:
        model = find_weights(args.model)
        if file_format(model) != MODEL_FORMAT:
            raise UsageError(f"{model} holds no TAMI adapter; the demo compares the backbone alone with TAMI, so it "
                             "needs a model: a stage-video run folder or its export/model.safetensors")
    control = None if args.no_control else (find_weights(args.control) if args.control is not None
                                            else default_control(model))
    try:
        result = run_demo(args.output, args.video, model=model, control=control, frames=args.frames,
                          size=tuple(args.size),
                          options=options, on_frame=progress, strict=args.strict)
    finally:
        for bar in bars.values():
            bar.close()
    if not args.quiet:
        print(f"tami demo: {result.source}, {result.frames} frame{'' if result.frames == 1 else 's'}")
        print()
        print(metrics_table(result.metrics))
        print()
        rows = result.metrics
        if "mabd" in rows.get("tami", {}):
            t = rows["tami"]
            for name, label in (("backbone", "backbone alone"), ("control", "no-memory control")):
                if name in rows:
                    b = rows[name]
                    print(f"TAMI vs {label}: E_warp {change(t['ewarp'], b['ewarp'])}, "
                          f"MABD {change(t['mabd'], b['mabd'])}, PSNR {round(t['psnr'] - b['psnr'], 2) + 0.0:+.2f} dB")
            print("(lower E_warp/MABD = steadier video)")
        print(f"Wrote {len(result.files)} files to {result.out_dir}/ (open {result.out_dir / 'report' / 'index.html'} "
              "in a browser; compare.mp4 shows all versions).")
    logger.info("Processed %d frames %d times in %.1f seconds.", result.frames, len(result.seconds),
                sum(result.seconds.values()))
    return 0
