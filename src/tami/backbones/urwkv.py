"""URWKV, split at the last encoder output for temporal adaptation.

Paper: Xu et al., "URWKV: Unified RWKV Model with Multi-state Perspective for Low-light Image Restoration",
CVPR 2025. Official code: https://github.com/FZU-N/URWKV (``model/model_builder.py`` ``LLENet``, ``encoder.py``,
``decoder.py``, ``modules/urwkv.py``, ``modules/LAN.py``, ``modules/SSF.py``, ``modules/cuda/wkv_cuda.cu``; read at
23bee8f). Written from scratch; class, attribute and argument names follow the official ones so official checkpoints
load with ``strict=True``. The mmcv/mmcls helpers the official blocks use are re-expressed here: ``PatchEmbed`` (3x3
convolution, stride 1, after "corner" adaptive padding = 2 zero rows/columns at the bottom/right) and
``resize_pos_embed`` (bicubic, ``align_corners=False``, from the 32x32 training grid to the feature size).

Network: a three-stage encoder (``head`` conv, then per stage a URWKV block — patch embedding + position embedding,
RWKV layers, LayerNorm — a 3x3 conv + LeakyReLU and a x0.5 bilinear resize; widths dim, dim, 2*dim -> 4*dim at H/8)
and a three-stage decoder (x2 bilinear upsampling, a state-aware selective fusion ``SSF`` with the encoder features,
URWKV block, conv), a ``tail`` conv and a global residual. Each RWKV layer is spatial mixing (quad-directional token
shift, bidirectional WKV, :mod:`.urwkv_wkv`) and channel mixing, both after a luminance-adaptive normalisation
(LAN) driven by the global averages of every earlier stage output (``inter_feat``); the layers of a block blend their
inputs with those of the earlier layers (exponential moving average, the "multi-state token shift").

Deliberate difference — LAN projections: the official ``LuminanceAdaptiveNorm.forward`` builds *new* randomly
initialised ``Conv2d(1, 1, (num_feats, k))`` and ``Linear(max_C - k + 1, C)`` layers (k = 1, 3, 5) on every call
from the global RNG, so its output changes from call to call and with the RNG state. Here these projections are fixed
non-persistent buffers drawn once at construction from ``torch.Generator().manual_seed(lan_seed)`` in the official
forward's draw order (36 calls for the released configuration). With the default ``lan_seed=0`` an official
checkpoint therefore gives exactly what the official forward gives right after ``torch.manual_seed(0)``, every time,
on any device. The buffers are not in the state_dict (official checkpoints have none), so files saved by tami
rebuild them from ``lan_seed`` in their configuration; :func:`load_lan_layers` / :func:`lan_layers` set and read
them in the fixture's naming (``callNN.conv_k1.weight``, ...).

Split for TAMI: ``encode`` returns ``x3_out`` (``encode_list[-1]``, ``(B, 4*dim, H/8, W/8)``), the tensor the decoder
consumes; ``decode`` applies ``adapt`` to it and runs the decoder.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import CheckpointError, InputError
from .base import Adapt, Backbone, Encoded
from .registry import BACKBONES, register_preset
from .urwkv_wkv import bi_wkv_channels_first

_LAN_KERNELS = (1, 3, 5)
_POS_GRID = 32  # official img_size: the position embedding is learned on a 32x32 grid
_Shape = tuple[int, int]


def _tokens(x: Tensor) -> Tensor:
    """``(B, C, H, W)`` -> ``(B, H*W, C)``."""
    return x.flatten(2).transpose(1, 2)


def _image(t: Tensor, hw: _Shape) -> Tensor:
    """``(B, H*W, C)`` -> ``(B, C, H, W)`` (a view, as the official reshape + permute)."""
    return t.reshape(t.shape[0], hw[0], hw[1], t.shape[2]).permute(0, 3, 1, 2)


def q_shift(x: Tensor, hw: _Shape) -> Tensor:
    """Quad-directional token shift by one pixel (official ``q_shift``, ``gamma=1/4``).

    Channel quarters move right, left, down and up (zeros enter at the border); channels beyond ``4*(C//4)`` stay.

    Args:
        x: ``(B, H*W, C)`` tokens in row-major order.
        hw: ``(H, W)``.
    """
    b, _, c = x.shape
    g = c // 4
    src = x.view(b, hw[0], hw[1], c)
    out = torch.zeros_like(src)
    out[:, :, 1:, :g] = src[:, :, :-1, :g]
    out[:, :, :-1, g : 2 * g] = src[:, :, 1:, g : 2 * g]
    out[:, 1:, :, 2 * g : 3 * g] = src[:, :-1, :, 2 * g : 3 * g]
    out[:, :-1, :, 3 * g : 4 * g] = src[:, 1:, :, 3 * g : 4 * g]
    out[..., 4 * g :] = src[..., 4 * g :]
    return out.view(b, -1, c)


def _blend_states(x: Tensor, states: list[Tensor]) -> Tensor:
    """Multi-state token shift: blend ``x`` with the earlier layers' inputs (alpha 0.5), then remember the result."""
    for prev in states:
        x = 0.5 * x + 0.5 * prev
    states.append(x)
    return x


class LuminanceAdaptiveNorm(nn.Module):
    """Luminance-adaptive normalisation (LAN) with fixed projection layers.

    The global averages of the ``num_feats - 1`` earlier stage outputs and of ``x`` (zero-padded to
    ``max_channels``) pass through three ``(num_feats, k)`` convolutions and linear maps, an MLP and tanh; the result
    shifts the scale ``alpha`` of a colour-mixed standardisation of ``x``.

    Args:
        dim: channels C of ``x``.
        num_feats: number of averaged features (earlier stage outputs + ``x``).
        max_channels: widest of those features.
    """

    def __init__(self, dim: int, num_feats: int, max_channels: int) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(1, 1, dim))
        self.beta = nn.Parameter(torch.zeros(1, 1, dim))
        self.color = nn.Parameter(torch.eye(dim))
        self.mlp = nn.Sequential(nn.Linear(3 * dim, dim), nn.ReLU(inplace=True), nn.Linear(dim, dim))
        self.num_feats = num_feats
        for k in _LAN_KERNELS:
            self.register_buffer(f"conv_k{k}", torch.zeros(1, 1, num_feats, k), persistent=False)
            self.register_buffer(f"linear_k{k}_weight", torch.zeros(dim, max_channels - k + 1), persistent=False)
            self.register_buffer(f"linear_k{k}_bias", torch.zeros(dim), persistent=False)

    def projection_layers(self) -> Iterator[tuple[str, Tensor]]:
        """The fixed projections in the official draw order, named as in the fixture (``conv_k1.weight``, ...)."""
        for k in _LAN_KERNELS:
            yield f"conv_k{k}.weight", getattr(self, f"conv_k{k}")
        for k in _LAN_KERNELS:
            yield f"linear_k{k}.weight", getattr(self, f"linear_k{k}_weight")
            yield f"linear_k{k}.bias", getattr(self, f"linear_k{k}_bias")

    @torch.no_grad()
    def draw(self, generator: torch.Generator) -> None:
        """Fill the projections as PyTorch's default layer initialisation would, drawing from ``generator`` (CPU)."""
        fan_in = 0
        for name, buf in self.projection_layers():
            value = torch.empty(buf.shape, device="cpu")  # the official layers come from the CPU generator
            if name.endswith(".bias"):
                bound = 1.0 / math.sqrt(fan_in)
                nn.init.uniform_(value, -bound, bound, generator=generator)
            else:
                nn.init.kaiming_uniform_(value, a=math.sqrt(5), generator=generator)
                fan_in = value.shape[1]
            buf.copy_(value)

    def forward(self, x: Tensor, inter_gaps: list[Tensor]) -> Tensor:
        """Normalise ``x`` ``(B, N, C)`` tokens given the global averages ``(B, C_i)`` of the earlier stage outputs.

        (The official module takes the stage outputs themselves and averages them on every call.)
        """
        b, _, c = x.shape
        if len(inter_gaps) + 1 != self.num_feats:
            raise InputError(
                f"LuminanceAdaptiveNorm was built for {self.num_feats - 1} earlier features, got {len(inter_gaps)}"
            )
        width = self.linear_k1_weight.shape[1]
        gaps = [F.pad(g, (0, width - g.shape[1])) for g in inter_gaps]
        gaps.append(F.pad(x.mean(dim=1), (0, width - c)))
        stacked = torch.stack(gaps, dim=1).unsqueeze(1)  # (B, 1, num_feats, max_C)
        feats = [
            F.linear(F.conv2d(stacked, getattr(self, f"conv_k{k}")).flatten(1),
                     getattr(self, f"linear_k{k}_weight"), getattr(self, f"linear_k{k}_bias"))
            for k in _LAN_KERNELS
        ]
        scale = self.alpha + torch.tanh(self.mlp(torch.cat(feats, dim=-1))).view(b, 1, c)
        x = x - x.mean(dim=-1, keepdim=True)
        sigma = torch.linalg.vector_norm(x, dim=-1, keepdim=True) / math.sqrt(c - 1)  # unbiased std
        return torch.addcmul(self.beta, torch.matmul(x / (sigma + 1e-3), self.color.t()), scale)


class VRWKV_SpatialMix(nn.Module):  # noqa: N801 - official name
    """Spatial mixing: token shift, ``k, v, r`` projections, bidirectional WKV, gated output projection."""

    def __init__(self, n_embd: int, n_layer: int, layer_id: int) -> None:
        super().__init__()
        r01 = layer_id / (n_layer - 1) if n_layer > 1 else 0.0
        r10 = 1.0 - layer_id / n_layer
        h = torch.arange(n_embd, dtype=torch.float64)
        ramp = (h / n_embd).view(1, 1, -1)
        self.spatial_decay = nn.Parameter((-5 + 8 * (h / max(n_embd - 1, 1)) ** (0.7 + 1.3 * r01)).float())
        zigzag = ((h + 1) % 3 - 1) * 0.5
        self.spatial_first = nn.Parameter((math.log(0.3) + zigzag).float())
        self.spatial_mix_k = nn.Parameter(ramp.pow(r10).float())
        self.spatial_mix_v = nn.Parameter((ramp.pow(r10) + 0.3 * r01).float())
        self.spatial_mix_r = nn.Parameter(ramp.pow(0.5 * r10).float())
        self.key = nn.Linear(n_embd, n_embd, bias=False)
        self.value = nn.Linear(n_embd, n_embd, bias=False)
        self.receptance = nn.Linear(n_embd, n_embd, bias=False)
        self.output = nn.Linear(n_embd, n_embd, bias=False)

    def forward(self, x: Tensor, states: list[Tensor], hw: _Shape) -> Tensor:
        """``(B, N, C)`` -> ``(B, N, C)``; appends the blended input to ``states``."""
        x = _blend_states(x, states)
        xx = q_shift(x, hw)
        xk = torch.lerp(xx, x, self.spatial_mix_k)
        xv = torch.lerp(xx, x, self.spatial_mix_v)
        xr = torch.lerp(xx, x, self.spatial_mix_r)
        t = x.shape[1]
        # k, v, r come out channels-first (B, C, T), the layout the WKV scans want, straight from the products
        k = torch.matmul(self.key.weight, xk.transpose(1, 2))
        v = torch.matmul(self.value.weight, xv.transpose(1, 2))
        r = torch.matmul(self.receptance.weight, xr.transpose(1, 2))
        y = torch.sigmoid(r) * bi_wkv_channels_first(self.spatial_decay / t, self.spatial_first / t, k, v)
        return torch.matmul(y.transpose(1, 2), self.output.weight.t())


class VRWKV_ChannelMix(nn.Module):  # noqa: N801 - official name
    """Channel mixing: token shift, squared-ReLU feed-forward (x4) gated by a sigmoid receptance."""

    def __init__(self, n_embd: int, n_layer: int, layer_id: int, hidden_rate: int = 4) -> None:
        super().__init__()
        r10 = 1.0 - layer_id / n_layer
        ramp = (torch.arange(n_embd, dtype=torch.float64) / n_embd).view(1, 1, -1)
        self.spatial_mix_k = nn.Parameter(ramp.pow(r10).float())
        self.spatial_mix_r = nn.Parameter(ramp.pow(r10).float())
        self.key = nn.Linear(n_embd, hidden_rate * n_embd, bias=False)
        self.receptance = nn.Linear(n_embd, n_embd, bias=False)
        self.value = nn.Linear(hidden_rate * n_embd, n_embd, bias=False)

    def forward(self, x: Tensor, states: list[Tensor], hw: _Shape) -> Tensor:
        """``(B, N, C)`` -> ``(B, N, C)``; appends the blended input to ``states``."""
        x = _blend_states(x, states)
        xx = q_shift(x, hw)
        xk = torch.lerp(xx, x, self.spatial_mix_k)
        xr = torch.lerp(xx, x, self.spatial_mix_r)
        kv = self.value(torch.relu(self.key(xk)).square())
        return torch.sigmoid(self.receptance(xr)) * kv


class Block(nn.Module):
    """One URWKV layer: ``x + att(ln1(x))``, then ``x + ffn(ln2(x))``; layer 0 first applies ``ln0``."""

    def __init__(self, n_embd: int, n_layer: int, layer_id: int, num_feats: int, max_channels: int) -> None:
        super().__init__()
        self.layer_id = layer_id
        self.ln1 = LuminanceAdaptiveNorm(n_embd, num_feats, max_channels)
        self.ln2 = LuminanceAdaptiveNorm(n_embd, num_feats, max_channels)
        if layer_id == 0:
            self.ln0 = LuminanceAdaptiveNorm(n_embd, num_feats, max_channels)
        self.att = VRWKV_SpatialMix(n_embd, n_layer, layer_id)
        self.ffn = VRWKV_ChannelMix(n_embd, n_layer, layer_id)

    def norms(self) -> list[LuminanceAdaptiveNorm]:
        """The LAN modules in the order the forward pass calls them."""
        return ([self.ln0] if self.layer_id == 0 else []) + [self.ln1, self.ln2]

    def forward(self, x: Tensor, spatial: list[Tensor], channel: list[Tensor], inter_gaps: list[Tensor],
                hw: _Shape) -> Tensor:
        if self.layer_id == 0:
            x = self.ln0(x, inter_gaps)
        x = x + self.att(self.ln1(x, inter_gaps), spatial, hw)
        return x + self.ffn(self.ln2(x, inter_gaps), channel, hw)


class PatchEmbed(nn.Module):
    """mmcv ``PatchEmbed`` as URWKV configures it: 2 zero rows/columns at the bottom/right, then a 3x3 conv."""

    def __init__(self, in_channels: int, embed_dims: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.projection = nn.Conv2d(in_channels, embed_dims, kernel_size, stride=1, padding=0, bias=True)

    def forward(self, x: Tensor) -> tuple[Tensor, _Shape]:
        """``(B, C_in, H, W)`` -> ``(B, H*W, C)`` tokens and ``(H, W)``."""
        k = self.projection.kernel_size
        x = self.projection(F.pad(x, (0, k[1] - 1, 0, k[0] - 1)))
        return _tokens(x), (x.shape[2], x.shape[3])


class URWKV(nn.Module):
    """A URWKV block: patch + position embedding, ``depth`` RWKV layers, final LayerNorm.

    Args:
        in_channels: input channels.
        embed_dims: token width.
        depth: number of layers.
        num_feats: earlier stage outputs its LAN layers see, plus one.
        max_channels: widest of those features (LAN projection width).
    """

    def __init__(self, in_channels: int, embed_dims: int, depth: int, num_feats: int, max_channels: int,
                 patch_size: int = 3) -> None:
        super().__init__()
        self.pos_embed = nn.Parameter(torch.zeros(1, _POS_GRID * _POS_GRID, embed_dims))
        self.patch_embed = PatchEmbed(in_channels, embed_dims, patch_size)
        self.layers = nn.ModuleList(
            [Block(embed_dims, depth, i, num_feats, max_channels) for i in range(depth)]
        )
        self.ln1 = nn.LayerNorm(embed_dims)

    def position_embedding(self, hw: _Shape) -> Tensor:
        """``(1, H*W, C)`` position embedding resized bicubically from the 32x32 grid."""
        if hw == (_POS_GRID, _POS_GRID):
            return self.pos_embed
        grid = _image(self.pos_embed, (_POS_GRID, _POS_GRID))
        return _tokens(F.interpolate(grid, size=hw, mode="bicubic", align_corners=False))

    def forward(self, x: Tensor, inter_gaps: list[Tensor]) -> Tensor:
        """``(B, C_in, H, W)`` -> ``(B, embed_dims, H, W)``; ``inter_gaps`` as for :class:`LuminanceAdaptiveNorm`."""
        x, hw = self.patch_embed(x)
        x = x + self.position_embedding(hw)
        spatial: list[Tensor] = []
        channel: list[Tensor] = []
        for layer in self.layers:
            x = layer(x, spatial, channel, inter_gaps, hw)
        return _image(self.ln1(x), hw)


def _conv_act(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False), nn.LeakyReLU(0.2, inplace=True))


def _gap(x: Tensor) -> Tensor:
    """Global average pooling ``(B, C, H, W)`` -> ``(B, C)``."""
    return x.mean(dim=(2, 3))


def _half(x: Tensor) -> Tensor:
    return F.interpolate(x, scale_factor=0.5, mode="bilinear", align_corners=False)


def _double(x: Tensor) -> Tensor:
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


class Encoder(nn.Module):
    """``head`` conv and three URWKV stages; widths dim, dim, 2*dim, output 4*dim at H/8."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.head = nn.Conv2d(3, dim, 3, 1, 1, bias=False)
        self.enhanceBlock1 = URWKV(dim, dim, 3, num_feats=2, max_channels=dim)
        self.proj1 = _conv_act(dim, dim)
        self.enhanceBlock2 = URWKV(dim, dim, 3, num_feats=3, max_channels=dim)
        self.proj2 = _conv_act(dim, 2 * dim)
        self.enhanceBlock3 = URWKV(2 * dim, 2 * dim, 3, num_feats=4, max_channels=2 * dim)
        self.proj3 = _conv_act(2 * dim, 4 * dim)

    def forward(self, x: Tensor, inter_gaps: list[Tensor]) -> list[Tensor]:
        """Returns ``[x1 (dim, H), x2 (2dim, H/2), x3 (4dim, H/4), x3_out (4dim, H/8)]``.

        Appends the global averages of the stage outputs (the official ``inter_feat``) to ``inter_gaps``.
        """
        x = self.head(x)
        inter_gaps.append(_gap(x))
        x1 = self.enhanceBlock1(x, inter_gaps)
        inter_gaps.append(_gap(x1))
        x1 = self.proj1(x1)
        x1_out = self.enhanceBlock2(_half(x1), inter_gaps)
        inter_gaps.append(_gap(x1_out))
        x2 = self.proj2(x1_out)
        x2_out = self.enhanceBlock3(_half(x2), inter_gaps)
        inter_gaps.append(_gap(x2_out))
        x3 = self.proj3(x2_out)
        return [x1, x2, x3, _half(x3)]


class InceptionModule(nn.Module):
    """1x1, 3x3, 5x5 and max-pool + 1x1 branches merged by a 1x1 conv to one channel."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.branch1x1 = nn.Conv2d(in_channels, out_channels, 1)
        self.branch3x3 = nn.Conv2d(in_channels, out_channels, 3, padding=1)
        self.branch5x5 = nn.Conv2d(in_channels, out_channels, 5, padding=2)
        self.branch_pool = nn.Conv2d(in_channels, out_channels, 1)
        self.conv = nn.Conv2d(4 * out_channels, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        pooled = F.max_pool2d(x, 3, stride=1, padding=1)
        branches = [self.branch1x1(x), self.branch3x3(x), self.branch5x5(x), self.branch_pool(pooled)]
        return self.conv(torch.cat(branches, dim=1))


class SSF(nn.Module):
    """State-aware selective fusion: the channel means of the encoder features gate the same-size encoder feature.

    ``align_convs`` exist in the official module (and its checkpoints) but its forward never uses them.
    """

    def __init__(self, num_feats: int, encode_channels: list[int], target_channels: int) -> None:
        super().__init__()
        self.align_convs = nn.ModuleList([nn.Conv2d(c, target_channels, 1) for c in encode_channels])
        self.conv_fusion = nn.Conv2d(num_feats, num_feats, 3, padding=1)
        self.inception = InceptionModule(num_feats, num_feats)
        self.final_conv = nn.Conv2d(2 * target_channels, target_channels, 3, padding=1)

    def forward(self, x: Tensor, feats: list[Tensor]) -> Tensor:
        """Fuse ``x`` ``(B, C_t, H, W)`` with the encoder features ``[x1, x2, x3]`` (one of them is H x W)."""
        size = x.shape[-2:]
        guide = torch.zeros_like(x)
        means = []
        for feat in reversed(feats):
            if feat.shape[-2:] == size:
                guide = feat
            means.append(F.interpolate(feat.mean(dim=1, keepdim=True), size=size, mode="bilinear",
                                       align_corners=False))
        gate = torch.sigmoid(self.inception(self.conv_fusion(torch.cat(means, dim=1))))
        return self.final_conv(torch.cat([gate * guide, x], dim=1))


class Decoder(nn.Module):
    """Three stages of upsampling, SSF fusion, URWKV block and conv, then the ``tail`` conv."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        widths = [4 * dim, 2 * dim, dim]
        self.enhanceBlock1 = URWKV(4 * dim, 4 * dim, 2, num_feats=5, max_channels=4 * dim)
        self.proj1 = _conv_act(4 * dim, 2 * dim)
        self.enhanceBlock2 = URWKV(2 * dim, 2 * dim, 2, num_feats=6, max_channels=4 * dim)
        self.proj2 = _conv_act(2 * dim, dim)
        self.enhanceBlock3 = URWKV(dim, dim, 2, num_feats=7, max_channels=4 * dim)
        self.proj3 = _conv_act(dim, dim)
        self.tail = nn.Conv2d(dim, 3, 3, 1, 1, bias=False)
        self.multiscale_fuse1 = SSF(3, widths, dim)
        self.multiscale_fuse2 = SSF(3, widths, 2 * dim)
        self.multiscale_fuse3 = SSF(3, widths, 4 * dim)

    def forward(self, x: Tensor, feats: list[Tensor], inter_gaps: list[Tensor]) -> Tensor:
        """``x`` ``(B, 4dim, H/8, W/8)``, ``feats = [x1, x2, x3]`` -> ``(B, 3, H, W)``; extends ``inter_gaps``."""
        x1 = self.enhanceBlock1(self.multiscale_fuse3(_double(x), feats), inter_gaps)
        inter_gaps.append(_gap(x1))
        x2 = self.enhanceBlock2(self.multiscale_fuse2(_double(self.proj1(x1)), feats), inter_gaps)
        inter_gaps.append(_gap(x2))
        x3 = self.enhanceBlock3(self.multiscale_fuse1(_double(self.proj2(x2)), feats), inter_gaps)
        return self.tail(self.proj3(x3))


@BACKBONES.register("urwkv")
class LLENet(Backbone):
    """URWKV low-light enhancer (official class ``LLENet``).

    Args:
        dim: base width (released: 32); the injection point has ``4*dim`` channels.
        lan_seed: seed of the fixed LAN projection layers (see the module docstring); 0 reproduces the official
            forward run right after ``torch.manual_seed(0)``.

    Inputs are ``(B, 3, H, W)`` float images in [0, 1] with H and W divisible by 8; outputs are not clamped.
    ``Encoded.skips`` holds ``(input, (x1, x2, x3), inter_gaps)``: the input, the encoder features the decoder's
    fusions read, and the ``(B, C_i)`` global averages of the four encoder stage outputs its LAN layers read.
    """

    arch = "urwkv"
    multiple_of = 8
    inject_stride = 8
    detect_keys = (
        "encoder.head.weight",
        "encoder.enhanceBlock1.pos_embed",
        "encoder.enhanceBlock1.layers.0.att.spatial_decay",
        "decoder.multiscale_fuse1.inception.conv.weight",
    )

    def __init__(self, dim: int = 32, lan_seed: int = 0) -> None:
        super().__init__()
        if dim <= 0 or dim % 4:
            raise InputError(f"urwkv needs a positive dim divisible by 4 (token shift quarters), got {dim}")
        self.dim = dim
        self.encoder = Encoder(dim)
        self.decoder = Decoder(dim)
        self.inject_channels = 4 * dim
        self.config = {"dim": dim, "lan_seed": lan_seed}
        self.apply(_init_weights)
        self.reset_lan_layers(lan_seed)

    def lan_modules(self) -> list[LuminanceAdaptiveNorm]:
        """Every LAN module in the order the official forward calls them (the fixture's ``callNN`` order)."""
        blocks = [self.encoder.enhanceBlock1, self.encoder.enhanceBlock2, self.encoder.enhanceBlock3,
                  self.decoder.enhanceBlock1, self.decoder.enhanceBlock2, self.decoder.enhanceBlock3]
        return [norm for block in blocks for layer in block.layers for norm in layer.norms()]

    def reset_lan_layers(self, seed: int) -> None:
        """Redraw the fixed LAN projections from ``seed`` in the official draw order."""
        generator = torch.Generator().manual_seed(seed)
        for norm in self.lan_modules():
            norm.draw(generator)

    def _encode(self, x: Tensor) -> Encoded:
        """Run the encoder.

        Args:
            x: ``(B, 3, H, W)`` float in [0, 1], H and W divisible by 8.

        Returns:
            ``Encoded`` with ``key`` = ``x3_out`` ``(B, 4*dim, H/8, W/8)``.
        """
        inter_gaps: list[Tensor] = []
        x1, x2, x3, x3_out = self.encoder(x, inter_gaps)
        return Encoded(key=x3_out, skips=(x, (x1, x2, x3), tuple(inter_gaps)))

    def _decode(self, enc: Encoded, adapt: Adapt | None = None) -> Tensor:
        """Run the decoder from ``enc``; ``adapt`` replaces ``x3_out`` first.

        Returns:
            ``(B, 3, H, W)`` enhanced image (not clamped).
        """
        x, feats, inter_gaps = enc.skips
        z = enc.key if adapt is None else adapt(enc.key)
        return self.decoder(z, list(feats), list(inter_gaps)) + x


def _init_weights(m: nn.Module) -> None:
    """Official ``LLENet._init_weights``: truncated-normal linear weights (std 0.02), zero biases."""
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)


_LAN_NAMES = tuple(f"{kind}_k{k}.{part}" for kind, k, part in
                   [("conv", k, "weight") for k in _LAN_KERNELS]
                   + [(kind, k, p) for k in _LAN_KERNELS for kind, p in (("linear", "weight"), ("linear", "bias"))])


@torch.no_grad()
def load_lan_layers(model: LLENet, tensors: Mapping[str, Tensor]) -> LLENet:
    """Set the fixed LAN projections of ``model`` from ``tensors`` named ``callNN.conv_k1.weight``, ...

    ``callNN`` numbers the LAN calls of one official forward pass (:meth:`LLENet.lan_modules` order); this is the
    layout of the fixture's ``lan_random_layers.safetensors`` and of :func:`lan_layers`.

    Raises:
        CheckpointError: a tensor is missing or has the wrong shape.
    """
    for i, norm in enumerate(model.lan_modules()):
        for name, buf in norm.projection_layers():
            key = f"call{i:02d}.{name}"
            if key not in tensors:
                raise CheckpointError(f"LAN layer {key} missing; expected the {len(model.lan_modules())} calls "
                                      f"of lan_layers() naming (callNN.{', callNN.'.join(_LAN_NAMES)})")
            if tensors[key].shape != buf.shape:
                raise CheckpointError(f"LAN layer {key} has shape {tuple(tensors[key].shape)}, expected "
                                      f"{tuple(buf.shape)} for urwkv with dim={model.dim}")
            buf.copy_(tensors[key])
    return model


def lan_layers(model: LLENet) -> dict[str, Tensor]:
    """The fixed LAN projections of ``model`` as ``{"callNN.conv_k1.weight": tensor, ...}`` (copies)."""
    return {f"call{i:02d}.{name}": buf.detach().clone()
            for i, norm in enumerate(model.lan_modules()) for name, buf in norm.projection_layers()}


DETECT_KEYS = LLENet.detect_keys

_RELEASED = "dim 32, 2,819,507 parameters"
_WEIGHTS = "official checkpoint (https://github.com/FZU-N/URWKV, README 'pre-trained weights')"
register_preset("urwkv.released", f"released configuration ({_RELEASED}); every official checkpoint; the "
                "URWKV(-TAMI) setting of the TAMI paper")
for _tag, _data in [
    ("lol_v1", "LOL-v1"),
    ("lol_v2_real", "LOL-v2 real"),
    ("lol_v2_syn", "LOL-v2 synthetic"),
    ("sdsd_indoor", "SDSD indoor"),
    ("sdsd_outdoor", "SDSD outdoor"),
    ("smid", "SMID (the authors note this checkpoint may have been overwritten)"),
    ("sid", "SID"),
    ("fivek", "MIT-Adobe FiveK (the authors note this checkpoint may have been overwritten)"),
    ("lol_blur", "LOL-Blur (joint low-light deblurring)"),
]:
    register_preset(f"urwkv.{_tag}", f"{_WEIGHTS} trained on {_data} (configs/*.yaml); {_RELEASED}")
