"""The bounded frame memory of TAMI and its retrieval rule.

:class:`KVMemory` keeps the last ``k`` frames in a ring buffer of fixed capacity (optionally plus the first frame of
the video in a permanent slot, counted apart). Each stored frame contributes one token per cell of the memory grid:

* a key ``K`` (``key_dim``) - the *semantic bank* maps keys to values;
* a value ``V`` (``value_dim``) - the *illumination bank* maps values to illumination;
* an illumination value ``I`` (1 channel, in [0, 1]);

and, when the writer gives them, a few numbers per frame (``exposure``: the brightness statistics of
:class:`tami.adapter.anchor.ExposureAnchor`), kept and evicted with the frame's tokens.

Retrieval is the two-stage match & readout of the paper, with one rule in training and inference
(:func:`topm_readout`): the similarity of query ``q`` and memory key ``m`` is ``(2 m.q - |m|^2) / sqrt(D)``
(the negative squared distance up to a per-query constant; the reference), or, given a ``scale``,
``scale * cos(q, m)`` (a deviation, ``TAMIConfig.retrieval = "cosine"``: small keys make the reference's logits
nearly equal, so every read is a uniform average; unit keys with a learned scale keep the read selective), or
the same cosine of tokens centred per frame (``"centred"``: the mean token of each frame is removed from its
tokens first, so tokens that share one direction - the values collapse that way - still differ);
for each query the ``top_m`` largest similarities are
kept and soft-maxed, the others get zero weight (``top_m`` at least the number of entries = full softmax).
Queries are processed in chunks, so the similarity matrix never exceeds ``B x chunk x entries`` elements.

Writes are in place when no gradient is recorded (inference: the buffers are allocated once at the first write and
never grow) and out of place when autograd is recording (training: earlier frames' graphs keep their tensors, so
gradients flow through the memory into earlier frames until :meth:`KVMemory.detach` truncates them).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import InputError


def topm_readout(query: Tensor, keys: Tensor, values: Tensor, top_m: int | None, chunk: int = 1024,
                 scale: Tensor | None = None) -> Tensor:
    """Soft-max readout over the ``top_m`` most similar memory entries of every query.

    ``S[p, n] = (2 k_n . q_p - |k_n|^2) / sqrt(D)`` (or ``scale * cos(q_p, k_n)`` when ``scale`` is given);
    ``A[p] = softmax`` over the ``top_m`` largest ``S[p, :]`` (zero weight elsewhere);
    ``out[p] = sum_n A[p, n] values[n]``.

    Args:
        query: ``(B, Nq, D)`` float.
        keys: ``(B, M, D)`` memory keys (same dtype/device).
        values: ``(B, M, Dv)`` memory values.
        top_m: entries kept per query; ``None`` or ``>= M`` = full softmax.
        chunk: queries processed at once (bounds the ``(B, chunk, M)`` similarity block).
        scale: scalar tensor; when given, the similarity is the scaled cosine.

    Returns:
        ``(B, Nq, Dv)`` readout.
    """
    batch, entries, dim = keys.shape
    if scale is None:
        neg_sq = keys.pow(2).sum(-1).unsqueeze(1).mul(-(dim**-0.5))  # (B, 1, M)
    else:
        query, keys = F.normalize(query, dim=-1), F.normalize(keys, dim=-1)
    keys_t = keys.transpose(1, 2)  # (B, D, M)
    full = top_m is None or top_m >= entries
    if not full:
        flat_values = values.reshape(batch * entries, values.shape[-1])
        offsets = (torch.arange(batch, device=keys.device) * entries).view(batch, 1, 1)
    out = []
    for start in range(0, query.shape[1], max(1, chunk)):
        q = query[:, start : start + chunk]
        if scale is None:
            sim = torch.baddbmm(neg_sq, q, keys_t, alpha=2.0 * dim**-0.5)  # (B, qc, M)
        else:
            sim = torch.bmm(q, keys_t) * scale
        if full:
            out.append(torch.bmm(sim.softmax(-1), values))
            continue
        best, index = sim.topk(top_m, dim=-1)  # (B, qc, m)
        weight = best.softmax(-1)
        picked = flat_values.index_select(0, (index + offsets).reshape(-1))
        picked = picked.view(batch, q.shape[1], top_m, -1)  # (B, qc, m, Dv)
        out.append(torch.matmul(weight.unsqueeze(-2), picked).squeeze(-2))
    return torch.cat(out, 1)


def _match_readout(query: Tensor, keys: Tensor, values: Tensor, top_m: int | None, chunk: int,
                   scale: Tensor | None, centred: bool) -> Tensor:
    """:func:`topm_readout`, with the query centred over its tokens first when ``centred``."""
    if centred:
        query = query - query.mean(1, keepdim=True)
    return topm_readout(query, keys, values, top_m, chunk, scale)


class KVMemory:
    """Fixed-capacity memory of the last ``frames`` frames of one video (per batch element).

    Args:
        frames: ``k``, frames kept in the ring buffer (FIFO); 0 makes a memory that holds nothing.
        pin_first: additionally keep the video's first frame permanently (one extra slot, counted apart).

    Attributes:
        keys: ``(B, slots, n, key_dim)`` or ``None`` before the first write; ``values`` ``(B, slots, n, value_dim)``,
            ``illu`` ``(B, slots, n, 1)`` likewise; ``n`` = cells of the memory grid.
        written: frames written since the reset (also those already evicted).
    """

    def __init__(self, frames: int, *, pin_first: bool = False) -> None:
        if frames < 0:
            raise InputError(f"memory_frames must be 0 (no memory) or more, got {frames}")
        self.frames = frames
        self.pin_first = pin_first
        self.capacity = frames + int(pin_first)
        self.keys: Tensor | None = None
        self.values: Tensor | None = None
        self.illu: Tensor | None = None
        self.exposure: Tensor | None = None
        self.grid: tuple[int, int] | None = None
        self.written = 0

    def __len__(self) -> int:
        """Frames currently held (ring plus pinned), never more than ``capacity``."""
        return min(self.written, self.capacity)

    @property
    def ring_frames(self) -> int:
        """Frames held in the FIFO part (at most ``frames``)."""
        return max(0, len(self) - int(self.pin_first and self.written > 0))

    def _slot(self) -> int:
        if self.pin_first:
            return 0 if self.written == 0 else 1 + (self.written - 1) % self.frames
        return self.written % self.frames

    def write(self, key: Tensor, value: Tensor, illu: Tensor, exposure: Tensor | None = None) -> None:
        """Store one frame, evicting the oldest ring entry when full.

        Args:
            key: ``(B, key_dim, h, w)``; value: ``(B, value_dim, h, w)``; illu: ``(B, 1, h, w)`` in [0, 1].
            exposure: ``(B, E)`` numbers kept per frame, or None; give them on every write of a video or never.

        Raises:
            InputError: the frame's batch or grid differs from the frames already stored.
        """
        if self.capacity == 0:
            raise InputError("this memory holds no frames (memory_frames 0); do not write to it")
        grid = tuple(key.shape[-2:])
        tensors = [t.flatten(2).transpose(1, 2) for t in (key, value, illu)]  # (B, n, C)
        if self.keys is None:
            self.grid = grid
            self.keys, self.values, self.illu = (
                t.new_zeros(t.shape[0], self.capacity, *t.shape[1:]) for t in tensors
            )
        elif grid != self.grid or key.shape[0] != self.keys.shape[0]:
            raise InputError(
                f"memory holds batch {self.keys.shape[0]} at grid {self.grid}, got batch {key.shape[0]} at grid "
                f"{grid}; start a new state (TAMI.init_state) for each video and keep the frame size fixed"
            )
        if (exposure is None) != (self.exposure is None) and self.written:
            raise InputError("give exposure on every write of a video or on none")
        if exposure is not None:
            if self.exposure is None:
                self.exposure = exposure.new_zeros(exposure.shape[0], self.capacity, exposure.shape[1])
            tensors.append(exposure)
        slot = self._slot()
        stored = [self.keys, self.values, self.illu] + ([self.exposure] if exposure is not None else [])
        if torch.is_grad_enabled() and any(t.requires_grad for t in stored + tensors):
            index = torch.tensor([slot], device=key.device)
            stored = [torch.index_copy(s, 1, index, t.unsqueeze(1)) for s, t in zip(stored, tensors)]
        else:
            for s, t in zip(stored, tensors):
                s[:, slot] = t
        self.keys, self.values, self.illu = stored[:3]
        if exposure is not None:
            self.exposure = stored[3]
        self.written += 1

    def frame_exposure(self) -> Tensor:
        """``(B, frames held, E)``: the ``exposure`` numbers of the frames held (pinned first, then the ring)."""
        if self.exposure is None:
            raise InputError("this memory holds no exposure numbers; write frames with exposure first")
        return self.exposure[:, : len(self)]

    def read(self, query: Tensor, top_m: int | None, chunk: int,
             scales: tuple[Tensor, Tensor] | None = None, *, centred: bool = False) -> tuple[Tensor, Tensor]:
        """Two-stage match & readout for ``query`` ``(B, key_dim, h, w)`` (same grid as the stored frames).

        Stage 1 reads values with the query against the keys (``F_hp``); stage 2 reads illumination with
        ``F_hp`` against the values (``I_ip``). ``scales``: the two stages' cosine scales (None: the reference's
        distance rule). ``centred``: match (not read) tokens centred per frame (the query over its own tokens,
        each stored frame over its cells); needs ``scales``. Call only on a non-empty memory (the caller uses a
        zero prior).

        Returns:
            ``F_hp`` ``(B, value_dim, h, w)`` and ``I_ip`` ``(B, 1, h, w)`` in [0, 1].
        """
        batch, _, h, w = query.shape
        if self.keys is None:
            raise InputError("the memory is empty; write a frame before reading")
        if centred and scales is None:
            raise InputError("centred retrieval is a cosine match; give the scales")
        used = len(self)
        framed = [t[:, :used] for t in (self.keys, self.values, self.illu)]  # (B, frames, n, C)
        match_keys, match_values = framed[0], framed[1]
        if centred:
            match_keys, match_values = (t - t.mean(2, keepdim=True) for t in (match_keys, match_values))
        keys, values, illu, match_keys, match_values = (
            t.reshape(batch, -1, t.shape[-1]) for t in (*framed, match_keys, match_values))
        q = query.flatten(2).transpose(1, 2)
        first, second = (None, None) if scales is None else scales
        f_hp = _match_readout(q, match_keys, values, top_m, chunk, first, centred)
        i_ip = _match_readout(f_hp, match_values, illu, top_m, chunk, second, centred)
        return f_hp.transpose(1, 2).reshape(batch, -1, h, w), i_ip.transpose(1, 2).reshape(batch, 1, h, w)

    def detach(self) -> None:
        """Cut the autograd history of the stored tensors (truncated back-propagation through time)."""
        if self.keys is not None:
            self.keys, self.values, self.illu = (t.detach() for t in (self.keys, self.values, self.illu))
        if self.exposure is not None:
            self.exposure = self.exposure.detach()

    def nbytes(self) -> int:
        """Bytes held by the buffers."""
        held = (self.keys, self.values, self.illu, self.exposure)
        return sum(t.numel() * t.element_size() for t in held if t is not None)
