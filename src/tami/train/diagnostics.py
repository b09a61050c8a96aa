"""Training diagnostics of the TAMI memory: is it used, does the output listen to it, does training reach it?

Computed at every validation of a stage-``video`` run when ``val.diagnostics`` is on, with the evaluation weights
(EMA when enabled), on the validation clips (same videos, frames and crop as the metrics), and logged as:

* ``diag/stateless_gap``: ``100 * (E_warp(stateless) - E_warp(memory)) / E_warp(stateless)`` in percent, E_warp
  summed over the validation videos (:func:`tami.metrics.ewarp`, DIS flow on the ground truth). *Stateless* runs
  every frame as the first frame of a new stream (empty memory, zero hidden state; ``tami enhance --memory 0``).
  Positive: the memory makes the output more temporally consistent.
* ``diag/prior_sensitivity``: the clips run again with the retrieved prior ``I_ip`` raised by ``PRIOR_SHIFT``
  (clamped to [0, 1]) on every frame that reads a non-empty memory; the mean over those frames of
  ``|delta mean luma(output)| / PRIOR_SHIFT`` (Rec.709 luma of the clamped output). 0: the output ignores the prior.
* ``diag/token_cosine_ls`` / ``diag/token_cosine_hs``: the mean off-diagonal cosine similarity between the memory
  tokens ``F_ls`` / ``F_hs`` of a frame (over the cells of the working grid), averaged over frames. Near 1: the
  tokens collapsed to one direction (the trivial minimum of ``L_SM``); raw encoder features give about 0.5. Left
  out when the working grid has a single cell.
* ``diag/grad_ratio``: ``|grad of the memory side| / |grad of the IGFE|`` (L2 norms over the parameters) of the
  training loss on the first validation video cut to the training clip length and crop, teacher forcing and
  truncation as in training; the memory side is
  ICMem's ``lq_encoder`` (LEnc), ``key_projector`` (LPrj), ``illu_refiner`` (IR), ``hq_encoder`` (HEnc) and
  ``value_projector`` (HPrj). ``diag/grad/<module>``: each module's norm relative to the IGFE's;
  ``diag/grad_norm_igfe``: the IGFE's norm itself. ``diag/grad_ratio_recon``: the same ratio for the
  reconstruction terms of the loss alone - ``L_SM`` feeds LEnc and HEnc directly, so the training-loss ratio can
  look healthy while no reconstruction gradient reaches the memory (the failure this guards against).
  ``diag/grad/anchor``: the brightness anchor's norm relative to the IGFE's (models with ``brightness_anchor``),
  kept out of ``grad_ratio`` so that the ratio means the same with and without it.

Nothing here changes training: gradients come from :func:`torch.autograd.grad` (``.grad`` and the optimizer are not
touched) and the global random state (``L_SM`` draws its earlier frame from it) is restored afterwards, so a run's
weights do not depend on whether diagnostics are on, and a resumed run stays bit-exact.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ..adapter.frame_aux import FrameAux
from ..adapter.memory import KVMemory
from ..adapter.model import TAMI, StreamState
from ..errors import InputError
from .distributed import DistInfo, all_reduce_sum
from .recurrence import RecurrencePolicy
from .validation import center_crop

#: Shift added to the retrieved illumination prior for ``diag/prior_sensitivity``.
PRIOR_SHIFT = 0.1
#: ICMem modules that make up the memory side (``diag/grad/<name>``).
MEMORY_MODULES = ("lq_encoder", "key_projector", "illu_refiner", "hq_encoder", "value_projector")
_LUMA = (0.2126, 0.7152, 0.0722)


class ShiftedMemory(KVMemory):
    """A :class:`KVMemory` whose reads return the illumination prior raised by ``shift`` (clamped to [0, 1])."""

    def __init__(self, frames: int, *, pin_first: bool = False, shift: float = PRIOR_SHIFT) -> None:
        super().__init__(frames, pin_first=pin_first)
        self.shift = shift

    def read(self, query: Tensor, top_m: int | None, chunk: int,
             scales: tuple[Tensor, Tensor] | None = None, *, centred: bool = False) -> tuple[Tensor, Tensor]:
        f_hp, i_ip = super().read(query, top_m, chunk, scales, centred=centred)
        return f_hp, (i_ip + self.shift).clamp(0.0, 1.0)


def mean_token_cosine(features: Tensor) -> Tensor | None:
    """Mean off-diagonal cosine similarity between the tokens (cells) of ``(B, C, h, w)`` maps, per sample.

    Returns ``(B,)``, or ``None`` for a single-cell map (no pair of tokens).
    """
    tokens = features.flatten(2).float()
    n = tokens.shape[-1]
    if n < 2:
        return None
    unit = F.normalize(tokens, dim=1)
    sim = torch.bmm(unit.transpose(1, 2), unit)
    off = sim.sum((1, 2)) - torch.diagonal(sim, dim1=1, dim2=2).sum(-1)
    return off / (n * n - n)


def mean_luma(frames: Tensor) -> Tensor:
    """Rec.709 luma averaged over the pixels of ``(T, 3, H, W)`` frames: ``(T,)``."""
    weights = frames.new_tensor(_LUMA).view(1, 3, 1, 1)
    return (frames * weights).sum(1).mean((-2, -1))


@torch.no_grad()
def run_stream(model: TAMI, lq: Tensor, mode: str = "memory") -> tuple[Tensor, list[FrameAux]]:
    """Enhance one clip ``(T, 3, H, W)`` frame by frame with :meth:`TAMI.step` (the model in eval mode).

    ``mode``: ``memory`` (the normal causal stream), ``stateless`` (a fresh state for every frame, nothing written)
    or ``shifted`` (the normal stream with the prior raised by :data:`PRIOR_SHIFT` on every read of the memory).

    Returns the outputs clamped to [0, 1] ``(T, 3, H, W)`` float and the per-frame :class:`FrameAux`.
    """
    if mode not in ("memory", "stateless", "shifted"):
        raise InputError(f"run_stream mode must be memory, stateless or shifted, got {mode!r}")
    cfg = model.config
    state = model.init_state(1)
    if mode == "shifted":
        state = StreamState(ShiftedMemory(cfg.memory_frames, pin_first=cfg.pin_first, shift=PRIOR_SHIFT), batch=1)
    outs, auxes = [], []
    for t in range(lq.shape[0]):
        if mode == "stateless":
            state = model.init_state(1)
        out, state, aux = model.step(lq[t : t + 1], state, write=mode != "stateless")
        outs.append(out.float().clamp(0.0, 1.0)[0])
        auxes.append(aux)
    return torch.stack(outs), auxes


def gradient_norms(stage: Any, lq: Tensor, gt: Tensor, *, step: int, seed: int,
                   policy: RecurrencePolicy) -> dict[str, dict[str, float]]:
    """Gradient norms on one batch ``(B, T, 3, H, W)``, per memory-side module and the IGFE.

    Returns ``{"training": {module: norm}, "reconstruction": {module: norm}}``: of the training loss and of its
    reconstruction terms alone (:meth:`tami.train.stages.VideoStage.loss_parts`). Uses
    :func:`torch.autograd.grad` in train mode (restored afterwards); the parameters' ``.grad`` stay untouched.
    The caller restores the global random state (``L_SM`` draws from it).
    """
    model: TAMI = stage.model
    groups = {name: getattr(model.icmem, name) for name in MEMORY_MODULES}
    groups["igfe"] = model.igfe
    if model.anchor is not None:
        groups["anchor"] = model.anchor
    named = {name: [p for p in module.parameters() if p.requires_grad] for name, module in groups.items()}
    params = [p for ps in named.values() for p in ps]
    was_training = model.training
    model.train()
    out = {}
    try:
        with torch.enable_grad():
            losses = stage.loss_parts(lq, gt, step=step, seed=seed, policy=policy)
            for kind, loss, last in zip(("training", "reconstruction"), losses, (False, True)):
                grads = (torch.autograd.grad(loss, params, retain_graph=not last, allow_unused=True)
                         if loss.requires_grad else [None] * len(params))
                by_param = {id(p): g for p, g in zip(params, grads)}
                norms = {}
                for name, ps in named.items():
                    squares = [by_param[id(p)].double().pow(2).sum() for p in ps if by_param[id(p)] is not None]
                    norms[name] = float(torch.stack(squares).sum().sqrt()) if squares else 0.0
                out[kind] = norms
    finally:
        model.train(was_training)
    return out


def _ratio(num: float, den: float) -> float:
    if den > 0:
        return num / den
    return 0.0 if num == 0 else math.inf


def memory_diagnostics(
    stage: Any,
    dataset: Any,
    info: DistInfo,
    *,
    crop: int | None,
    max_videos: int | None,
    autocast: Callable[[], Any],
    step: int,
    seed: int,
    policy: RecurrencePolicy,
    grad_frames: int | None,
    grad_crop: int | None,
) -> dict[str, float]:
    """All ``diag/*`` values (module docstring) for a stage-``video`` model on the validation ``dataset``.

    Values that are undefined are left out: ``prior_sensitivity`` when no frame read a non-empty memory (e.g.
    ``memory_frames`` 0, the no-memory control), a token cosine on single-cell grids or never-written ``F_hs``.

    Videos are split across processes and the sums all-reduced, so every process returns the same numbers. The
    gradient batch is the first validation video cut to a training clip (its first ``grad_frames`` frames,
    centre-cropped to ``grad_crop``: the training ``clip_len`` and ``crop``, so it costs one training step), the
    same on every process. The model is left in eval mode.

    Raises:
        InputError: a validation clip with fewer than 2 frames (E_warp needs frame pairs).
    """
    from ..metrics import FlowCache, ewarp

    model: TAMI = stage.model
    devices = [info.device.index or 0] if info.device.type == "cuda" else []
    count = len(dataset.videos) if max_videos is None else min(max_videos, len(dataset.videos))
    # ewarp memory / stateless, ewarp videos, sensitivity sum / frames, cosine ls sum / n, cosine hs sum / n
    sums = torch.zeros(9, dtype=torch.float64)
    with torch.random.fork_rng(devices=devices):
        model.eval()
        for index in range(info.rank, count, info.world_size):
            sample = dataset[(index, 0)]
            lq = center_crop(sample["lq"], crop).to(info.device)
            gt = center_crop(sample["gt"], crop).float()
            if lq.shape[0] < 2:
                raise InputError(
                    f"val.diagnostics needs validation clips of at least 2 frames, video {index} has {lq.shape[0]}; "
                    "set val.data.clip_len >= 2 or val.diagnostics=false"
                )
            with autocast():
                memory, auxes = run_stream(model, lq, "memory")
                stateless, _ = run_stream(model, lq, "stateless")
                shifted, _ = run_stream(model, lq, "shifted")
            memory, stateless, shifted = memory.cpu(), stateless.cpu(), shifted.cpu()
            cache = FlowCache()
            e_mem, e_free = ewarp(memory, gt, cache=cache), ewarp(stateless, gt, cache=cache)
            if math.isfinite(e_mem) and math.isfinite(e_free):
                sums[0:3] += torch.tensor([e_mem, e_free, 1.0], dtype=torch.float64)
            reads = torch.tensor([a.memory_frames > 0 for a in auxes])
            delta = (mean_luma(shifted) - mean_luma(memory)).abs().double() / PRIOR_SHIFT
            sums[3] += delta[reads].sum()
            sums[4] += reads.sum()
            for aux in auxes:
                for slot, tokens in ((5, aux.f_ls), (7, aux.f_hs)):
                    cos = mean_token_cosine(tokens) if tokens is not None else None
                    if cos is not None:
                        sums[slot] += cos.double().sum().cpu()
                        sums[slot + 1] += cos.numel()
        sample = dataset[(0, 0)]
        lq = center_crop(sample["lq"][:grad_frames], grad_crop)[None].to(info.device)
        gt = center_crop(sample["gt"][:grad_frames], grad_crop)[None].to(info.device)
        with autocast():
            norms = gradient_norms(stage, lq, gt, step=step, seed=seed, policy=policy)
    total = all_reduce_sum(info, sums.to(info.device) if info.device.type == "cuda" else sums).cpu()
    out: dict[str, float] = {}
    if total[2] > 0:
        out["diag/stateless_gap"] = 100.0 * _ratio(float(total[1] - total[0]), float(total[1])) + 0.0  # no -0.0
    if total[4] > 0:
        out["diag/prior_sensitivity"] = float(total[3] / total[4])
    for slot, name in ((5, "ls"), (7, "hs")):
        if total[slot + 1] > 0:
            out[f"diag/token_cosine_{name}"] = float(total[slot] / total[slot + 1])
    for kind, suffix in (("training", ""), ("reconstruction", "_recon")):
        part = dict(norms[kind])
        igfe = part.pop("igfe")
        anchor = part.pop("anchor", None)
        out[f"diag/grad_ratio{suffix}"] = _ratio(math.sqrt(sum(v * v for v in part.values())), igfe)
        if kind == "training":
            out["diag/grad_norm_igfe"] = igfe
            out.update({f"diag/grad/{name}": _ratio(value, igfe) for name, value in part.items()})
            if anchor is not None:
                out["diag/grad/anchor"] = _ratio(anchor, igfe)
    return out


def summary(scores: dict[str, float]) -> str:
    """The headline ``diag/*`` values as text for the per-validation log line ('' when there are none)."""
    parts = []
    if "diag/stateless_gap" in scores:
        parts.append(f"stateless gap {scores['diag/stateless_gap']:+.2f}% E_warp")
    if "diag/prior_sensitivity" in scores:
        parts.append(f"prior sensitivity {scores['diag/prior_sensitivity']:.3g}")
    for name in ("ls", "hs"):
        if f"diag/token_cosine_{name}" in scores:
            parts.append(f"token cosine {name} {scores[f'diag/token_cosine_{name}']:.3f}")
    if "diag/grad_ratio" in scores:
        parts.append(f"grad ratio memory/IGFE {scores['diag/grad_ratio']:.3g} "
                     f"(reconstruction {scores['diag/grad_ratio_recon']:.3g})")
    return ", ".join(parts)
