"""Restormer, split for temporal adaptation.

Paper: Zamir et al., "Restormer: Efficient Transformer for High-Resolution Image Restoration", CVPR 2022.
Official code: https://github.com/swz30/Restormer (``basicsr/models/archs/restormer_arch.py``, commit 861974a);
see that repository for its license. Written from scratch: module and parameter names, layer order and formulas
follow the official class so its checkpoints load unchanged (``strict=True``); the code is this project's own.

Injection point (TAMI): the output of the latent (bottleneck) transformer blocks, ``(B, 8*dim, H/8, W/8)``. The
memory key is the *input* of those blocks (``inp_enc_level4``, the output of ``down3_4``), so ``encode`` stops
before the latent blocks and ``decode`` runs them, applies ``adapt`` and finishes the decoder.

Execution order differs from the official code for CPU speed; the mathematics is the same and the outputs differ
by float32 rounding only (about 1e-6): the network runs in channels_last layout (depth-wise convolutions and layer
norms are several times faster there), the layer norm is ``F.layer_norm`` on the free ``(B, H, W, C)`` view instead
of ``b c h w -> b (h w) c`` rearranges, the transposed attention divides the small ``(c, c)`` Gram matrix by the
row norms instead of normalising full-size copies of q and k, the attention matrix is folded into the output
projection (one product over the pixels instead of two), and the gated feed-forward computes its two halves with
the two halves of the filters (no channel slices of channels_last tensors). Tensors crossing the API
(``Encoded.key``, the ``adapt`` argument, the output) are contiguous.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import InputError
from .base import Adapt, Backbone, Encoded
from .registry import BACKBONES, register_preset

LayerNormType = Literal["WithBias", "BiasFree"]


class _NormParams(nn.Module):
    """Holds the affine parameters of :class:`LayerNorm` under the official ``body.weight``/``body.bias`` keys."""

    def __init__(self, dim: int, with_bias: bool) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim)) if with_bias else None


class LayerNorm(nn.Module):
    """Layer norm over the channel axis of ``(B, C, H, W)`` (biased variance, eps 1e-5).

    ``WithBias``: ``(x - mean) / sqrt(var + eps) * weight + bias``. ``BiasFree``: ``x / sqrt(var + eps) * weight``
    (the mean is removed inside the variance only, as in the official code). Works on the ``(B, H, W, C)`` view,
    which is free for channels_last input; the output is channels_last.
    """

    def __init__(self, dim: int, layer_norm_type: str) -> None:
        super().__init__()
        self.with_bias = layer_norm_type != "BiasFree"
        self.body = _NormParams(dim, self.with_bias)

    def forward(self, x: Tensor) -> Tensor:
        y = x.permute(0, 2, 3, 1)
        if self.with_bias:
            y = F.layer_norm(y, y.shape[-1:], self.body.weight, self.body.bias, 1e-5)
        else:
            y = y * torch.rsqrt(y.var(-1, keepdim=True, correction=0) + 1e-5) * self.body.weight
        return y.permute(0, 3, 1, 2)


class FeedForward(nn.Module):
    """Gated-Dconv feed-forward network: 1x1 conv to 2h, depth-wise 3x3, GELU(a) * b, 1x1 conv back.

    Args:
        dim: channels in and out.
        ffn_expansion_factor: hidden width ``h = int(dim * ffn_expansion_factor)``.
        bias: whether the convolutions have biases.
    """

    def __init__(self, dim: int, ffn_expansion_factor: float, bias: bool) -> None:
        super().__init__()
        hidden = int(dim * ffn_expansion_factor)
        self.project_in = nn.Conv2d(dim, hidden * 2, kernel_size=1, bias=bias)
        self.dwconv = nn.Conv2d(hidden * 2, hidden * 2, kernel_size=3, padding=1, groups=hidden * 2, bias=bias)
        self.project_out = nn.Conv2d(hidden, dim, kernel_size=1, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        hidden = self.project_out.in_channels
        gate = gated_half(x, self.project_in, self.dwconv, 0, hidden)
        value = gated_half(x, self.project_in, self.dwconv, hidden, 2 * hidden)
        return self.project_out(F.gelu(gate) * value)


def gated_half(x: Tensor, project_in: nn.Conv2d, dwconv: nn.Conv2d, start: int, stop: int) -> Tensor:
    """Channels ``start:stop`` of ``dwconv(project_in(x))``, computed from those filters alone.

    Equals slicing the full result, but keeps each half dense in channels_last layout: element-wise work on a
    channel slice of a channels_last tensor is several times slower than on a dense tensor.
    """
    def part(bias: Tensor | None) -> Tensor | None:
        return None if bias is None else bias[start:stop]

    y = F.conv2d(x, project_in.weight[start:stop], part(project_in.bias))
    return F.conv2d(y, dwconv.weight[start:stop], part(dwconv.bias), padding=1, groups=stop - start)


def tokens(x: Tensor) -> Tensor:
    """``(B, C, H, W)`` -> ``(B, H*W, C)``; a free view when ``x`` is channels_last."""
    return x.permute(0, 2, 3, 1).reshape(x.shape[0], -1, x.shape[1])


def channel_attention(q: Tensor, k: Tensor, heads: int, temperature: Tensor) -> Tensor:
    """Attention weights of Restormer's transposed (channel) attention.

    Args:
        q, k: ``(B, N, C)`` token views; ``C`` is split into ``heads`` groups of ``c = C / heads`` channels.
        heads: number of heads.
        temperature: ``(heads, 1, 1)`` learnable scale of the cosine similarities.

    Returns:
        ``(B, heads, c, c)``: ``softmax(cos(q_i, k_j) * temperature)`` over channel pairs, the cosine taken along
        the N pixels. Equals L2-normalising q and k first (norms clamped at 1e-12, as ``F.normalize``) but divides
        the small Gram matrix instead of copying q and k.
    """
    b, n, c = q.shape
    q = q.reshape(b, n, heads, c // heads)
    k = k.reshape(b, n, heads, c // heads)
    gram = torch.matmul(q.permute(0, 2, 3, 1), k.permute(0, 2, 1, 3))
    q_norm = torch.linalg.vector_norm(q, dim=1).clamp_min(1e-12)
    k_norm = torch.linalg.vector_norm(k, dim=1).clamp_min(1e-12)
    return (gram / (q_norm[..., :, None] * k_norm[..., None, :]) * temperature).softmax(dim=-1)


def attend_and_project(
    q: Tensor, k: Tensor, v: Tensor, heads: int, temperature: Tensor, project_out: nn.Conv2d, size: torch.Size
) -> Tensor:
    """Channel attention followed by a 1x1 output projection, as one product over the pixels.

    ``project_out(attn @ v)`` with per-head ``attn`` equals ``v @ M`` where ``M = blockdiag(attn)^T W^T`` is a
    ``(C, C)`` matrix, so the values are read once and the output is written channels_last.

    Args:
        q, k, v: ``(B, N, C)`` token views (N = H*W pixels).
        heads: number of heads.
        temperature: ``(heads, 1, 1)``.
        project_out: the ``C -> C`` 1x1 convolution (weight and optional bias are used).
        size: ``(H, W)``.

    Returns:
        ``(B, C, H, W)`` channels_last.
    """
    b, _, dim = v.shape
    attn = channel_attention(q, k, heads, temperature)
    # out[o] = sum_{head, i} W[o, head, i] * sum_j attn[head, i, j] * v[head, j]
    weight = project_out.weight.reshape(project_out.out_channels, heads, dim // heads)
    mixed = torch.einsum("bhij,ohi->bhjo", attn, weight).reshape(b, dim, project_out.out_channels)
    out = torch.matmul(v, mixed)
    if project_out.bias is not None:
        out = out + project_out.bias
    return out.view(b, *size, -1).permute(0, 3, 1, 2)


class Attention(nn.Module):
    """Multi-Dconv head transposed self-attention (MDTA); see :func:`attend_and_project`.

    Args:
        dim: channels.
        num_heads: heads (``dim`` must be divisible by it).
        bias: whether the convolutions have biases.
    """

    def __init__(self, dim: int, num_heads: int, bias: bool) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.temperature = nn.Parameter(torch.ones(num_heads, 1, 1))
        self.qkv = nn.Conv2d(dim, dim * 3, kernel_size=1, bias=bias)
        self.qkv_dwconv = nn.Conv2d(dim * 3, dim * 3, kernel_size=3, padding=1, groups=dim * 3, bias=bias)
        self.project_out = nn.Conv2d(dim, dim, kernel_size=1, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        q, k, v = tokens(self.qkv_dwconv(self.qkv(x))).chunk(3, dim=-1)
        return attend_and_project(q, k, v, self.num_heads, self.temperature, self.project_out, x.shape[-2:])


class TransformerBlock(nn.Module):
    """``x + MDTA(LN(x))`` then ``x + GDFN(LN(x))``."""

    def __init__(self, dim: int, num_heads: int, ffn_expansion_factor: float, bias: bool, layer_norm_type: str):
        super().__init__()
        self.norm1 = LayerNorm(dim, layer_norm_type)
        self.attn = Attention(dim, num_heads, bias)
        self.norm2 = LayerNorm(dim, layer_norm_type)
        self.ffn = FeedForward(dim, ffn_expansion_factor, bias)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


class OverlapPatchEmbed(nn.Module):
    """3x3 convolution from the input channels to ``embed_dim`` (no bias)."""

    def __init__(self, in_c: int, embed_dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_c, embed_dim, kernel_size=3, padding=1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x)


class Downsample(nn.Module):
    """3x3 conv ``n -> n/2`` then pixel-unshuffle by 2: ``(B, n, H, W) -> (B, 2n, H/2, W/2)``."""

    def __init__(self, n_feat: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(n_feat, n_feat // 2, kernel_size=3, padding=1, bias=False), nn.PixelUnshuffle(2)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


class Upsample(nn.Module):
    """3x3 conv ``n -> 2n`` then pixel-shuffle by 2: ``(B, n, H, W) -> (B, n/2, 2H, 2W)``."""

    def __init__(self, n_feat: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(n_feat, n_feat * 2, kernel_size=3, padding=1, bias=False), nn.PixelShuffle(2)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


def _stage(dim: int, count: int, heads: int, ffn: float, bias: bool, norm: str) -> nn.Sequential:
    return nn.Sequential(*(TransformerBlock(dim, heads, ffn, bias, norm) for _ in range(count)))


@BACKBONES.register("restormer")
class Restormer(Backbone):
    """Restormer with the official constructor arguments and state_dict keys.

    Args:
        inp_channels: input channels (3; 1 for grey denoising, 6 for dual-pixel defocus deblurring).
        out_channels: output channels.
        dim: width of level 1; levels 2-4 have ``2*dim``, ``4*dim``, ``8*dim`` channels.
        num_blocks: transformer blocks per level (levels 1-3 are shared by encoder and decoder; 4 is the latent).
        num_refinement_blocks: blocks after the decoder at full resolution.
        heads: attention heads per level.
        ffn_expansion_factor: feed-forward width factor.
        bias: biases in the transformer convolutions.
        LayerNorm_type: ``"WithBias"`` or ``"BiasFree"``.
        dual_pixel_task: dual-pixel defocus deblurring head (skip conv from the embedding, no global residual).

    ``forward(x)``: ``x`` ``(B, inp_channels, H, W)`` float (images in [0, 1]), any H and W (padded to 8 inside); returns
    ``(B, out_channels, H, W)``, unclamped.
    """

    arch = "restormer"
    multiple_of = 8
    inject_stride = 8
    detect_keys = (
        "patch_embed.proj.weight",
        "down3_4.body.0.weight",
        "reduce_chan_level3.weight",
        "latent.0.attn.qkv_dwconv.weight",
    )

    def __init__(
        self,
        inp_channels: int = 3,
        out_channels: int = 3,
        dim: int = 48,
        num_blocks: tuple[int, int, int, int] | list[int] = (4, 6, 6, 8),
        num_refinement_blocks: int = 4,
        heads: tuple[int, int, int, int] | list[int] = (1, 2, 4, 8),
        ffn_expansion_factor: float = 2.66,
        bias: bool = False,
        LayerNorm_type: LayerNormType = "WithBias",  # noqa: N803 - official argument name
        dual_pixel_task: bool = False,
    ) -> None:
        super().__init__()
        if LayerNorm_type not in ("WithBias", "BiasFree"):
            raise InputError(f"restormer LayerNorm_type must be 'WithBias' or 'BiasFree', got {LayerNorm_type!r}")
        if len(num_blocks) != 4 or len(heads) != 4:
            raise InputError(
                f"restormer needs 4 entries in num_blocks and heads, got {list(num_blocks)} and {list(heads)}"
            )
        widths = [dim, dim * 2, dim * 4, dim * 8]
        if any(w % h for w, h in zip(widths, heads)):
            raise InputError(
                f"restormer level widths {widths} (from dim={dim}) must be divisible by heads {list(heads)}"
            )
        self.inp_channels = inp_channels
        self.in_channels = inp_channels
        self.dual_pixel_task = dual_pixel_task
        self.inject_channels = dim * 8
        self.config = {
            "inp_channels": inp_channels,
            "out_channels": out_channels,
            "dim": dim,
            "num_blocks": list(num_blocks),
            "num_refinement_blocks": num_refinement_blocks,
            "heads": list(heads),
            "ffn_expansion_factor": ffn_expansion_factor,
            "bias": bias,
            "LayerNorm_type": LayerNorm_type,
            "dual_pixel_task": dual_pixel_task,
        }
        n1, n2, n3, n4 = num_blocks
        h1, h2, h3, h4 = heads
        opts = (ffn_expansion_factor, bias, LayerNorm_type)

        self.patch_embed = OverlapPatchEmbed(inp_channels, dim)
        self.encoder_level1 = _stage(dim, n1, h1, *opts)
        self.down1_2 = Downsample(dim)
        self.encoder_level2 = _stage(dim * 2, n2, h2, *opts)
        self.down2_3 = Downsample(dim * 2)
        self.encoder_level3 = _stage(dim * 4, n3, h3, *opts)
        self.down3_4 = Downsample(dim * 4)
        self.latent = _stage(dim * 8, n4, h4, *opts)

        self.up4_3 = Upsample(dim * 8)
        self.reduce_chan_level3 = nn.Conv2d(dim * 8, dim * 4, kernel_size=1, bias=bias)
        self.decoder_level3 = _stage(dim * 4, n3, h3, *opts)
        self.up3_2 = Upsample(dim * 4)
        self.reduce_chan_level2 = nn.Conv2d(dim * 4, dim * 2, kernel_size=1, bias=bias)
        self.decoder_level2 = _stage(dim * 2, n2, h2, *opts)
        self.up2_1 = Upsample(dim * 2)
        self.decoder_level1 = _stage(dim * 2, n1, h1, *opts)
        self.refinement = _stage(dim * 2, num_refinement_blocks, h1, *opts)
        if dual_pixel_task:
            self.skip_conv = nn.Conv2d(dim, dim * 2, kernel_size=1, bias=bias)
        self.output = nn.Conv2d(dim * 2, out_channels, kernel_size=3, padding=1, bias=bias)

    def _encode(self, x: Tensor) -> Encoded:
        """Run the encoder on ``x`` ``(B, inp_channels, H, W)`` (internally in channels_last layout).

        Returns:
            ``key`` = ``inp_enc_level4`` ``(B, 8*dim, H/8, W/8)`` (the latent blocks' input, contiguous);
            ``skips`` = the input, the level-1..3 encoder outputs and (dual-pixel only) the patch embedding.
        """
        x = x.contiguous(memory_format=torch.channels_last)
        inp_enc_level1 = self.patch_embed(x)
        out_enc_level1 = self.encoder_level1(inp_enc_level1)
        out_enc_level2 = self.encoder_level2(self.down1_2(out_enc_level1))
        out_enc_level3 = self.encoder_level3(self.down2_3(out_enc_level2))
        inp_enc_level4 = self.down3_4(out_enc_level3).contiguous()
        embed = inp_enc_level1 if self.dual_pixel_task else None
        return Encoded(key=inp_enc_level4, skips=(x, out_enc_level1, out_enc_level2, out_enc_level3, embed))

    def _decode(self, enc: Encoded, adapt: Adapt | None = None) -> Tensor:
        """Run the latent blocks on ``enc.key``, apply ``adapt`` to their output, then the decoder.

        ``adapt`` gets and returns ``(B, 8*dim, H/8, W/8)`` (it is given a contiguous tensor).

        Returns:
            ``(B, out_channels, H, W)`` restored image (contiguous, unclamped).
        """
        x, out_enc_level1, out_enc_level2, out_enc_level3, embed = enc.skips
        channels_last = torch.channels_last
        latent = self.latent(enc.key.contiguous(memory_format=channels_last))
        if adapt is not None:
            latent = adapt(latent.contiguous()).contiguous(memory_format=channels_last)
        level3 = self.reduce_chan_level3(torch.cat([self.up4_3(latent), out_enc_level3], 1))
        level3 = self.decoder_level3(level3)
        level2 = self.reduce_chan_level2(torch.cat([self.up3_2(level3), out_enc_level2], 1))
        level2 = self.decoder_level2(level2)
        level1 = self.decoder_level1(torch.cat([self.up2_1(level2), out_enc_level1], 1))
        level1 = self.refinement(level1)
        if self.dual_pixel_task:
            return self.output(level1 + self.skip_conv(embed)).contiguous()
        return (self.output(level1) + x).contiguous()

register_preset(
    "restormer.released",
    "released configuration (dim 48, blocks [4,6,6,8], WithBias): deraining, motion and single-image defocus "
    "deblurring checkpoints; the setting of Restormer(-TAMI) in the TAMI paper",
)
register_preset(
    "restormer.deraining",
    "Deraining/pretrained_models/deraining.pth (Rain13K)",
)
register_preset(
    "restormer.motion_deblurring",
    "Motion_Deblurring/pretrained_models/motion_deblurring.pth (GoPro)",
)
register_preset(
    "restormer.single_image_defocus_deblurring",
    "Defocus_Deblurring/pretrained_models/single_image_defocus_deblurring.pth (DPDD, one image)",
)
register_preset(
    "restormer.dual_pixel_defocus_deblurring",
    "Defocus_Deblurring/pretrained_models/dual_pixel_defocus_deblurring.pth (DPDD, left+right views: 6 channels)",
    inp_channels=6,
    dual_pixel_task=True,
)
register_preset(
    "restormer.real_denoising",
    "Denoising/pretrained_models/real_denoising.pth (SIDD real noise; BiasFree layer norm)",
    LayerNorm_type="BiasFree",
)
register_preset(
    "restormer.gaussian_color_denoising",
    "Denoising/pretrained_models/gaussian_color_denoising_{blind,sigma15,sigma25,sigma50}.pth (BiasFree)",
    LayerNorm_type="BiasFree",
)
register_preset(
    "restormer.gaussian_gray_denoising",
    "Denoising/pretrained_models/gaussian_gray_denoising_{blind,sigma15,sigma25,sigma50}.pth (1 channel, BiasFree)",
    inp_channels=1,
    out_channels=1,
    LayerNorm_type="BiasFree",
)
