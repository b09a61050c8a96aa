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
come out of cumulative maxima. Memory is linear in ``T`` (no ``T x T`` or ``L x L`` matrices) and bounded further
by processing channel slices of at most ``_SLICE_ELEMENTS`` elements at a time; the cumulative sums accumulate in
double precision on CPU. Works on any device and under autograd.
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
    """Bidirectional WKV of the official URWKV kernel.

    Args:
        w: ``(C,)`` decay per channel (URWKV passes ``spatial_decay / T``).
        u: ``(C,)`` bonus of the token itself (URWKV passes ``spatial_first / T``).
        k: ``(B, T, C)`` keys.
        v: ``(B, T, C)`` values.

    Returns:
        ``(B, T, C)`` in the dtype of ``k``; computed in float64 for float64 inputs, else in float32 (half and
        bfloat16 inputs are upcast, as the official wrapper does).
    """
    b, t, c = k.shape
    work = torch.float64 if k.dtype == torch.float64 else torch.float32
    step = max(1, _SLICE_ELEMENTS // max(1, b * t))
    if step >= c:
        return _bi_wkv(w.to(work), u.to(work), k.to(work), v.to(work)).to(k.dtype)
    parts = [
        _bi_wkv(w[i : i + step].to(work), u[i : i + step].to(work), k[..., i : i + step].to(work),
                v[..., i : i + step].to(work))
        for i in range(0, c, step)
    ]
    return torch.cat(parts, dim=-1).to(k.dtype)


def _chunks(x: Tensor, n: int, length: int, fill: float) -> Tensor:
    """``(..., B, T, C)`` -> ``(..., B, n, length, C)``, padding the tail of the last chunk with ``fill``."""
    pad = n * length - x.shape[-2]
    if pad:
        x = F.pad(x, (0, 0, 0, pad), value=fill)
    return x.unflatten(-2, (n, length))


def _bi_wkv(w: Tensor, u: Tensor, k: Tensor, v: Tensor) -> Tensor:
    bsz, t, c = k.shape
    length = chunk_length(t)
    n = -(-t // length)  # non-empty chunks (<= 32)
    ref = k.detach().amax(dim=1, keepdim=True)  # (B, 1, C): every weight is scaled by e^-ref
    kc = _chunks(k - ref, n, length, -math.inf)  # (B, N, L, C), padding weighs e^-inf = 0
    a = kc.exp()
    x = torch.stack((a * _chunks(v, n, length, 0.0), a))  # (2, B, N, L, C): numerator and denominator terms

    pos = torch.arange(length, device=k.device, dtype=k.dtype)[:, None]  # (L, 1)
    e_plus, e_minus = (w * pos).exp(), (-w * pos).exp()  # (L, C)
    e_chunk = (-w * length).exp()  # (C,) decay over one chunk
    e_w, e_u = w.exp(), u.exp()

    p_terms = x * e_plus
    q_terms = x * e_minus
    cum_p = p_terms.cumsum(dim=3)
    cum_q = q_terms.cumsum(dim=3)
    left_total = cum_p[:, :, :, -1] * e_chunk  # (2, B, N, C): chunk seen from the next chunk's start
    right_total = cum_q[:, :, :, -1]  # chunk seen from its own start

    idx = torch.arange(n, device=k.device)
    gap = (idx[:, None] - idx[None, :]).to(k.dtype)  # n - n'
    lower = (idx[:, None] > idx[None, :])[..., None]
    decay_left = torch.where(lower, -w * length * (gap - 1)[..., None], -math.inf).exp()  # (N, N', C)
    decay_right = torch.where(lower.transpose(0, 1), w * length * (gap + 1)[..., None], -math.inf).exp()
    left_state = (decay_left * left_total.unsqueeze(2)).sum(dim=3)  # (2, B, N, C): tokens of earlier chunks
    right_state = (decay_right * right_total.unsqueeze(2)).sum(dim=3)  # tokens of later chunks

    # left:  e^-wp (e^w * sum_{q<p} P_q + left_state)
    # right: e^+wp (sum_{q>p} Q_q + e^-wL right_state + (1 - e^w) sum_{0<q<=p} Q_q)
    #      = e^+wp (right_total + e^-wL right_state - (1 - e^w) Q_0 - e^w sum_{q<=p} Q_q)
    left = (cum_p - p_terms) * e_w + left_state.unsqueeze(3)
    edge = right_total + right_state * e_chunk - q_terms[:, :, :, 0] * (1 - e_w)
    right = edge.unsqueeze(3) - cum_q * e_w
    out = left * e_minus + right * e_plus + x * e_u
    out = out.flatten(2, 3)[:, :, :t]  # (2, B, T, C)
    offset = _kernel_offset(w, u, kc, n, length).flatten(1, 2)[:, :t]
    return out[0] / (out[1] + EPS * offset.exp())


def _kernel_offset(w: Tensor, u: Tensor, kc: Tensor, n: int, length: int) -> Tensor:
    """The kernel's rescaling offset ``no_i = max(o1_i, u + k_i, o2_i)`` per token, ``(B, N, L, C)``.

    ``o2`` (left sums) is the largest log-weight of the terms already accumulated, ``o1`` (right sums) the running
    maximum the kernel keeps while it moves right, which still remembers tokens it has subtracted again.
    """
    pos = torch.arange(n * length, device=kc.device, dtype=kc.dtype).view(n, length, 1)  # global index i
    neg = torch.full_like(kc[:, :, :1], -math.inf)
    wi = w * pos

    alpha = kc + wi  # k_j + w j
    earlier = alpha.amax(dim=2)  # (B, N, C)
    earlier = torch.cat((neg[:, :1, 0].expand_as(earlier[:, :1]), earlier[:, :-1]), dim=1).cummax(dim=1).values
    inside = torch.cat((neg, alpha[:, :, :-1]), dim=2).cummax(dim=2).values + w  # max over s <= j < i
    o2 = torch.maximum(earlier.unsqueeze(2), inside) - wi

    beta = kc - wi  # k_j - w j
    later = beta.amax(dim=2).flip(1).cummax(dim=1).values.flip(1)  # max over j >= s
    passed = torch.cat((neg, beta[:, :, 1:]), dim=2).cummax(dim=2).values + w  # max over s < j <= i
    o1 = torch.maximum(later.unsqueeze(2), passed) + wi
    return torch.maximum(torch.maximum(o1, o2), kc + u)
