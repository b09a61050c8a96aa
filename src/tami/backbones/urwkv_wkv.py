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
    """Bidirectional WKV of the official URWKV kernel.

    Args:
        w: ``(C,)`` decay per channel (URWKV passes ``spatial_decay / T``).
        u: ``(C,)`` bonus of the token itself (URWKV passes ``spatial_first / T``).
        k: ``(B, T, C)`` keys.
        v: ``(B, T, C)`` values.

    Returns:
        ``(B, T, C)`` (a transposed view of a ``(B, C, T)`` tensor) in the dtype of ``k``; computed in float64 for
        float64 inputs, else in float32 (half and bfloat16 inputs are upcast, as the official wrapper does).
    """
    b, t, c = k.shape
    work = torch.float64 if k.dtype == torch.float64 else torch.float32
    w, u = w.to(work), u.to(work)
    kt = k.to(work).transpose(1, 2).contiguous()  # (B, C, T): the scans run along the contiguous dimension
    vt = v.to(work).transpose(1, 2).contiguous()
    step = max(1, _SLICE_ELEMENTS // max(1, b * t))
    parts = [_bi_wkv(w[i : i + step], u[i : i + step], kt[:, i : i + step], vt[:, i : i + step])
             for i in range(0, c, step)]
    out = parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
    return out.transpose(1, 2).to(k.dtype)


def _chunks(x: Tensor, n: int, length: int, fill: float) -> Tensor:
    """``(..., T)`` -> ``(..., n, length)``, padding the tail of the last chunk with ``fill``."""
    pad = n * length - x.shape[-1]
    if pad:
        x = F.pad(x, (0, pad), value=fill)
    return x.unflatten(-1, (n, length))


def _bi_wkv(w: Tensor, u: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """:func:`bi_wkv` on ``(B, C, T)`` keys and values with ``(C,)`` w, u; returns ``(B, C, T)``."""
    t = k.shape[-1]
    length = chunk_length(t)
    n = -(-t // length)  # non-empty chunks (<= 32)
    w3, u3 = w[:, None, None], u[:, None, None]  # (C, 1, 1) against (..., C, N, L)
    ref = k.detach().amax(dim=-1, keepdim=True)  # (B, C, 1): every weight is scaled by e^-ref
    kc = _chunks(k - ref, n, length, -math.inf)  # (B, C, N, L), padding weighs e^-inf = 0
    a = kc.exp()
    x = torch.stack((a * _chunks(v, n, length, 0.0), a))  # (2, B, C, N, L): numerator and denominator terms

    pos = torch.arange(length, device=k.device, dtype=k.dtype)
    e_plus, e_minus = (w3 * pos).exp(), (-w3 * pos).exp()  # (C, 1, L)
    e_chunk = (-w * length).exp()[:, None]  # (C, 1) decay over one chunk
    e_w, e_u = w3.exp(), u3.exp()

    idx = torch.arange(n, device=k.device)
    gap = (idx[:, None] - idx[None, :]).to(k.dtype)  # n - n'
    lower = idx[:, None] > idx[None, :]
    decay_left = torch.where(lower, -w3 * length * (gap - 1), -math.inf).exp()  # (C, N, N')
    decay_right = torch.where(lower.t(), w3 * length * (gap + 1), -math.inf).exp()

    # left:  e^-wp (e^w sum_{q<p} P_q + left_state),  P_q = x_q e^wq
    # right: e^+wp (sum_{q>p} Q_q + e^-wL right_state + (1 - e^w) sum_{0<q<=p} Q_q),  Q_q = x_q e^-wq
    #      = e^+wp (right_total + e^-wL right_state - (1 - e^w) Q_0 - e^w sum_{q<=p} Q_q)
    # The in-place updates only touch cumsum outputs (autograd keeps none of them; the totals are copies).
    p_terms = x * e_plus
    out = p_terms.cumsum(dim=-1)
    left_total = out[..., -1].clone() * e_chunk  # (2, B, C, N): chunk seen from the next chunk's start
    left_state = (decay_left * left_total.unsqueeze(-2)).sum(dim=-1)  # (2, B, C, N): tokens of earlier chunks
    out.sub_(p_terms).mul_(e_w).add_(left_state.unsqueeze(-1)).mul_(e_minus)
    del p_terms

    q_terms = x * e_minus
    right = q_terms.cumsum(dim=-1)
    right_total = right[..., -1].clone()  # chunk seen from its own start
    right_state = (decay_right * right_total.unsqueeze(-2)).sum(dim=-1)  # tokens of later chunks
    edge = right_total + right_state * e_chunk - q_terms[..., 0] * (1 - e_w[..., 0])
    del q_terms
    right.mul_(-e_w).add_(edge.unsqueeze(-1))
    out.addcmul_(right, e_plus).addcmul_(x, e_u)
    out = out.flatten(-2)[..., :t]  # (2, B, C, T)
    offset = _kernel_offset(w3.detach(), u3.detach(), kc.detach(), n, length).flatten(-2)[..., :t]
    return out[0] / out[1].add(offset.exp_().mul_(EPS))


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
