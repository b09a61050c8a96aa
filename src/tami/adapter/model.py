"""TAMI: a frozen image backbone plus the trainable temporal adapter (ICMem + memory + IGFE).

Per frame ``t`` (``step`` and ``forward_clip`` share :meth:`TAMI._frame`):

1. ``enc = E(lq)`` (the only encoder pass on the input; the backbone pads to its ``multiple_of`` itself);
2. working grid ``(hm, wm)`` = injection map scaled by ``memory_scale`` (capped at ``memory_max_tokens`` cells);
   ``F_ls = LEnc(area-resize(enc.key))``, ``K = LPrj(F_ls)``;
3. two-stage match & readout from the memory of earlier frames -> ``F_hp``, ``I_ip`` (zeros when empty);
4. ``(F_en, h) = IR(F_ls, I_ip, h)``;
5. ``out = D(enc, adapt = z -> z + gamma * IGFE(z, F_en, I_ip))`` (the backbone crops back to the input size);
   with ``brightness_anchor`` (a deviation) ``out = Anchor(out, I_ip)``, per cell or global (``anchor_mode``),
   after a non-empty read, or ``out = Anchor(out, exposure numbers of the memory's frames)`` (``exposure`` and
   ``carry``, which differ in the number the frame writes back; :mod:`tami.adapter.anchor`);
6. write: ``hq`` = ``out`` (or ``gt`` under teacher forcing); ``F_hs = HEnc(E(hq resized to the working grid).key)``
   (the second and last encoder pass, at the working resolution); ``(V, h) = HPrj(F_ls, F_hs, h)``;
   ``I = IEnc(hq)`` (weights frozen in this path); store ``(K, V, I)``.

With ``memory_scale = 1`` this is exactly the paper's data flow; with ``s < 1`` the whole memory side (projectors,
memory, refiner, hidden state, value encoding) runs on the ``s``-downscaled map, in training and inference alike,
so each memory token covers the same image area at training crops and at full frames.

Per-frame auxiliary outputs are a :class:`tami.adapter.frame_aux.FrameAux`; the tensors only the TAMI losses need
(``lq_small``, ``illu_lq``, ``hq_small``, ``illu_hq``) are computed only when the caller passes ``loss_terms=True``,
so the inference path does no training work.

Teacher forcing and truncated back-propagation through time are training policy
(:class:`tami.train.recurrence.RecurrencePolicy` draws which frames write the ground truth and picks the cut
schedule); :meth:`TAMI.forward_clip` only carries them out (write from ``gt`` where the mask says so, detach the
state every ``n`` frames); inference (:meth:`TAMI.step` without ``gt``) never meets them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from ..backbones.base import Backbone, freeze
from ..errors import InputError
from .anchor import BrightnessAnchor, ExposureAnchor, GlobalBrightnessAnchor, log_level
from .config import EXPOSURE_ANCHOR_MODES, TAMIConfig
from .frame_aux import FrameAux
from .icmem import ICMem
from .igfe import IGFE
from .memory import KVMemory
from .ops import resize_to, scaled_grid
from .presets import preset_config

@dataclass
class StreamState:
    """Everything TAMI remembers about one batch of videos: the memory and the recurrent hidden state.

    Attributes:
        memory: the bounded frame memory. hidden: ``(B, hidden_dim, hm, wm)`` or ``None`` before the first frame.
        batch: videos in the batch the state was made for.
    """

    memory: KVMemory
    hidden: Tensor | None = None
    batch: int = 1

    def detach(self) -> "StreamState":
        """Cut gradients to earlier frames (truncated BPTT); modifies and returns the state."""
        self.memory.detach()
        if self.hidden is not None:
            self.hidden = self.hidden.detach()
        return self


class TAMI(nn.Module):
    """A frozen image ``backbone`` made temporal by the TAMI adapter.

    Args:
        backbone: a split backbone (:class:`tami.backbones.Backbone`); frozen and kept in eval mode here.
        config: adapter hyper-parameters (default :class:`TAMIConfig`).
    """

    def __init__(self, backbone: Backbone, config: TAMIConfig | None = None) -> None:
        super().__init__()
        self.config = config or TAMIConfig()
        self.backbone = freeze(backbone)
        c = backbone.inject_channels
        cfg = self.config
        self.icmem = ICMem(c, cfg.key_dim, cfg.value_dim, cfg.hidden_dim, cfg.illu_dim,
                           None if cfg.retrieval == "distance" else cfg.retrieval_scale, cfg.illumination)
        self.igfe = IGFE(
            c,
            cfg.illu_dim,
            blocks=cfg.igfe_blocks,
            dim=cfg.igfe_dim or c,
            heads=cfg.heads,
            ffn_expansion=cfg.ffn_expansion,
            pool=cfg.igfe_pool,
            max_tokens=cfg.igfe_max_tokens,
            alpha=cfg.prior_alpha,
            heads_range=cfg.heads_range,
            temperature_init=cfg.temperature_init,
            chunk=cfg.query_chunk,
        )
        anchors = {"cells": BrightnessAnchor, "global": GlobalBrightnessAnchor, "exposure": ExposureAnchor,
                   "carry": ExposureAnchor}
        self.anchor = anchors[cfg.anchor_mode]() if cfg.brightness_anchor else None

    @classmethod
    def from_preset(cls, backbone: Backbone, **overrides: Any) -> "TAMI":
        """The adapter sized for ``backbone.arch`` (:mod:`tami.adapter.presets`), with option overrides."""
        return cls(backbone, preset_config(backbone.arch, **overrides))

    def train(self, mode: bool = True) -> "TAMI":
        """Set the adapter's mode; the backbone always stays in eval mode."""
        super().train(mode)
        self.backbone.eval()
        return self

    def adapter_parameters(self) -> list[nn.Parameter]:
        """The trainable parameters (everything but the backbone)."""
        return [p for n, p in self.named_parameters() if not n.startswith("backbone.")]

    def adapter_state_dict(self) -> dict[str, Tensor]:
        """State of the adapter only (keys without the ``backbone.`` prefix part of the model)."""
        return {k: v for k, v in self.state_dict().items() if not k.startswith("backbone.")}

    def working_grid(self, height: int, width: int) -> tuple[int, int]:
        """Memory-side grid for a (padded) input of ``height x width`` pixels."""
        stride = self.backbone.inject_stride
        cfg = self.config
        return scaled_grid(height // stride, width // stride, cfg.memory_scale, cfg.memory_max_tokens)

    def init_state(self, batch: int = 1, *, memory_frames: int | None = None) -> StreamState:
        """A fresh state (empty memory, no hidden state) for ``batch`` videos; use one per video.

        ``memory_frames`` sizes this stream's memory (default: the configuration's ``memory_frames``); an inference
        engine passes its own memory option here instead of changing the model's configuration.
        """
        frames = self.config.memory_frames if memory_frames is None else memory_frames
        return StreamState(KVMemory(frames, pin_first=self.config.pin_first), batch=batch)

    def step(
        self,
        lq: Tensor,
        state: StreamState,
        gt: Tensor | None = None,
        *,
        write: bool = True,
        teacher_mask: Tensor | None = None,
        loss_terms: bool = False,
    ) -> tuple[Tensor, StreamState, FrameAux]:
        """Enhance one frame of each video in the batch.

        Args:
            lq: ``(B, 3, H, W)`` float in [0, 1]; any size (the backbone pads and crops).
            state: from :meth:`init_state` (or the previous step); updated in place and returned.
            gt: ``(B, 3, H, W)``; when given, the memory is written from ``gt`` instead of the output
                (teacher forcing) for the samples selected by ``teacher_mask`` (default: all).
            write: store this frame in the memory (``False`` for the last frame of a video saves the work).
            teacher_mask: ``(B,)`` bool, which samples use ``gt``.
            loss_terms: also compute the tensors only the TAMI losses read (:class:`FrameAux`).

        Returns:
            ``out`` ``(B, 3, H, W)`` (not clamped), the state, and the frame's :class:`FrameAux`.

        In eval mode the state keeps no autograd history across frames (a stream of any length stays bounded even
        outside ``torch.no_grad``); back-propagation through time needs train mode or :meth:`forward_clip`.
        """
        if gt is not None and teacher_mask is None:
            teacher_mask = torch.ones(lq.shape[0], dtype=torch.bool, device=lq.device)
        out, state, aux = self._frame(lq, state, gt, teacher_mask, write, loss_terms)
        if not self.training:
            state.detach()
        return out, state, aux

    def forward_clip(
        self,
        lq: Tensor,
        gt: Tensor | None = None,
        *,
        teacher_mask: Tensor | None = None,
        detach_every: int | None = None,
        loss_terms: bool = False,
    ) -> tuple[Tensor, list[FrameAux]]:
        """Enhance clips frame by frame from an empty memory (the training entry).

        Args:
            lq: ``(B, T, 3, H, W)`` float in [0, 1].
            gt: ``(B, T, 3, H, W)``; needed only with a ``teacher_mask``.
            teacher_mask: ``(B, T)`` bool, the frames whose memory value is written from ``gt`` (teacher forcing;
                the training policy, :class:`tami.train.recurrence.RecurrencePolicy`, draws it). None: every
                frame writes its output, as at inference.
            detach_every: cut gradients through the memory and hidden state after every ``n`` frames.
            loss_terms: also compute the tensors only the TAMI losses read (the training stage asks).

        Returns:
            ``out`` ``(B, T, 3, H, W)`` and the :class:`FrameAux` of every frame.
        """
        if lq.dim() != 5 or lq.shape[2] != 3:
            raise InputError(f"forward_clip expects lq of shape (B, T, 3, H, W), got {tuple(lq.shape)}")
        if gt is not None and gt.shape != lq.shape:
            raise InputError(f"gt must have the shape of lq {tuple(lq.shape)}, got {tuple(gt.shape)}")
        batch, frames = lq.shape[:2]
        if teacher_mask is not None:
            if gt is None:
                raise InputError("a teacher_mask needs gt; pass gt or no teacher_mask")
            if tuple(teacher_mask.shape) != (batch, frames):
                raise InputError(f"teacher_mask must have shape (B, T) = {(batch, frames)}, "
                                 f"got {tuple(teacher_mask.shape)}")
            teacher_mask = teacher_mask.to(device=lq.device, dtype=torch.bool)
        if detach_every is not None and detach_every < 1:
            raise InputError(f"detach_every must be a positive number of frames or None, got {detach_every}")
        state = self.init_state(batch)
        outs, auxes = [], []
        for t in range(frames):
            mask = None if teacher_mask is None else teacher_mask[:, t]
            out, state, aux = self._frame(lq[:, t], state, None if mask is None else gt[:, t], mask, True,
                                          loss_terms)
            outs.append(out)
            auxes.append(aux)
            if detach_every is not None and (t + 1) % detach_every == 0:
                state.detach()
        return torch.stack(outs, 1), auxes

    def forward(self, lq: Tensor, gt: Tensor | None = None, **options: Any) -> tuple[Tensor, list[FrameAux]]:
        """Same as :meth:`forward_clip` (so wrappers such as ``DistributedDataParallel`` can call the model)."""
        return self.forward_clip(lq, gt, **options)

    def _frame(
        self, lq: Tensor, state: StreamState, gt: Tensor | None, teacher_mask: Tensor | None, write: bool,
        loss_terms: bool,
    ) -> tuple[Tensor, StreamState, FrameAux]:
        if lq.dim() != 4 or lq.shape[1] != 3:
            raise InputError(f"TAMI expects frames of shape (B, 3, H, W), got {tuple(lq.shape)}")
        if gt is not None and gt.shape != lq.shape:
            raise InputError(f"gt must have the shape of lq {tuple(lq.shape)}, got {tuple(gt.shape)}")
        if state.batch != lq.shape[0]:
            raise InputError(
                f"the state was made for {state.batch} videos but the frame batch is {lq.shape[0]}; "
                "use init_state(batch) with the batch size of the frames"
            )
        cfg, backbone, icmem = self.config, self.backbone, self.icmem
        enc = backbone.encode(lq)
        stride = backbone.inject_stride
        grid = self.working_grid(enc.key.shape[-2] * stride, enc.key.shape[-1] * stride)
        if state.hidden is not None and tuple(state.hidden.shape[-2:]) != grid:
            raise InputError(
                f"frame size {tuple(lq.shape[-2:])} differs from the earlier frames of this stream (working grid "
                f"{tuple(state.hidden.shape[-2:])} vs {grid}); start a new state with init_state for a new video"
            )
        f_ls = icmem.lq_encoder(resize_to(enc.key, grid))
        key = icmem.key_projector(f_ls)
        keeps_frames = state.memory.frames > 0
        if not keeps_frames:  # no temporal context: nothing is kept, so nothing needs writing
            write = False
        frames_in_memory = len(state.memory)
        if frames_in_memory:
            _, prior = state.memory.read(key, cfg.top_m, cfg.query_chunk, icmem.retrieval_scales(),
                                         centred=cfg.retrieval == "centred")
        else:
            prior = f_ls.new_zeros(f_ls.shape[0], 1, *grid)
        carried = state.hidden if cfg.recurrent else None  # not recurrent: the state keeps it only for its size
        hidden = carried if carried is not None else f_ls.new_zeros(f_ls.shape[0], cfg.hidden_dim, *grid)
        f_en, hidden = icmem.illu_refiner(f_ls, prior, hidden)
        out = backbone.decode(enc, adapt=lambda z: self.igfe(z, f_en, prior))
        exposure_anchor = self.anchor is not None and cfg.anchor_mode in EXPOSURE_ANCHOR_MODES
        raw_level = log_level(out) if exposure_anchor else None
        written_level = raw_level  # the level this frame's memory entry says it should have
        if exposure_anchor and frames_in_memory:
            out, gain, correction = self.anchor(out, raw_level, state.memory.frame_exposure())
            written_level = raw_level + (correction if cfg.anchor_mode == "carry" else gain)
        elif self.anchor is not None and frames_in_memory:
            out = self.anchor(out, prior)
        aux = FrameAux(f_ls=f_ls, key=key, prior=prior, memory_frames=frames_in_memory)
        if loss_terms:
            aux.lq_small = resize_to(lq, grid)
            aux.illu_lq = icmem.illu_encoder(aux.lq_small.detach(), grid)
        if write:
            hq = out if gt is None else torch.where(teacher_mask.view(-1, 1, 1, 1), gt, out)
            f_hs = icmem.hq_encoder(self._encode_small(hq, grid))
            value, hidden = icmem.value_projector(f_ls, f_hs, hidden)
            hq_small = resize_to(hq, grid)
            illu = icmem.illu_encoder(hq_small, grid, frozen=True)
            exposure = None
            if exposure_anchor:
                written = written_level if gt is None else torch.where(teacher_mask, log_level(gt), written_level)
                exposure = torch.stack([written, raw_level], 1)
            state.memory.write(key, value, illu, exposure)
            aux.f_hs, aux.value, aux.illu = f_hs, value, illu
            aux.teacher = (teacher_mask if teacher_mask is not None
                           else torch.zeros(lq.shape[0], dtype=torch.bool, device=lq.device))
            if loss_terms:
                aux.hq_small = hq_small.detach()
                aux.illu_hq = icmem.illu_encoder(aux.hq_small, grid)
        if keeps_frames:
            state.hidden = hidden
        return out, state, aux

    def _encode_small(self, image: Tensor, grid: tuple[int, int]) -> Tensor:
        """``E(image)`` key at the working grid: encode the image area-resized to ``grid * inject_stride``."""
        stride = self.backbone.inject_stride
        small = resize_to(image, (grid[0] * stride, grid[1] * stride))
        return self.backbone.encode(small).key[..., : grid[0], : grid[1]]
