"""IGFE: the illumination-guided feature enhancer injected into the backbone's decoder.

A stack of photometry cross-attention blocks (TAMI-reference section 1.3) applied at the injection point:
``z' = z + gamma * Block_L(...Block_1(z, F_en, I_ip)...)`` with a per-channel ``gamma`` initialised to exactly 0, so
a fresh adapter leaves the backbone's output unchanged bit for bit.

One block, for ``x`` ``(B, C, h, w)``, cue ``y = F_en`` and prior ``p = I_ip``:

1. ``x <- conv1x1(x)`` (C -> E), ``y <- conv1x1(y)`` (illu_dim -> E);
2. conditional position encodings ``x <- x + dw3x3(x)``, ``y <- y + dw3x3(y)``;
3. ``x <- x + Attn(LN(x), LN(y), p)`` (LayerNorm over channels, eps 1e-6);
4. ``x <- x + FFN(LN(x))`` (gated depth-wise FFN, hidden ``2 * floor(E * expansion / 2)``, GELU gate);
5. ``x <- conv1x1(x)`` (E -> C).

Attention works on a pooled token grid (``N`` tokens): queries from the pooled ``x``, keys/values from ``y``; 4 heads;
1-D rotary position embedding over the flattened token index; logits ``QK^T * tau_head + M`` with the attention bias

    M_k(i, j) = d_k * (w0 * |g_i - g_j| + w1 * alpha * |p_i - p_j| * -ln(1 - |p_i - p_j| + 1e-6)),
    d_k = ln(1 - 2^-(2 + heads_range * k / heads)),

(``g`` = token coordinates, ``p`` = the detached prior at the token, alpha = 200, w0 = w1 = 1 at init); top-k
selective attention keeps the ``floor(sqrt(N))`` largest logits per query. The output is upsampled back to
``(h, w)``, plus a depth-wise 5x5 locally-enhanced positional encoding of ``x``, then a 1x1 conv.

Resolution: the token grid is the injection map pooled by ``pool`` (cells of ``pool x pool``), shrunk further when it
would exceed ``max_tokens``. Token coordinates are measured in units of an un-capped cell, so the positional
bias means the same image distance at training crops and at full frames. Attention and bias are computed in
chunks of ``chunk`` queries: the ``(B, heads, chunk, N)`` block is the largest temporary. When all queries fit one
chunk, the weight-free parts of the bias (distances, photometric term) are computed once for all blocks. The blocks
run in channels-last layout (fast depth-wise convolutions on CPU); the result is returned in the layout of ``z``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .ops import LayerNorm2d, Pointwise, resize_to, scaled_grid


def rope_tables(count: int, head_dim: int, device: torch.device, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """cos/sin ``(count, head_dim / 2)`` for positions ``0..count-1`` and frequencies ``10000^-(j / (n - 1))``."""
    n = head_dim // 2
    steps = torch.linspace(0, 1, n, device=device, dtype=dtype)  # exponents j / (n - 1); a single pair gets 0
    exponents = steps if n > 1 else torch.zeros_like(steps)
    freqs = 10000.0 ** (-exponents)
    angles = torch.arange(count, device=device, dtype=dtype)[:, None] * freqs[None]
    return angles.cos(), angles.sin()


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate interleaved pairs ``(x_2j, x_2j+1)`` of ``x`` ``(..., N, d)`` by the angles of ``cos``/``sin``."""
    even, odd = x[..., 0::2], x[..., 1::2]
    return torch.stack([even * cos - odd * sin, even * sin + odd * cos], dim=-1).flatten(-2)


def head_decays(heads: int, heads_range: float) -> Tensor:
    """``d_k = ln(1 - 2^-(2 + heads_range * k / heads))`` (negative), one per head."""
    k = torch.arange(heads, dtype=torch.float64)
    return torch.log1p(-(2.0 ** (-(2.0 + heads_range * k / heads)))).float()


def bias_terms(coords_q: Tensor, coords: Tensor, prior_q: Tensor, prior: Tensor) -> tuple[Tensor, Tensor]:
    """The learned-weight-free parts of the attention bias for a chunk of queries.

    Args:
        coords_q: ``(q, 2)`` query coordinates; coords: ``(N, 2)`` key coordinates.
        prior_q: ``(B, q)`` prior at the queries; prior: ``(B, N)`` at the keys; both in [0, 1].

    Returns:
        ``|g_i - g_j|`` ``(q, N)`` and ``|p_i - p_j| * -ln(1 - |p_i - p_j| + 1e-6)`` ``(B, q, N)``.
    """
    dist = torch.cdist(coords_q, coords)
    diff = (prior_q[:, :, None] - prior[:, None, :]).abs()
    return dist, diff * -torch.log1p(1e-6 - diff)


def head_free_bias(dist: Tensor, photometric: Tensor, weights: Tensor, alpha: float) -> Tensor:
    """``w0 * dist + w1 * alpha * photometric`` ``(B, 1, q, N)`` from :func:`bias_terms`; times ``d_k`` it is the
    bias of head ``k``."""
    return (weights[0] * dist + (weights[1] * alpha) * photometric).unsqueeze(1)


def attention_bias(
    coords_q: Tensor, coords: Tensor, prior_q: Tensor, prior: Tensor, decays: Tensor, weights: Tensor, alpha: float
) -> Tensor:
    """Distance + photometric attention bias ``(B, heads, q, N)`` for a chunk of queries (shapes as in
    :func:`bias_terms`; decays ``(heads,)`` negative head decays, weights ``(w0, w1)``, alpha photometric scale)."""
    return decays.view(1, -1, 1, 1) * head_free_bias(*bias_terms(coords_q, coords, prior_q, prior), weights, alpha)


class PhotometryAttention(nn.Module):
    """Photometry cross-attention with top-k selection (queries: features, keys/values: illumination cue)."""

    def __init__(self, dim: int, heads: int, alpha: float, heads_range: float, temperature_init: float) -> None:
        super().__init__()
        self.heads = heads
        self.alpha = alpha
        self.lepe = nn.Conv2d(dim, dim, 5, padding=2, groups=dim)
        self.q_proj = Pointwise(dim, dim)
        self.q_dw = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)
        self.kv_proj = Pointwise(dim, 2 * dim)
        self.kv_conv = nn.Conv2d(2 * dim, 2 * dim, 3, padding=1, groups=dim)
        self.out = Pointwise(dim, dim)
        self.temperature = nn.Parameter(torch.full((heads,), float(temperature_init)))
        self.prior_weight = nn.Parameter(torch.ones(2))
        self.register_buffer("decays", head_decays(heads, heads_range), persistent=False)
        for conv in (self.q_proj, self.kv_proj):
            nn.init.xavier_normal_(conv.weight, gain=2**-2.5)
        nn.init.orthogonal_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: Tensor, y: Tensor, prior: Tensor, coords: Tensor, chunk: int,
                terms: tuple[Tensor, Tensor] | None = None) -> Tensor:
        """``x`` ``(B, E, h, w)``, ``y`` ``(B, E, h2, w2)``, prior ``(B, 1, h2, w2)`` in [0, 1], coords
        ``(h2 * w2, 2)``; ``terms``: the :func:`bias_terms` of all queries when they fit one chunk (shared by the
        blocks, which see the same prior and grid)."""
        batch, dim, h, w = x.shape
        grid = tuple(y.shape[-2:])
        n = grid[0] * grid[1]
        lepe = self.lepe(x)
        q = self.q_dw(self.q_proj(resize_to(x, grid)))
        k, v = self.kv_conv(self.kv_proj(y)).chunk(2, dim=1)
        q, k, v = (t.reshape(batch, self.heads, dim // self.heads, n).transpose(-1, -2) for t in (q, k, v))
        cos, sin = rope_tables(n, dim // self.heads, x.device, x.dtype)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        q = q * self.temperature.view(1, -1, 1, 1)
        p = prior.reshape(batch, n)
        top = min(n, max(1, math.isqrt(n)))
        kt = k.transpose(-1, -2).contiguous()  # a transposed view makes the product about twice as slow on CPU
        flat_v = v.reshape(-1, v.shape[-1])  # (B * heads * N, d)
        decays = self.decays.view(1, -1, 1, 1)
        offsets = (torch.arange(batch * self.heads, device=x.device) * n).view(batch, self.heads, 1, 1)
        outs = []
        for start in range(0, n, max(1, chunk)):
            stop = min(n, start + chunk)
            chunk_terms = terms if terms is not None else bias_terms(coords[start:stop], coords, p[:, start:stop], p)
            base = head_free_bias(*chunk_terms, self.prior_weight, self.alpha)
            logits = torch.addcmul(torch.matmul(q[:, :, start:stop], kt), decays, base)  # (B, heads, q, N)
            if top >= n:
                outs.append(torch.matmul(logits.softmax(-1), v))
                continue
            best, index = logits.topk(top, dim=-1, sorted=False)  # the order of the kept logits does not matter
            picked = flat_v.index_select(0, (index + offsets).reshape(-1)).view(*index.shape, -1)
            outs.append(torch.matmul(best.softmax(-1).unsqueeze(-2), picked).squeeze(-2))
        attn = torch.cat(outs, dim=2).transpose(-1, -2).reshape(batch, dim, *grid)
        attn = attn.contiguous(memory_format=torch.channels_last)  # keeps the full-size sum channels-last (fast 1x1)
        return self.out(resize_to(attn, (h, w)) + lepe)


class GatedFFN(nn.Module):
    """1x1 conv to ``2m``, depth-wise 3x3, ``GELU(a) * b``, 1x1 conv back (``m = floor(dim * expansion / 2)``)."""

    def __init__(self, dim: int, expansion: float) -> None:
        super().__init__()
        hidden = int(dim * expansion / 2)
        self.project_in = Pointwise(dim, 2 * hidden)
        self.dwconv = nn.Conv2d(2 * hidden, 2 * hidden, 3, padding=1, groups=2 * hidden)
        self.project_out = Pointwise(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        a, b = self.dwconv(self.project_in(x)).chunk(2, dim=1)
        return self.project_out(F.gelu(a) * b)


class IGFEBlock(nn.Module):
    """One photometry cross-attention block ``(B, C, h, w) -> (B, C, h, w)`` (no outer residual)."""

    def __init__(
        self,
        channels: int,
        cue_dim: int,
        dim: int,
        heads: int,
        ffn_expansion: float,
        alpha: float,
        heads_range: float,
        temperature_init: float,
    ) -> None:
        super().__init__()
        self.conv_in = Pointwise(channels, dim)
        self.conv_cue = Pointwise(cue_dim, dim)
        self.cpe_x = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)
        self.cpe_y = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)
        self.norm_x = LayerNorm2d(dim)
        self.norm_y = LayerNorm2d(dim)
        self.attn = PhotometryAttention(dim, heads, alpha, heads_range, temperature_init)
        self.norm_ffn = LayerNorm2d(dim)
        self.ffn = GatedFFN(dim, ffn_expansion)
        self.conv_out = Pointwise(dim, channels)

    def forward(self, x: Tensor, cue: Tensor, prior: Tensor, coords: Tensor, chunk: int,
                terms: tuple[Tensor, Tensor] | None = None) -> Tensor:
        """``x`` ``(B, C, h, w)``; cue ``(B, illu_dim, h2, w2)`` and prior ``(B, 1, h2, w2)`` (in [0, 1]) on the
        token grid; ``terms`` as in :meth:`PhotometryAttention.forward`."""
        x = self.conv_in(x)
        y = self.conv_cue(cue)
        x = x + self.cpe_x(x)
        y = y + self.cpe_y(y)
        x = x + self.attn(self.norm_x(x), self.norm_y(y), prior, coords, chunk, terms)
        x = x + self.ffn(self.norm_ffn(x))
        return self.conv_out(x)


class IGFE(nn.Module):
    """A stack of :class:`IGFEBlock` with one outer residual ``z + gamma * x_L`` (gamma zero at init).

    Args:
        channels: injection width ``C``; cue_dim: ``illu_dim``; blocks: ``L``; dim: embedding width ``E``
            (multiple of ``2 * heads``); pool: token cell size on the injection map; max_tokens: token cap
            (``None``: none); chunk: queries per attention chunk; other arguments as in the module docstring.
    """

    def __init__(
        self,
        channels: int,
        cue_dim: int,
        *,
        blocks: int,
        dim: int,
        heads: int = 4,
        ffn_expansion: float = 8 / 3,
        pool: int = 2,
        max_tokens: int | None = None,
        alpha: float = 200.0,
        heads_range: float = 4.0,
        temperature_init: float = 1.0,
        chunk: int = 1024,
    ) -> None:
        super().__init__()
        self.pool = pool
        self.max_tokens = max_tokens
        self.chunk = chunk
        self.blocks = nn.ModuleList(
            IGFEBlock(channels, cue_dim, dim, heads, ffn_expansion, alpha, heads_range, temperature_init)
            for _ in range(blocks)
        )
        self.gamma = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def token_grid(self, height: int, width: int) -> tuple[int, int]:
        """Token grid for an injection map of ``height x width``."""
        return scaled_grid(height, width, 1.0 / self.pool, self.max_tokens)

    def forward(self, z: Tensor, cue: Tensor, prior: Tensor) -> Tensor:
        """Enhance ``z`` ``(B, C, h, w)`` with ``F_en`` ``(B, illu_dim, *, *)`` and ``I_ip`` ``(B, 1, *, *)``.

        Returns:
            ``z + gamma * IGFE(z)`` ``(B, C, h, w)`` in the memory layout of ``z`` (so that a zero ``gamma``
            reproduces the backbone bit for bit).
        """
        h, w = z.shape[-2:]
        grid = self.token_grid(h, w)
        # channels-last: depth-wise convolutions are several times faster on CPU in this layout
        cl = torch.channels_last
        cue = resize_to(cue, grid).contiguous(memory_format=cl)
        prior = resize_to(prior, grid).detach().clamp(0.0, 1.0)  # steers the attention bias only, without gradient
        rows = torch.arange(grid[0], device=z.device, dtype=z.dtype) * (h / grid[0] / self.pool)
        cols = torch.arange(grid[1], device=z.device, dtype=z.dtype) * (w / grid[1] / self.pool)
        coords = torch.stack(torch.meshgrid(rows, cols, indexing="ij"), dim=-1).reshape(-1, 2)
        flat = prior.reshape(prior.shape[0], -1)
        terms = bias_terms(coords, coords, flat, flat) if flat.shape[1] <= self.chunk else None  # one chunk: share
        x = z.contiguous(memory_format=cl)
        for block in self.blocks:
            x = block(x, cue, prior, coords, self.chunk, terms)
        layout = cl if z.is_contiguous(memory_format=cl) and not z.is_contiguous() else torch.contiguous_format
        return torch.addcmul(z, self.gamma, x).contiguous(memory_format=layout)
