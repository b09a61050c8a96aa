"""Enhance dark videos, frame folders or images with a TAMI model (default: the bundled model).

The output mirrors the input: video → video (source timing and audio kept), folder → folder (frame names kept),
image → image; 16-bit frames stay 16-bit in png/tif images and frame folders (video files are 8-bit).
Grayscale frames are enhanced as RGB; an alpha channel is ignored. With one input, -o names the output; with
several, -o is a folder. Without -o, outputs go next to the inputs as NAME_tami.EXT (NAME_backbone.EXT with
--backbone-only). Frames are streamed, so memory stays flat over any length; Ctrl-C or an error leaves no
partial output.

Real-world files: a video is decoded to the end of its stream (the frame count in its header is only a hint); a
stream that ends early is used up to its last decodable frame, with a warning giving both counts. A frame that
cannot be decoded (a corrupt packet) is skipped with a warning and its place filled by repeating the previous
enhanced frame at the skipped frame's timestamp, so the output keeps the source's timing and audio sync. With
--strict both are errors and nothing is written. Colours follow the stream's tags (BT.601/709/2020, limited or
full range; untagged HD is BT.709), 10-bit video is read at full precision, rotation metadata is applied and
variable frame rates keep their timestamps.

Before the first frame, every input is opened, every output folder checked, and the frame size checked against
the free memory: frames too large to enhance whole are enhanced in overlapping tiles blended without seams
(--tile forces a tile size); when not even small tiles fit, the input is refused with a --max-side suggestion.

Job arrays: --shard K/N processes every N-th input starting at K (0-based), --skip-existing skips inputs whose
output already exists, so a Slurm/Kubernetes array can split a collection and be restarted safely. An input that
fails (e.g. a corrupt file) is reported and the others are still processed; the exit code is then 1.

Examples:
  tami enhance dark.mp4
  tami enhance clips/*.mp4 -o enhanced/ --shard $SLURM_ARRAY_TASK_ID/8 --skip-existing
  tami enhance dark.mp4 --backbone-only --compare
  tami enhance dark.mp4 --model runs/demo_video          # your trained run (its best, else final, export)

--model takes a bundled name, a training run folder, an exported model (RUN/export/model.safetensors), an
exported backbone (RUN/export/backbone.safetensors) or an official backbone checkpoint (.pth/.safetensors, detected
as tami convert does); the last two hold no adapter and run backbone-only.

The model's output is not clamped inside the network; written frames are clipped to the valid range.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from pathlib import Path

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from ..bundled import DEFAULT_MODEL
from ..enhance import EnhanceOptions, Enhancer
from ..model_files import describe, load_model_spec
from ..data.video import IMAGE_SUFFIXES, VIDEO_SUFFIXES
from ..errors import TamiError, UsageError

NAME = "enhance"
HELP = "enhance dark videos, frame folders or images"

logger = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", type=Path, metavar="INPUT", help="video files, frame folders or images")
    parser.add_argument("-o", "--output", type=Path, default=None,
                        help="output path (one input) or output folder (several inputs)")
    parser.add_argument("--model", default=None,
                        help="bundled name, training run folder, exported model or backbone file, or official "
                             f"backbone checkpoint (default: bundled {DEFAULT_MODEL!r}; see above)")
    parser.add_argument("--backbone-only", action="store_true",
                        help="run the frozen image backbone frame by frame, without the temporal adapter")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default: auto)")
    parser.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default="fp32",
                        help="compute precision (fp16 on GPUs only; default: fp32)")
    parser.add_argument("--memory", type=int, default=None, metavar="K",
                        help="frames kept in the adapter's memory (default: the model's setting; 0: none, "
                             "every frame enhanced without temporal context, for ablations)")
    parser.add_argument("--max-side", type=int, default=None, metavar="N",
                        help="process frames larger than N pixels on their longer side at reduced size, then upsample")
    parser.add_argument("--compare", action="store_true", help="also write NAME_compare.EXT: input | output")
    parser.add_argument("--scene-cut", type=float, default=EnhanceOptions.scene_cut, metavar="T",
                        help="histogram distance (0-1] above which the memory is reset "
                             f"(default: {EnhanceOptions.scene_cut})")
    parser.add_argument("--no-scene-cut", action="store_true", help="never reset the memory within a video")
    parser.add_argument("--tile", type=int, default=None, metavar="N",
                        help="enhance frames in overlapping N x N tiles (default: only when a frame does not fit in "
                             "memory whole)")
    parser.add_argument("--memory-limit", type=float, default=None, metavar="GB",
                        help="plan frames, model and encoder into at most GB GiB (default: the free memory; "
                             "Python and torch themselves take ~0.4 GiB more)")
    parser.add_argument("--strict", action="store_true",
                        help="refuse truncated or damaged videos instead of using every decodable frame")
    parser.add_argument("--shard", default=None, metavar="K/N", help="process only inputs K, K+N, K+2N, ... (0-based)")
    parser.add_argument("--skip-existing", action="store_true", help="skip inputs whose output already exists")


def parse_shard(text: str) -> tuple[int, int]:
    """Parse ``K/N`` with ``0 <= K < N``."""
    try:
        k, n = (int(part) for part in text.split("/"))
    except ValueError:
        raise UsageError(f"--shard must look like K/N (e.g. 0/4), got {text!r}") from None
    if n < 1 or not 0 <= k < n:
        raise UsageError(f"--shard K/N needs N >= 1 and 0 <= K < N, got {text!r}")
    return k, n


def output_path(source: Path, output: Path | None, several: bool, tag: str) -> Path:
    """Where the enhanced version of ``source`` goes (see the command's description)."""
    named = f"{source.stem}_{tag}{source.suffix}" if source.is_file() else f"{source.name}_{tag}"
    if output is None:
        return source.with_name(named)
    if several:
        return output / source.name
    return output


def compare_path(path: Path) -> Path:
    """``NAME_compare.EXT`` beside ``path``."""
    return path.with_name(f"{path.stem}_compare{path.suffix}")


def run(args: argparse.Namespace) -> int:
    inputs = sorted(dict.fromkeys(args.inputs))
    if args.shard:
        k, n = parse_shard(args.shard)
        inputs = inputs[k::n]
    several = len(args.inputs) > 1
    if several and args.output is not None and args.output.suffix.lower() in VIDEO_SUFFIXES | IMAGE_SUFFIXES:
        raise UsageError(f"with several inputs -o must be a folder, got file name {args.output}")
    choice = load_model_spec(args.model)
    backbone_only = args.backbone_only or choice.backbone_only
    tag = "backbone" if backbone_only else "tami"
    jobs = []
    seen: dict[Path, Path] = {}
    for source in inputs:
        target = output_path(source, args.output, several, tag)
        if target.resolve() == source.resolve():
            raise UsageError(f"output {target} would overwrite its input; choose another -o")
        if target in seen:
            raise UsageError(f"inputs {seen[target]} and {source} would both be written to {target}; "
                             "rename one or enhance them in separate calls")
        seen[target] = source
        if args.skip_existing and target.exists():
            logger.info("skipping %s: %s exists", source, target)
            continue
        jobs.append((source, target))
    if not jobs:
        logger.info("nothing to do")
        return 0
    options = EnhanceOptions(
        device=args.device,
        precision=args.precision,
        memory=args.memory,
        max_side=args.max_side,
        backbone_only=backbone_only,
        scene_cut=None if args.no_scene_cut else args.scene_cut,
        tile=args.tile,
        memory_limit=args.memory_limit,
    )
    enhancer = Enhancer(choice.model, options)
    logger.info("model: %s on %s (%s%s)", describe(choice), enhancer.device, args.precision,
                ", backbone only" if backbone_only else "")
    failed: list[Path] = []

    def fail(source: Path, exc: TamiError) -> None:
        # One bad file must not stop a job array's shard: report it, go on, fail at the end.
        logger.error("error: %s", exc, exc_info=args.debug)
        failed.append(source)

    ready = []
    for source, target in jobs:  # every check that can be made, for every input, before any frame is enhanced
        try:
            enhancer.check(source, [target, compare_path(target)] if args.compare else [target], strict=args.strict)
        except TamiError as exc:
            fail(source, exc)
            continue
        ready.append((source, target))
    with logging_redirect_tqdm(loggers=[logging.getLogger("tami")]):  # warnings print above the progress bar
        totals = _enhance_all(enhancer, ready, args, fail)
    if totals["written"]:
        logger.info("Enhanced %d of %d inputs: %d frames read, %d skipped, %d written in %.1f seconds "
                    "(%.2f frames/s).", len(jobs) - len(failed), len(jobs), totals["read"], totals["skipped"],
                    totals["written"], totals["seconds"],
                    totals["written"] / totals["seconds"] if totals["seconds"] else 0.0)
    if failed and len(jobs) > 1:
        logger.error("error: %d of %d inputs failed: %s", len(failed), len(jobs), ", ".join(map(str, failed)))
    return 1 if failed else 0


def _enhance_all(enhancer: Enhancer, ready: list[tuple[Path, Path]], args: argparse.Namespace,
                 fail: Callable[[Path, TamiError], None]) -> dict[str, float]:
    """Enhance every checked input, reporting each; returns the totals of frames read, skipped, written and
    seconds."""
    totals = {"read": 0, "skipped": 0, "written": 0, "seconds": 0.0}
    for source, target in ready:
        bar = tqdm(desc=source.name, unit="frame", disable=True if args.quiet else None,
                   dynamic_ncols=True, leave=False)

        def start(info, bar=bar) -> None:  # noqa: ANN001
            bar.reset(total=info.count)

        try:
            stats = enhancer.enhance_video(source, target, compare=compare_path(target) if args.compare else None,
                                           strict=args.strict, on_start=start,
                                           on_frame=lambda _, bar=bar: bar.update(1))
        except TamiError as exc:
            fail(source, exc)
            continue
        finally:
            bar.close()
        totals["read"] += stats.read
        totals["skipped"] += stats.skipped
        totals["written"] += stats.frames
        totals["seconds"] += stats.seconds
        extra = [f"{stats.scene_cuts} scene cut(s)"] if stats.scene_cuts else []
        if stats.plan is not None and stats.plan.tile:
            extra.append(f"in {stats.plan.tile}-px tiles")
        logger.info("%s -> %s: %d frames read, %d skipped, %d written, %.2f frames/s%s", source, target, stats.read,
                    stats.skipped, stats.frames, stats.fps, "".join(f", {e}" for e in extra))
    return totals
