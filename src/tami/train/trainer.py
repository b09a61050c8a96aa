"""The training loop shared by both stages: optimisation, logging, validation, checkpoints, resume and export.

Run folder layout (``RUN_DIR``)::

    config.yaml            the resolved config of the latest invocation (command line in its header)
    commands.txt           one line per invocation
    log.jsonl              every logged step: loss/*, metric/*, diag/* (stage video), time/*, lr
    checkpoints/last.pt    latest full training state (atomic; what --resume continues)
    checkpoints/best.pt    state at the best validation score
    export/                final weights (EMA weights when enabled); export/best/ the best-scoring ones
    data/                  synthetic datasets generated from the config
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import shlex
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .. import __version__
from ..device import autocast
from ..atomic import atomic_path
from ..errors import CheckpointError, InputError, TamiError, UsageError
from . import checkpoint as ckpt
from . import diagnostics
from .config import PATH_KEYS, TrainConfig, dump_yaml, higher_is_better, to_dict
from .loader import BatchStream, build_dataset, build_sampler, prepare_root, to_device
from .distributed import (
    DistInfo,
    all_gather_object,
    all_reduce_sum,
    average_gradients,
    barrier,
    broadcast_parameters,
    cleanup,
    max_divergence,
    setup,
)
from .ema import EMA
from .logs import LOG_FILE, RunLog, TrainProgress, truncate_log
from .schedule import build_scheduler, retarget
from .stages import Stage, build_stage, describe
from .validation import metric_functions, validate

logger = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What a finished (or stopped) run produced.

    Attributes:
        run_dir: the run folder.
        step: iterations done.
        finished: whether ``train.iterations`` was reached (else stopped by ``stop_at`` or SIGTERM).
        exports: exported weight files (empty when stopped early).
        best: ``{"metric", "value", "step"}`` of the best validation, if any.
        last: the last logged values.
        model: the trained module (backbone for stage image, TAMI for stage video) on its device.
        stop_reason: why the run stopped before ``train.iterations`` by a rule (``val.memory_stop``), else None.
    """

    run_dir: Path
    step: int
    finished: bool
    exports: list[Path] = field(default_factory=list)
    best: dict[str, Any] | None = None
    last: dict[str, float] = field(default_factory=dict)
    model: nn.Module | None = None
    stop_reason: str | None = None


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def build_optimizer(config: TrainConfig, params: list[nn.Parameter]) -> torch.optim.Optimizer:
    """Adam, AdamW or SGD (momentum ``betas[0]``) over ``params``."""
    o = config.optim
    if not params:
        raise InputError("nothing to train: the stage has no trainable parameters")
    if o.name == "adam":
        return torch.optim.Adam(params, lr=o.lr, betas=o.betas, eps=o.eps, weight_decay=o.weight_decay)
    if o.name == "adamw":
        return torch.optim.AdamW(params, lr=o.lr, betas=o.betas, eps=o.eps, weight_decay=o.weight_decay)
    return torch.optim.SGD(params, lr=o.lr, momentum=o.betas[0], weight_decay=o.weight_decay)


def precision_context(config: TrainConfig, device: torch.device) -> contextlib.AbstractContextManager:
    """The autocast of ``config.precision`` on ``device`` (:func:`tami.device.autocast`: ``auto`` is bf16 on CUDA)."""
    return autocast(device, config.precision)


class Trainer:
    """One training run of a :class:`TrainConfig` in ``run_dir`` (one instance per process).

    Args:
        config: the recipe.
        run_dir: the run folder (created).
        info: this process's placement (from :func:`tami.train.distributed.setup`).
        command: the command line that started the run (recorded in the run folder).
        progress: receives the progress of the run (rank 0 only), e.g. the command line's progress bar.
    """

    def __init__(self, config: TrainConfig, run_dir: str | os.PathLike[str], *, info: DistInfo,
                 command: str = "", progress: TrainProgress | None = None) -> None:
        self.config = config
        self.run_dir = Path(run_dir)
        self.info = info
        self.device = info.device
        self.command = command
        self.progress = progress if info.is_main else None
        self.step = 0
        self.best: dict[str, Any] = {"metric": config.val.best, "value": None, "step": None}
        self.last: dict[str, float] = {}
        self.stop_reason: str | None = None

    # ------------------------------------------------------------------------------------------------ setup

    def _write_run_files(self, resumed_from: Path | None) -> None:
        if not self.info.is_main:
            return
        header = f"tami {__version__}; command: {self.command or '(python API)'}"
        with atomic_path(self.run_dir / "config.yaml") as tmp:
            tmp.write_text(dump_yaml(self.config, header))
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        note = f" (resumed from {resumed_from})" if resumed_from else ""
        with open(self.run_dir / "commands.txt", "a") as f:
            f.write(f"{stamp} world_size={self.info.world_size}{note}: {self.command or '(python API)'}\n")

    def _build(self) -> None:
        c = self.config
        seed_everything(c.seed)
        self.stage: Stage = build_stage(c, self.device)
        self.named_params = self.stage.trained()
        self.params = [p for _, p in self.named_params]
        broadcast_parameters(self.info, self.params)
        self.optimizer = build_optimizer(c, self.params)
        self.scheduler = build_scheduler(
            self.optimizer, warmup=c.optim.warmup, total=c.train.iterations, lr=c.optim.lr, min_lr=c.optim.min_lr
        )
        self.ema = EMA(self.named_params, c.optim.ema) if c.optim.ema is not None else None
        root = prepare_root(c.data, self.run_dir, "train", self.info)
        self.train_set = build_dataset(c.data, root, seed=c.seed, train=True)
        self.stream = BatchStream(
            self.train_set, build_sampler(self.train_set, c.seed), batch_size=c.train.batch_size, info=self.info,
            workers=c.train.workers, seed=c.seed, pin_memory=self.device.type == "cuda",
        )
        self.val_set = None
        if c.val.data is not None and c.val.every is not None:
            val_root = prepare_root(c.val.data, self.run_dir, "val", self.info)
            self.val_set = build_dataset(c.val.data, val_root, seed=c.seed, train=False)
            self.metrics = metric_functions(c.val.metrics)
        # Model initialisation is identical on every process; from here on each process draws its own numbers.
        seed_everything(c.seed + 7919 * self.info.rank)
        counts = describe(self.stage)
        logger.info(
            "stage %s: %s trained of %s parameters; %d training videos; %d process(es) on %s; global batch %d",
            self.stage.name, f"{counts['trained']:,}", f"{counts['total']:,}", len(self.train_set.videos),
            self.info.world_size, self.device, self.stream.global_batch,
        )

    # ------------------------------------------------------------------------------------------------ state

    def _state(self, rng: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "step": self.step,
            "stage": self.stage.name,
            "config": to_dict(self.config),
            "model": self.stage.trained_state(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "data": self.stream.state_dict(),
            "rng": rng,
            "best": dict(self.best),
            "world_size": self.info.world_size,
            "frozen_digest": self.stage.frozen_digest(),
        }

    def save(self, name: str = ckpt.LAST) -> None:
        """Write the full training state to ``checkpoints/<name>`` (collective: every process must call it)."""
        rng = all_gather_object(self.info, ckpt.rng_state())
        if self.info.is_main:
            path = ckpt.save_checkpoint(self._state(rng), ckpt.checkpoint_dir(self.run_dir) / name)
            logger.debug("checkpoint %s at step %d", path, self.step)
        barrier(self.info)

    def _check_resume(self, path: Path) -> dict[str, Any]:
        """Read the checkpoint to resume and refuse a config it cannot continue with (before anything is built)."""
        state = ckpt.load_checkpoint(path)
        if state.get("stage") != self.config.stage:
            raise UsageError(f"{path} is a stage-{state.get('stage')} checkpoint; this config is stage "
                             f"{self.config.stage}; {_resume_hint(self.run_dir)}")
        old = state.get("config", {})
        fixed = [key for key in _changed_keys(old, to_dict(self.config)) if _fixed_on_resume(key)
                 and not _same_path(key, _get(old, key), _get(to_dict(self.config), key))]
        if fixed:
            shown = ", ".join(f"{k}: {_short(_get(old, k))} there vs {_short(_get(to_dict(self.config), k))} now"
                              for k in fixed[:4]) + (f" and {len(fixed) - 4} more" if len(fixed) > 4 else "")
            origin = path.parent.parent if path.parent.name == "checkpoints" else self.run_dir
            raise UsageError(
                f"cannot resume {path}: the config differs from the one it was trained with ({shown}); "
                f"{_resume_hint(origin)}"
            )
        return state

    def _restore(self, path: Path, state: dict[str, Any]) -> None:
        digest = self.stage.frozen_digest()
        if digest is not None and state.get("frozen_digest") not in (None, digest):
            raise CheckpointError(
                f"the frozen backbone differs from the one {path} was trained with; resume with the same "
                "model.backbone_weights"
            )
        changed = [k for k in _changed_keys(state.get("config", {}), to_dict(self.config))
                   if not _same_path(k, _get(state.get("config", {}), k), _get(to_dict(self.config), k))]
        if changed:
            logger.warning("resuming with a changed config: %s", ", ".join(changed))
        self.stage.load_trained_state(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        o = self.config.optim
        if retarget(self.scheduler, warmup=o.warmup, total=self.config.train.iterations, lr=o.lr, min_lr=o.min_lr):
            logger.info("learning-rate schedule follows the new config from step %d on", int(state["step"]))
        if self.ema is not None:
            if state["ema"] is None:
                logger.warning("%s has no EMA; starting the average from the current weights", path)
            else:
                self.ema.load_state_dict(state["ema"])
        self.stream.load_state_dict(state["data"])
        self.step = int(state["step"])
        self.best = dict(state["best"])
        rngs = state["rng"]
        if int(state.get("world_size", 1)) == self.info.world_size and len(rngs) == self.info.world_size:
            ckpt.set_rng_state(rngs[self.info.rank])
        else:
            logger.warning("resuming with %d processes instead of %d: the data order continues but random draws "
                           "differ from an uninterrupted run", self.info.world_size, state.get("world_size"))
            seed_everything(self.config.seed + 7919 * self.info.rank + self.step)
        logger.info("resumed from %s at step %d", path, self.step)

    # ------------------------------------------------------------------------------------------------ steps

    def _train_step(self) -> tuple[dict[str, Tensor], float, float]:
        c = self.config
        t0 = time.perf_counter()
        batch = next(self.stream)
        lq, gt = to_device(batch, self.device)
        data_time = time.perf_counter() - t0
        self.stage.train_mode()
        with precision_context(c, self.device):
            total, terms = self.stage.compute_loss(
                lq, gt, step=self.step, seed=c.seed + 104_729 * self.info.rank,
                policy=c.train.recurrence(),
            )
        if not torch.isfinite(total.detach()).all():
            raise TamiError(
                f"the loss became {float(total):.4g} at step {self.step + 1}; lower optim.lr, keep optim.grad_clip "
                "set, or resume from the last checkpoint with --resume auto"
            )
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        average_gradients(self.info, self.params)
        values = {"loss/total": total.detach(), **{k: v.detach() for k, v in terms.items()}}
        if c.optim.grad_clip is not None:
            norm = torch.nn.utils.clip_grad_norm_(self.params, c.optim.grad_clip)
            values["grad_norm"] = norm.detach()
        lr = float(self.optimizer.param_groups[0]["lr"])
        self.optimizer.step()
        self.scheduler.step()
        if self.ema is not None:
            self.ema.update()
        self.step += 1
        return values, data_time, lr

    @contextlib.contextmanager
    def _eval_weights(self) -> Iterator[None]:
        with self.ema.applied() if self.ema is not None else contextlib.nullcontext():
            yield

    def _validate(self) -> dict[str, float]:
        c = self.config
        t0 = time.perf_counter()
        self.stage.model.eval()
        try:
            with self._eval_weights():
                scores = validate(
                    self.stage.predict, self.val_set, self.metrics, self.info, crop=c.val.data.crop,
                    max_videos=c.val.max_videos, autocast=lambda: precision_context(c, self.device),
                )
                t1 = time.perf_counter()
                if self.stage.name == "video" and c.val.diagnostics:
                    scores.update(diagnostics.memory_diagnostics(
                        self.stage, self.val_set, self.info, crop=c.val.data.crop, max_videos=c.val.max_videos,
                        autocast=lambda: precision_context(c, self.device), step=self.step, seed=c.seed,
                        policy=c.train.recurrence(),
                        grad_frames=c.data.clip_len, grad_crop=c.data.crop,
                    ))
                    scores["time/diag"] = time.perf_counter() - t1
        finally:
            self.stage.train_mode()
        scores["time/val"] = time.perf_counter() - t0
        return scores

    def _memory_unlearned(self, scores: dict[str, float]) -> str | None:
        """The ``val.memory_stop`` verdict on a validation's diagnostics: a reason to stop, or None."""
        rule = self.config.val.memory_stop
        if rule is None or self.step < rule.after:
            return None
        gap, sensitivity = scores.get("diag/stateless_gap"), scores.get("diag/prior_sensitivity")
        if gap is None or sensitivity is None or gap >= rule.min_gap or sensitivity >= rule.min_sensitivity:
            return None
        return (
            f"the memory was not learned: at step {self.step} the stateless gap is {gap:.3g}% E_warp (< min_gap "
            f"{rule.min_gap}) and the prior sensitivity {sensitivity:.3g} (< min_sensitivity {rule.min_sensitivity})"
        )

    def _baseline(self, log: RunLog) -> None:
        """Validate before training (step 0): for stage video, the frozen backbone alone."""
        scores = self._validate()
        log.write(0, scores)
        logger.info("step 0 (before training%s): %s", ", backbone alone" if self.stage.name == "video" else "",
                    _shown(scores))

    def _better(self, value: float) -> bool:
        old = self.best["value"]
        if old is None:
            return True
        return value > old if higher_is_better(self.config.val.best) else value < old

    def _export(self, out_dir: Path) -> list[Path]:
        if not self.info.is_main:
            return []
        out_dir.mkdir(parents=True, exist_ok=True)
        with self._eval_weights():
            return self.stage.export(out_dir)

    # ------------------------------------------------------------------------------------------------ run

    def run(self, resume: Path | None = None, stop_at: int | None = None) -> TrainResult:
        """Train until ``train.iterations`` (or ``stop_at``), checkpointing, validating and exporting on the way.

        Args:
            resume: a checkpoint to continue from, or ``None`` for a fresh run.
            stop_at: stop after this many iterations in total (checkpoint written, no export); resume later.
        """
        c = self.config
        ckdir = ckpt.checkpoint_dir(self.run_dir)
        if resume is None and (ckdir / ckpt.LAST).is_file():
            raise UsageError(
                f"{self.run_dir} already holds a run ({ckdir / ckpt.LAST}); {_resume_hint(self.run_dir)}, or "
                "choose another output folder with -o"
            )
        # Everything is checked and loaded before the run folder changes: a failed start leaves it as it was (and
        # leaves no folder behind when this call created it).
        state = self._check_resume(resume) if resume is not None else None
        created = not self.run_dir.exists()
        try:
            self._build()
            if state is not None:
                self._restore(resume, state)
        except BaseException:
            if created and self.info.is_main:
                shutil.rmtree(self.run_dir, ignore_errors=True)
            raise
        if self.info.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            ckpt.remove_partials(ckdir)
            truncate_log(self.run_dir / LOG_FILE, self.step)
        barrier(self.info)
        self._write_run_files(resume)
        end = c.train.iterations if stop_at is None else min(stop_at, c.train.iterations)
        log = RunLog(self.run_dir, enabled=self.info.is_main)
        if self.progress is not None:
            self.progress.start(c.train.iterations, self.step)
        try:
            if resume is None and self.val_set is not None and c.val.at_start:
                self._baseline(log)
            self._loop(end, log)
        finally:
            self.stream.close()
            if self.progress is not None:
                self.progress.close()
            log.close()
        finished = self.step >= c.train.iterations
        exports: list[Path] = []
        if finished:
            exports = self._export(self.run_dir / "export")
            for path in exports:
                logger.info("exported %s", path)
        divergence = max_divergence(self.info, self.params)
        if divergence > 0:
            logger.warning("processes ended with weights differing by up to %.3g", divergence)
        best = dict(self.best) if self.best["value"] is not None else None
        return TrainResult(self.run_dir, self.step, finished, exports, best, dict(self.last), self.stage.model,
                           self.stop_reason)

    def _stop_requested(self, flag: list[str | None]) -> bool:
        """Whether any process received SIGTERM or SIGINT (agreed by all processes, so they stop at the same step)."""
        if not self.info.enabled:
            return flag[0] is not None
        wanted = torch.tensor([1.0 if flag[0] is not None else 0.0], device=self.device)
        return bool(all_reduce_sum(self.info, wanted).item() > 0)

    def _loop(self, end: int, log: RunLog) -> None:
        with _termination_flag() as flag:
            self._steps(end, log, flag)

    def _steps(self, end: int, log: RunLog, flag: list[str | None]) -> None:
        c = self.config
        sums: dict[str, Tensor] = {}
        count, data_time, tick, start = 0, 0.0, time.perf_counter(), time.perf_counter()
        while self.step < end:
            values, waited, lr = self._train_step()
            for key, value in values.items():
                sums[key] = sums.get(key, 0.0) + value.float()
            count, data_time = count + 1, data_time + waited
            final = self.step == c.train.iterations
            stopping = self.step < end and self._stop_requested(flag)
            logged = None
            if self.step % c.train.log_every == 0 or self.step == end or stopping:
                keys = sorted(sums)
                reduced = all_reduce_sum(self.info, torch.stack([sums[k] for k in keys]))
                now = time.perf_counter()
                logged = {k: float(v) / (count * self.info.world_size) for k, v in zip(keys, reduced)}
                logged.update({"lr": lr, "time/step": (now - tick) / count, "time/data": data_time / count,
                               "time/elapsed": now - start})
                sums, count, data_time, tick = {}, 0, 0.0, now
            due_val = self.val_set is not None and (self.step % c.val.every == 0 or final)
            halt = None
            if due_val:
                scores = self._validate()
                logged = {**(logged or {}), **scores}
                value = scores[f"metric/{c.val.best}"]
                if math.isfinite(value) and self._better(value):
                    self.best = {"metric": c.val.best, "value": value, "step": self.step}
                    self.save(ckpt.BEST)
                    self._export(self.run_dir / "export" / "best")
                if self.progress is not None:
                    self.progress.write(f"step {self.step}: {_shown(scores)}")
                else:
                    logger.info("step %d: %s", self.step, _shown(scores))
                halt = self._memory_unlearned(scores)
            if logged is not None:
                self.last = logged
                log.write(self.step, logged)
            if self.progress is not None:
                self.progress.update(logged)
            due_ckpt = c.train.checkpoint_every is not None and self.step % c.train.checkpoint_every == 0
            if due_ckpt or self.step == end or stopping or halt:
                self.save(ckpt.LAST)
            if halt:
                logger.warning(
                    "%s (val.memory_stop): %s. Checkpoint written; see the diag/* entries of %s to find out why, on "
                    "training or validation data (do not tune on the test set)", "finished" if final else "stopped",
                    halt, self.run_dir / LOG_FILE,
                )
                if not final:
                    self.stop_reason = halt
                    return
            if stopping:
                logger.warning("%s: stopped after iteration %d with a checkpoint", flag[0] or "stop requested",
                               self.step)
                return


def _shown(scores: dict[str, float]) -> str:
    """A validation's metrics and headline diagnostics as one line of text."""
    shown = ", ".join(f"{k.split('/', 1)[1]} {v:.4f}" for k, v in scores.items() if k.startswith("metric/"))
    diag = diagnostics.summary(scores)
    return f"{shown}; {diag}" if diag else shown


@contextlib.contextmanager
def _termination_flag() -> Iterator[list[str | None]]:
    """Turn SIGTERM (job schedulers' pre-emption notice) and Ctrl-C (SIGINT) into a request to stop after the
    current iteration, with a checkpoint.

    Yields a one-element list that becomes ``["SIGTERM"]`` or ``["SIGINT"]``. A second Ctrl-C aborts at once
    (``KeyboardInterrupt``, no checkpoint). The previous handlers come back afterwards. Only the main thread can
    install signal handlers; elsewhere the flag simply never changes.
    """
    flag: list[str | None] = [None]
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def request_stop(signum: int, frame: Any) -> None:
        if signum == signal.SIGINT and flag[0] == "SIGINT":
            raise KeyboardInterrupt
        flag[0] = signal.Signals(signum).name

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield flag
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# Settings a resumed run must share with its checkpoint: they decide what the saved state means (model, data order,
# loss, the scale of the best score). Schedule length, learning rate, logging and validation cadence may change; a
# different frozen backbone is caught by its digest, whatever its path.
_FIXED_ON_RESUME = ("stage", "seed", "model.backbone", "model.backbone_options", "model.adapter_options",
                    "data.", "loss.", "train.batch_size", "val.data.", "val.best", "val.max_videos")


def _fixed_on_resume(key: str) -> bool:
    return any(key == f or key.startswith(f if f.endswith(".") else f + ".") for f in _FIXED_ON_RESUME)


def _get(tree: Any, key: str) -> Any:
    for part in key.split("."):
        tree = tree.get(part) if isinstance(tree, dict) else None
    return tree


def _same_path(key: str, old: Any, new: Any) -> bool:
    """Whether two values of a path key name the same file (older runs recorded paths as typed)."""
    if tuple(key.split(".")) not in PATH_KEYS or not isinstance(old, str) or not isinstance(new, str):
        return False
    return os.path.abspath(old) == os.path.abspath(new)


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 5] + " ...}" if text.startswith("{") else text[: limit - 4] + " ..."


def _resume_hint(run_dir: Path) -> str:
    """How to continue ``run_dir`` with the config it was trained with."""
    return f"continue it with: tami train {shlex.quote(str(run_dir))} --resume auto"


def _changed_keys(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new)):
            out += _changed_keys(old.get(key), new.get(key), f"{prefix}{key}.")
        return out
    return [prefix.rstrip(".")] if old != new else []


def train(config: TrainConfig, run_dir: str | os.PathLike[str], *, resume: str | None = None,
          stop_at: int | None = None, command: str = "", progress: TrainProgress | None = None) -> TrainResult:
    """Run (or continue) a training run; joins the ``torchrun`` process group when launched by it.

    Args:
        config: the recipe.
        run_dir: the run folder.
        resume: ``None`` (fresh), ``"auto"`` (continue ``RUN_DIR`` if it has a checkpoint), a checkpoint file, or
            a run folder.
        stop_at: stop after this many iterations in total, with a checkpoint (for time-limited job slots).
        command: the command line to record in the run folder.
        progress: receives the progress of the run (rank 0 only), e.g. the command line's progress bar.

    Raises:
        InputError: a bad recipe or data; CheckpointError: an unusable checkpoint or weights file.
    """
    info = setup(config.device)
    try:
        trainer = Trainer(config, run_dir, info=info, command=command, progress=progress)
        return trainer.run(ckpt.resolve_resume(resume, run_dir), stop_at=stop_at)
    finally:
        cleanup(info)
