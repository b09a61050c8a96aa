"""Pure-PyTorch bidirectional WKV operator with the semantics of URWKV's CUDA kernel.

URWKV (Xu et al., CVPR 2025; https://github.com/FZU-N/URWKV, ``model/modules/cuda/wkv_cuda.cu``) mixes the tokens
of an image with a bidirectional WKV computed by a CUDA kernel that splits the ``T`` tokens into ``TOKEN_SPLIT = 32``
chunks of ``L = ceil(T / 32)`` tokens, runs a log-domain recurrence inside each chunk and combines the chunks. The
chunked recurrence is not the textbook bidirectional WKV: the result depends on the chunk boundaries. For token
``i`` of the chunk starting at ``s`` (decay ``w``, bonus ``u``, per channel)::

    y_i = (sum_j W_ij v_j + e^(u + k_i) v_i) / (sum_j W_ij + e^(u + k_i) + eps_i)

    W_ij = e^(k_j - w (i - j))        j < s            (earlier chunks)
         = e^(k_j - w (i - j - 1))    s <= j < i       (earlier tokens of the same chunk: one step less decay)
         = e^(k_j - w (j - i))        j > i            (later tokens, any chunk)
         + e^(k_j + w (i - j)) (1 - e^w)   for s < j <= i   (left over from the kernel's running subtraction)

    eps_i = 1e-6 e^(no_i),  no_i = max(o1_i, u + k_i, o2_i), the kernel's running log-domain offsets.

This module evaluates that closed form without a loop over tokens: the tokens are laid out as ``(chunks, L)``;
within a chunk the left and right sums are two cumulative sums of ``a_j e^(+-w p)`` (``a_j = e^(k_j - max k)``, ``p``
the position in the chunk; ``|w| L = |spatial_decay| / 32`` keeps these factors small), and the at most 32 chunk
states are combined by ``(32, 32)`` decay matrices. The kernel's offsets ``o1``/``o2`` are max-plus recurrences and
come out of cumulative maxima. The work runs in a ``(B, C, chunks, L)`` layout so that every scan is along the
contiguous dimension. Memory is linear in ``T`` (no ``T x T`` or ``L x L`` matrices) and bounded further by
processing channel slices of at most ``_SLICE_ELEMENTS`` elements at a time; the cumulative sums accumulate in double
precision on CPU. Works on any device and under autograd.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

TOKEN_SPLIT = 32  # chunks of the official kernel
EPS = 1e-6  # added to the kernel's rescaled denominator
_SLICE_ELEMENTS = 1 << 22  # B * T * channels processed at once (bounds the temporaries)


def chunk_length(num_tokens: int) -> int:
    """Tokens per chunk of the official kernel, ``ceil(T / 32)``."""
    return -(-num_tokens // TOKEN_SPLIT)


def bi_wkv(w: Tensor, u: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """Bidirectional WKV of the official URWKV kernel, in the kernel's ``(B, T, C)`` layout.

    Args:
        w: ``(C,)`` decay per channel (URWKV passes ``spatial_decay / T``).
        u: ``(C,)`` bonus of the token itself (URWKV passes ``spatial_first / T``).
        k: ``(B, T, C)`` keys.
        v: ``(B, T, C)`` values.

    Returns:
        ``(B, T, C)`` (a transposed view) in the dtype of ``k``; see :func:`bi_wkv_channels_first`.
    """
    return bi_wkv_channels_first(w, u, k.transpose(1, 2), v.transpose(1, 2)).transpose(1, 2)


def bi_wkv_channels_first(w: Tensor, u: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """:func:`bi_wkv` on ``(B, C, T)`` keys and values, returning ``(B, C, T)``.

    The scans run along the last dimension, so contiguous ``(B, C, T)`` inputs avoid a transposed copy (URWKV's
    spatial mixing produces them directly from its projections). Computed in float64 for float64 inputs, else in
    float32 (half and bfloat16 inputs are upcast, as the official wrapper does); returned in the dtype of ``k``.
    """
    b, c, t = k.shape
    work = torch.float64 if k.dtype == torch.float64 else torch.float32
    w, u = w.to(work), u.to(work)
    kw, vw = k.to(work).contiguous(), v.to(work).contiguous()  # a copy only for other layouts or dtypes
    step = max(1, _SLICE_ELEMENTS // max(1, b * t))
    if step >= c:
        return _bi_wkv(w, u, kw, vw).to(k.dtype)
    parts = [_bi_wkv(w[i : i + step], u[i : i + step], kw[:, i : i + step], vw[:, i : i + step])
             for i in range(0, c, step)]
    return torch.cat(parts, dim=1).to(k.dtype)


def _chunks(x: Tensor, n: int, length: int, fill: float) -> Tensor:
    """``(..., T)`` -> ``(..., n, length)``, padding the tail of the last chunk with ``fill``."""
    pad = n * length - x.shape[-1]
    if pad:
        x = F.pad(x, (0, pad), value=fill)
    return x.unflatten(-1, (n, length))


class _Decays:
    """Decay factors of one channel slice for chunks of ``length`` tokens (``w``, ``u`` are ``(C,)``)."""

    def __init__(self, w: Tensor, u: Tensor, n: int, length: int) -> None:
        w3 = w[:, None, None]  # (C, 1, 1) against (B, C, N, L)
        pos = torch.arange(length, device=w.device, dtype=w.dtype)
        self.plus, self.minus = (w3 * pos).exp(), (-w3 * pos).exp()  # e^(+-w p), (C, 1, L)
        self.chunk = (-w * length).exp()[:, None]  # (C, 1): e^-wL, decay over one chunk
        self.step, self.bonus = w3.exp(), u[:, None, None].exp()  # e^w, e^u
        idx = torch.arange(n, device=w.device)
        gap = (idx[:, None] - idx[None, :]).to(w.dtype)  # n - n'
        lower = idx[:, None] > idx[None, :]
        self.left = torch.where(lower, -w3 * length * (gap - 1), -math.inf).exp()  # (C, N, N') earlier chunks
        self.right = torch.where(lower.t(), w3 * length * (gap + 1), -math.inf).exp()  # later chunks


def _weighted_sums(x: Tensor, d: _Decays) -> Tensor:
    """``sum_j W_ij x_j + e^u x_i`` for every token ``i`` of ``x`` ``(B, C, N, L)`` (weights already in ``x``).

    left:  e^-wp (e^w sum_{q<p} P_q + left_state),  P_q = x_q e^wq
    right: e^+wp (sum_{q>p} Q_q + e^-wL right_state + (1 - e^w) sum_{0<q<=p} Q_q),  Q_q = x_q e^-wq
         = e^+wp (right_total + e^-wL right_state - (1 - e^w) Q_0 - e^w sum_{q<=p} Q_q)
    The in-place updates only touch cumsum outputs (autograd keeps none of them; the totals are copies).
    """
    p_terms = x * d.plus
    out = p_terms.cumsum(dim=-1)
    left_total = out[..., -1].clone() * d.chunk  # (B, C, N): chunk seen from the next chunk's start
    left_state = (d.left * left_total.unsqueeze(-2)).sum(dim=-1)  # (B, C, N): tokens of earlier chunks
    out.sub_(p_terms).mul_(d.step).add_(left_state.unsqueeze(-1)).mul_(d.minus)
    del p_terms

    q_terms = x * d.minus
    right = q_terms.cumsum(dim=-1)
    right_total = right[..., -1].clone()  # chunk seen from its own start
    right_state = (d.right * right_total.unsqueeze(-2)).sum(dim=-1)  # tokens of later chunks
    edge = right_total + right_state * d.chunk - q_terms[..., 0] * (1 - d.step[..., 0])
    del q_terms
    right.mul_(-d.step).add_(edge.unsqueeze(-1))
    return out.addcmul_(right, d.plus).addcmul_(x, d.bonus)


def _bi_wkv(w: Tensor, u: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """:func:`bi_wkv_channels_first` on one channel slice: ``(B, C, T)`` keys and values, ``(C,)`` w, u."""
    t = k.shape[-1]
    length = chunk_length(t)
    n = -(-t // length)  # non-empty chunks (<= 32)
    ref = k.detach().amax(dim=-1, keepdim=True)  # (B, C, 1): every weight is scaled by e^-ref
    kc = _chunks(k - ref, n, length, -math.inf)  # (B, C, N, L), padding weighs e^-inf = 0
    a = kc.exp()
    decays = _Decays(w, u, n, length)
    num = _weighted_sums(a * _chunks(v, n, length, 0.0), decays).flatten(-2)[..., :t]
    den = _weighted_sums(a, decays).flatten(-2)[..., :t]
    offset = _kernel_offset(w.detach()[:, None, None], u.detach()[:, None, None], kc.detach(), n, length)
    return num / den.add_(offset.flatten(-2)[..., :t].exp_().mul_(EPS))


@torch.no_grad()
def _kernel_offset(w: Tensor, u: Tensor, kc: Tensor, n: int, length: int) -> Tensor:
    """The kernel's rescaling offset ``no_i = max(o1_i, u + k_i, o2_i)`` per token, ``(B, C, N, L)``.

    ``o2`` (left sums) is the largest log-weight of the terms already accumulated, ``o1`` (right sums) the running
    maximum the kernel keeps while it moves right, which still remembers tokens it has subtracted again. Treated as a
    constant (no gradient), as its only use is the ``1e-6`` term. ``w``, ``u`` are ``(C, 1, 1)``.
    """
    wi = w * torch.arange(n * length, device=kc.device, dtype=kc.dtype).view(n, length)  # w i, i global

    alpha = kc + wi  # k_j + w j
    earlier = F.pad(alpha.amax(dim=-1)[..., :-1], (1, 0), value=-math.inf).cummax(dim=-1).values  # j < s
    o2 = F.pad(alpha[..., :-1], (1, 0), value=-math.inf).cummax(dim=-1).values  # s <= j < i
    del alpha
    o2.add_(w).clamp_(min=earlier.unsqueeze(-1)).sub_(wi)

    beta = kc - wi  # k_j - w j
    later = beta.amax(dim=-1).flip(-1).cummax(dim=-1).values.flip(-1)  # j >= s
    beta[..., 0] = -math.inf
    o1 = beta.cummax(dim=-1).values  # s < j <= i
    del beta
    o1.add_(w).clamp_(min=later.unsqueeze(-1)).add_(wi)
    torch.maximum(o1, o2, out=o1)
    return o1.clamp_(min=kc + u)
