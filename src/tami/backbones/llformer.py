"""LLFormer (axis-based transformer for ultra-high-definition low-light enhancement), split for temporal adaptation.

Paper: Wang, Zhang, Shen, Luo, Stenger, Lu, "Ultra-High-Definition Low-Light Image Enhancement: A Benchmark and
Transformer-Based Method", AAAI 2023. Official code: https://github.com/TaoWangzj/LLFormer (``model/LLFormer.py``),
MIT license. Re-implemented from the paper and that code's layer names, order and formulas; state_dict keys equal the
official ones. Official checkpoints are ``{'epoch', 'state_dict', 'optimizer'}`` dicts with ``module.`` prefixes;
:func:`tami.backbones.load` unwraps them.

The axis attention computes the official softmax in chunks of rows/columns (the learned ``fac`` scales the queries),
so its memory stays bounded at 4K/8K; it equals the official formula to float rounding. The official
class's ``skip_2_1`` convolution is built (it is in every checkpoint) but, as there, never used.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import InputError
from .base import Adapt, Backbone, Encoded
from .registry import BACKBONES, register_preset


class WithBias_LayerNorm(nn.Module):  # noqa: N801 - official class name
    """Layer norm over channels of a ``(B, C, H, W)`` map, with weight and bias (eps 1e-5)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x: Tensor) -> Tensor:
        y = F.layer_norm(x.permute(0, 2, 3, 1), self.weight.shape, self.weight, self.bias, eps=1e-5)
        return y.permute(0, 3, 1, 2)


class BiasFree_LayerNorm(nn.Module):  # noqa: N801 - official class name
    """``x / sqrt(var(x) + 1e-5) · weight`` over channels (the mean is not subtracted, as in the official code)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        var = x.var(dim=1, keepdim=True, unbiased=False)
        return x / torch.sqrt(var + 1e-5) * self.weight[:, None, None]


class LayerNorm(nn.Module):
    """Channel layer norm of type ``'WithBias'`` or ``'BiasFree'`` (parameters under ``body``)."""

    def __init__(self, dim: int, LayerNorm_type: str) -> None:  # noqa: N803 - official argument name
        super().__init__()
        self.body = BiasFree_LayerNorm(dim) if LayerNorm_type == "BiasFree" else WithBias_LayerNorm(dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


_CHUNK = 1 << 25  # attention-matrix elements per chunk of sequences (128 MiB in float32)


def softmax_attention(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """``softmax(q kᵀ) v`` over a batch of sequences ``(S, L, d)`` (no scaling: LLFormer's logits come scaled).

    Plain matrix products in chunks of sequences, so the ``(chunk, L, L)`` logits stay within 128 MiB whatever the
    image size. Measured faster than ``scaled_dot_product_attention`` for these short heads on CPU and on an H200,
    where a released-size forward of a 1920×1088 frame peaked at 21 GiB with SDPA against 4 GiB with this
    (``benchmarks/gpu_snr_llformer.py``).
    """
    step = max(1, _CHUNK // (q.shape[-2] * k.shape[-2]))
    parts = [
        torch.softmax(q[i : i + step] @ k[i : i + step].transpose(-2, -1), dim=-1) @ v[i : i + step]
        for i in range(0, q.shape[0], step)
    ]
    return parts[0] if len(parts) == 1 else torch.cat(parts)


class AxisAttention(nn.Module):
    """Multi-head self-attention along the last (width) axis of each row, with cosine-similarity logits ·``fac``."""

    def __init__(self, num_dims: int, num_heads: int, bias: bool) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.q1 = nn.Conv2d(num_dims, num_dims * 3, kernel_size=1, bias=bias)
        self.q2 = nn.Conv2d(num_dims * 3, num_dims * 3, 3, padding=1, groups=num_dims * 3, bias=bias)
        self.q3 = nn.Conv2d(num_dims * 3, num_dims * 3, 3, padding=1, groups=num_dims * 3, bias=bias)
        self.fac = nn.Parameter(torch.ones(1))
        self.fin = nn.Conv2d(num_dims, num_dims, kernel_size=1, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        heads = self.num_heads
        dh = c // heads

        def rows(t: Tensor) -> Tensor:  # (n, heads·dh, h, w) -> (n·heads·h, w, dh)
            return t.reshape(n, heads, dh, h, w).permute(0, 1, 3, 4, 2).reshape(n * heads * h, w, dh)

        q, k, v = (rows(t) for t in self.q3(self.q2(self.q1(x))).chunk(3, dim=1))
        q = F.normalize(q, dim=-1) * self.fac
        k = F.normalize(k, dim=-1)
        out = softmax_attention(q, k, v).reshape(n, heads, h, w, dh).permute(0, 1, 4, 2, 3).reshape(n, c, h, w)
        return self.fin(out)


class AxisAttentionPair(nn.Module):
    """Row attention, then column attention (the official ``NextAttentionZ``; its convolutions have biases)."""

    def __init__(self, num_dims: int, num_heads: int = 1) -> None:
        super().__init__()
        if num_dims % num_heads:
            raise InputError(f"llformer: {num_dims} channels cannot be split into {num_heads} heads; fix heads")
        self.row_att = AxisAttention(num_dims, num_heads, bias=True)
        self.col_att = AxisAttention(num_dims, num_heads, bias=True)

    def forward(self, x: Tensor) -> Tensor:
        x = self.row_att(x)
        return self.col_att(x.transpose(-2, -1)).transpose(-2, -1)


class FeedForward(nn.Module):
    """Dual gated feed-forward: ``gelu(x2)·x1 + gelu(x1)·x2`` after a 1×1 and a depth-wise 3×3 convolution."""

    def __init__(self, dim: int, ffn_expansion_factor: float, bias: bool) -> None:
        super().__init__()
        hidden = int(dim * ffn_expansion_factor)
        self.project_in = nn.Conv2d(dim, hidden * 2, kernel_size=1, bias=bias)
        self.dwconv = nn.Conv2d(hidden * 2, hidden * 2, 3, padding=1, groups=hidden * 2, bias=bias)
        self.project_out = nn.Conv2d(hidden, dim, kernel_size=1, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        x1, x2 = self.dwconv(self.project_in(x)).chunk(2, dim=1)
        return self.project_out(F.gelu(x2) * x1 + F.gelu(x1) * x2)


class TransformerBlock(nn.Module):
    """Axis-based transformer block: ``x + attn(norm1(x))``, then ``x + ffn(norm2(x))``."""

    def __init__(
        self, dim: int, num_heads: int, ffn_expansion_factor: float, bias: bool, LayerNorm_type: str  # noqa: N803
    ) -> None:
        super().__init__()
        self.norm1 = LayerNorm(dim, LayerNorm_type)
        self.attn = AxisAttentionPair(dim, num_heads)
        self.norm2 = LayerNorm(dim, LayerNorm_type)
        self.ffn = FeedForward(dim, ffn_expansion_factor, bias)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


class OverlapPatchEmbed(nn.Module):
    """3×3 convolution from the input channels to ``embed_dim``."""

    def __init__(self, in_c: int, embed_dim: int, bias: bool = False) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_c, embed_dim, kernel_size=3, stride=1, padding=1, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x)


class Downsample(nn.Module):
    """3×3 convolution halving the channels, then pixel-unshuffle by 2: ``(B, C, H, W) -> (B, 2C, H/2, W/2)``."""

    def __init__(self, n_feat: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(n_feat, n_feat // 2, 3, 1, 1, bias=False), nn.PixelUnshuffle(2))

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


class Upsample(nn.Module):
    """3×3 convolution doubling the channels, then pixel-shuffle by 2: ``(B, C, H, W) -> (B, C/2, 2H, 2W)``."""

    def __init__(self, n_feat: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(n_feat, n_feat * 2, 3, 1, 1, bias=False), nn.PixelShuffle(2))

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


class LayerFusion(nn.Module):
    """Cross-layer attention fusion: attention across ``N`` stacked layers, residual, then flattened to channels."""

    def __init__(self, in_dim: int, bias: bool = True) -> None:
        super().__init__()
        self.temperature = nn.Parameter(torch.ones(1))
        self.qkv = nn.Conv2d(in_dim, in_dim * 3, kernel_size=1, bias=bias)
        self.qkv_dwconv = nn.Conv2d(in_dim * 3, in_dim * 3, 3, 1, 1, groups=in_dim * 3, bias=bias)
        self.project_out = nn.Conv2d(in_dim, in_dim, kernel_size=1, bias=bias)

    def forward(self, layers: list[Tensor]) -> Tensor:
        """Fuse ``layers`` (``N`` tensors ``(B, C, H, W)``) into ``(B, N·C, H, W)``."""
        x = torch.cat(layers, dim=1)
        b, _, h, w = x.shape
        n = len(layers)
        q, k, v = (t.reshape(b, n, -1) for t in self.qkv_dwconv(self.qkv(x)).chunk(3, dim=1))
        q = F.normalize(q, dim=-1)
        k = F.normalize(k, dim=-1)
        attn = ((q @ k.transpose(-2, -1)) * self.temperature).softmax(dim=-1)
        return self.project_out((attn @ v).reshape(b, -1, h, w)) + x


def _mix(coefficient: Tensor, a: Tensor, b: Tensor) -> Tensor:
    """Per-channel weighted sum ``coefficient[0]·a + coefficient[1]·b``."""
    return coefficient[0][None, :, None, None] * a + coefficient[1][None, :, None, None] * b


@BACKBONES.register("llformer")
class LLFormer(Backbone):
    """LLFormer with the official constructor arguments.

    Defaults are the released configuration (dim 16, num_blocks [2, 4, 8, 16], 2 refinement blocks): 24,549,014
    parameters (the official class's own default, num_blocks [1, 2, 4, 8], is not what was released).

    Injection point: after the ``decoder_level4`` bottleneck (H/16, ``16·dim`` channels), before ``up4_3``;
    ``Encoded.key`` is the bottleneck's input (the output of ``down_4``), and the bottleneck runs in :meth:`decode`.
    """

    arch = "llformer"
    multiple_of = 16
    inject_stride = 16
    detect_keys = ("coefficient_4_3", "layer_fussion.qkv.weight", "decoder_level4.0.attn.row_att.q1.weight")

    def __init__(
        self,
        inp_channels: int = 3,
        out_channels: int = 3,
        dim: int = 16,
        num_blocks: list[int] | tuple[int, ...] = (2, 4, 8, 16),
        num_refinement_blocks: int = 2,
        heads: list[int] | tuple[int, ...] = (1, 2, 4, 8),
        ffn_expansion_factor: float = 2.66,
        bias: bool = False,
        LayerNorm_type: Literal["WithBias", "BiasFree"] = "WithBias",  # noqa: N803 - official argument name
        attention: bool = True,
        skip: bool = False,
    ) -> None:
        super().__init__()
        if LayerNorm_type not in ("WithBias", "BiasFree"):
            raise InputError(f"llformer: LayerNorm_type must be 'WithBias' or 'BiasFree', got {LayerNorm_type!r}")
        if len(num_blocks) != 4 or len(heads) != 4:
            raise InputError(
                f"llformer expects four num_blocks and four heads, got num_blocks={list(num_blocks)}, "
                f"heads={list(heads)}; e.g. num_blocks=[2, 4, 8, 16], heads=[1, 2, 4, 8]"
            )
        self.config: dict[str, Any] = {
            "inp_channels": inp_channels, "out_channels": out_channels, "dim": dim, "num_blocks": list(num_blocks),
            "num_refinement_blocks": num_refinement_blocks, "heads": list(heads),
            "ffn_expansion_factor": ffn_expansion_factor, "bias": bias, "LayerNorm_type": LayerNorm_type,
            "attention": attention, "skip": skip,
        }
        self.inp_channels = inp_channels
        self.in_channels = inp_channels
        self.inject_channels = dim * 16
        self.skip = skip
        nb, hd = num_blocks, heads

        def stage(n: int, width: int, h: int) -> nn.Sequential:
            return nn.Sequential(
                *[TransformerBlock(width, h, ffn_expansion_factor, bias, LayerNorm_type) for _ in range(n)]
            )

        self.coefficient = nn.Parameter(torch.ones(4, 2, dim * 8), requires_grad=attention)
        self.patch_embed = OverlapPatchEmbed(inp_channels, dim)
        self.encoder_1 = stage(nb[0], dim, hd[0])
        self.encoder_2 = stage(nb[0], dim, hd[0])
        self.encoder_3 = stage(nb[0], dim, hd[0])
        self.layer_fussion = LayerFusion(dim * 3)
        self.conv_fuss = nn.Conv2d(dim * 3, dim, kernel_size=1, bias=bias)
        self.latent = stage(nb[0], dim, hd[0])
        self.down_1 = Downsample(dim)
        self.decoder_level1_0 = stage(nb[0], dim * 2, hd[1])
        self.down_2 = Downsample(dim * 2)
        self.decoder_level2_0 = stage(nb[1], dim * 4, hd[2])
        self.down_3 = Downsample(dim * 4)
        self.decoder_level3_0 = stage(nb[2], dim * 8, hd[3])
        self.down_4 = Downsample(dim * 8)
        self.decoder_level4 = stage(nb[3], dim * 16, hd[3])
        self.up4_3 = Upsample(dim * 16)
        self.decoder_level3_1 = stage(nb[2], dim * 8, hd[3])
        self.up3_2 = Upsample(dim * 8)
        self.decoder_level2_1 = stage(nb[1], dim * 4, hd[2])
        self.up2_1 = Upsample(dim * 4)
        self.decoder_level1_1 = stage(nb[0], dim * 2, hd[1])
        self.up2_0 = Upsample(dim * 2)
        self.coefficient_4_3 = nn.Parameter(torch.ones(2, dim * 8), requires_grad=attention)
        self.coefficient_3_2 = nn.Parameter(torch.ones(2, dim * 4), requires_grad=attention)
        self.coefficient_2_1 = nn.Parameter(torch.ones(2, dim * 2), requires_grad=attention)
        self.coefficient_1_0 = nn.Parameter(torch.ones(2, dim), requires_grad=attention)
        self.skip_4_3 = nn.Conv2d(dim * 8, dim * 8, kernel_size=1, bias=bias)
        self.skip_3_2 = nn.Conv2d(dim * 4, dim * 4, kernel_size=1, bias=bias)
        self.skip_2_1 = nn.Conv2d(dim * 2, dim * 2, kernel_size=1, bias=bias)
        self.skip_1_0 = nn.Conv2d(dim * 2, dim * 2, kernel_size=1, bias=bias)
        self.refinement_1 = stage(num_refinement_blocks, dim, hd[0])
        self.refinement_2 = stage(num_refinement_blocks, dim, hd[0])
        self.refinement_3 = stage(num_refinement_blocks, dim, hd[0])
        self.layer_fussion_2 = LayerFusion(dim * 3)
        self.conv_fuss_2 = nn.Conv2d(dim * 3, dim, kernel_size=1, bias=bias)
        self.output = nn.Conv2d(dim, out_channels, kernel_size=3, stride=1, padding=1, bias=bias)

    def _encode(self, x: Tensor) -> Encoded:
        """Run the encoder and the down path to the bottleneck's input.

        Args:
            x: ``(B, inp_channels, H, W)`` float in [0, 1], H and W divisible by 16.

        Returns:
            ``Encoded`` whose key is the ``(B, 16·dim, H/16, W/16)`` output of ``down_4``; skips hold the input,
            the fused shallow feature and the three down-path features.
        """
        enc_1 = self.encoder_1(self.patch_embed(x))
        enc_2 = self.encoder_2(enc_1)
        enc_3 = self.encoder_3(enc_2)
        fused = self.conv_fuss(self.layer_fussion([enc_1, enc_2, enc_3]))
        level1 = self.decoder_level1_0(self.down_1(fused))
        level2 = self.decoder_level2_0(self.down_2(level1))
        level3 = self.decoder_level3_0(self.down_3(level2))
        return Encoded(key=self.down_4(level3), skips=(x, fused, level1, level2, level3))

    def _decode(self, enc: Encoded, adapt: Adapt | None = None) -> Tensor:
        """Run the bottleneck, apply ``adapt`` to its output, and finish the up path and refinement.

        Returns:
            ``(B, out_channels, H, W)`` enhanced image (not clamped).
        """
        x, fused, level1, level2, level3 = enc.skips
        z = self.decoder_level4(enc.key)
        if adapt is not None:
            z = adapt(z)
        up = self.decoder_level3_1(self.skip_4_3(_mix(self.coefficient_4_3, level3, self.up4_3(z))))
        up = self.decoder_level2_1(self.skip_3_2(_mix(self.coefficient_3_2, level2, self.up3_2(up))))
        up = self.decoder_level1_1(self.skip_1_0(_mix(self.coefficient_2_1, level1, self.up2_1(up))))
        out = _mix(self.coefficient_1_0, self.latent(fused), self.up2_0(up))
        ref_1 = self.refinement_1(out)
        ref_2 = self.refinement_2(ref_1)
        ref_3 = self.refinement_3(ref_2)
        out = self.output(self.conv_fuss_2(self.layer_fussion_2([ref_1, ref_2, ref_3])))
        return out + x if self.skip else out


_RELEASED: dict[str, Any] = {
    "inp_channels": 3, "out_channels": 3, "dim": 16, "num_blocks": [2, 4, 8, 16], "num_refinement_blocks": 2,
    "heads": [1, 2, 4, 8], "ffn_expansion_factor": 2.66, "bias": False, "LayerNorm_type": "WithBias",
    "attention": True, "skip": False,
}
_CHECKPOINTS = {
    "lol": "LOL (configs/LOL/train/training_LOL.yaml)",
    "mit_fivek": "MIT-Adobe FiveK (configs/MIT-Adobe-FiveK/train/training_MIT_5K.yaml)",
    "uhd_lol4k": "UHD-LOL4K (configs/UHD-LOL4K/train/training_UHD_4K.yaml)",
    "uhd_lol8k": "UHD-LOL8K (configs/UHD-LOL8K/train/training_UHD_8K.yaml)",
}

register_preset("llformer.released", "configuration of every released LLFormer checkpoint", **_RELEASED)
for _tag, _data in _CHECKPOINTS.items():
    register_preset(f"llformer.{_tag}", f"official checkpoint trained on {_data}", **_RELEASED)
