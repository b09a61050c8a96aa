"""SNR-Aware low-light enhancement network, split for temporal adaptation.

Paper: Xu, Wang, Fu, Jia, "SNR-Aware Low-Light Image Enhancement", CVPR 2022.
Official code: https://github.com/dvlab-research/SNR-Aware-Low-Light-Enhance (``models/archs/low_light_transformer.py``
and the transformer / ``arch_util`` modules it imports), Apache-2.0. Re-implemented from the paper and that code's
layer names, order and formulas; state_dict keys equal the official ones, so released ``.pth`` files load strictly.

Differences from the official class, none of which changes its output:

* the SNR map, computed by the official *data pipeline* (a 5×5 box blur in OpenCV plus a few tensor ops), is computed
  here inside the network by :func:`snr_map`, in torch on the input's device; an explicit map may still be passed;
* no hard-coded ``.cuda()``; the unused location grid and positional-encoding buffers are gone;
* attention runs through ``scaled_dot_product_attention`` (the official masked softmax, including its uniform
  weights when every patch is masked) so its memory stays linear in the number of patches.

The official class accepts ``nframes``, ``groups``, ``center``, ``predeblur`` and ``w_TSA`` but ignores them; they are
accepted here too so the official configurations load unchanged. Its forward only works with ``HR_in=True`` and
``nf=64`` (the transformer width 1024 = 16·64 and the upsampling widths are fixed), so other values are refused.

Sizes: two stride-2 convolutions and pixel-shuffles need H and W divisible by 4. The transformer works on 4×4 patches
of the H/4 feature map; where H/4 or W/4 is not a multiple of 4 the official code leaves the last rows/columns of that
map to the convolutional (light) branch alone, and so does this one — LOL's 400×600 frames are evaluated that way.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import InputError
from .base import Adapt, Backbone, Encoded, pad_to_multiple
from .registry import BACKBONES, register_preset

_PATCH = 4  # side of the transformer's patches on the H/4 feature map
_D_MODEL = 1024
_D_INNER = 2048
_N_LAYERS = 6
_N_HEAD = 8
_D_K = 64


def snr_map(x: Tensor) -> Tensor:
    """The official signal-to-noise map of an image batch.

    Box-blurs ``x·255`` with a 5×5 window (reflect-101 borders, as ``cv2.blur``) and divides by 255, takes BT.601 luma
    of ``x`` (dark) and of the blur (light), and returns ``light / (|dark − light| + 1e-4)`` divided by its per-image
    maximum + 1e-4, clamped to [0, 1]. The blur sums in float64 like OpenCV (float32 on devices without float64), so the
    map matches the official one to float32 rounding.

    Args:
        x: ``(B, 3, H, W)`` float in [0, 1], H and W at least 3.

    Returns:
        ``(B, 1, H, W)`` float in [0, 1], dtype of ``x``.
    """
    x32 = x.float()
    acc = torch.float32 if x.device.type == "mps" else torch.float64
    scaled = F.pad((x32 * 255).to(acc), (2, 2, 2, 2), mode="reflect")
    light = F.avg_pool2d(scaled, 5, stride=1).float() / 255
    dark = x32[:, 0:1] * 0.299 + x32[:, 1:2] * 0.587 + x32[:, 2:3] * 0.114
    light = light[:, 0:1] * 0.299 + light[:, 1:2] * 0.587 + light[:, 2:3] * 0.114
    mask = light / ((dark - light).abs() + 0.0001)
    peak = mask.flatten(1).amax(dim=1).view(-1, 1, 1, 1)
    return (mask / (peak + 0.0001)).clamp(0.0, 1.0).to(x.dtype)


class ResidualBlock_noBN(nn.Module):  # noqa: N801 - official class name
    """``x + conv2(relu(conv1(x)))`` with 3×3 convolutions (EDVR's residual block without batch norm)."""

    def __init__(self, nf: int = 64) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(nf, nf, 3, 1, 1, bias=True)
        self.conv2 = nn.Conv2d(nf, nf, 3, 1, 1, bias=True)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv2(F.relu(self.conv1(x)))


def _residual_stack(nf: int, n: int) -> nn.Sequential:
    return nn.Sequential(*[ResidualBlock_noBN(nf) for _ in range(n)])


class MultiHeadAttention(nn.Module):
    """Pre-norm multi-head self-attention with a key padding mask and a residual connection."""

    def __init__(self, n_head: int, d_model: int, d_k: int, d_v: int) -> None:
        super().__init__()
        self.n_head, self.d_k, self.d_v = n_head, d_k, d_v
        self.w_qs = nn.Linear(d_model, n_head * d_k, bias=False)
        self.w_ks = nn.Linear(d_model, n_head * d_k, bias=False)
        self.w_vs = nn.Linear(d_model, n_head * d_v, bias=False)
        self.fc = nn.Linear(n_head * d_v, d_model, bias=False)
        self.layer_norm = nn.LayerNorm(d_model, eps=1e-6)

    def forward(self, x: Tensor, keep: Tensor, attend_any: Tensor) -> Tensor:
        """Attend over the tokens ``x`` ``(B, N, d_model)``.

        ``keep`` ``(B, 1, 1, N)`` bool marks the keys that take part. Where an image has no such key
        (``attend_any`` ``(B, 1, 1, 1)`` False) the official masked softmax gives every key the same weight; zero
        queries and a full mask reproduce that.
        """
        b, n, _ = x.shape
        y = self.layer_norm(x)
        q = self.w_qs(y).view(b, n, self.n_head, self.d_k).transpose(1, 2)
        k = self.w_ks(y).view(b, n, self.n_head, self.d_k).transpose(1, 2)
        v = self.w_vs(y).view(b, n, self.n_head, self.d_v).transpose(1, 2)
        q = q * attend_any
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=keep | ~attend_any)
        return self.fc(out.transpose(1, 2).reshape(b, n, self.n_head * self.d_v)) + x


class PositionwiseFeedForward(nn.Module):
    """Pre-norm two-layer MLP with ReLU and a residual connection."""

    def __init__(self, d_in: int, d_hid: int) -> None:
        super().__init__()
        self.w_1 = nn.Linear(d_in, d_hid)
        self.w_2 = nn.Linear(d_hid, d_in)
        self.layer_norm = nn.LayerNorm(d_in, eps=1e-6)

    def forward(self, x: Tensor) -> Tensor:
        return self.w_2(F.relu(self.w_1(self.layer_norm(x)))) + x


class EncoderLayer(nn.Module):
    """Self-attention followed by the feed-forward block."""

    def __init__(self, d_model: int, d_inner: int, n_head: int, d_k: int, d_v: int) -> None:
        super().__init__()
        self.slf_attn = MultiHeadAttention(n_head, d_model, d_k, d_v)
        self.pos_ffn = PositionwiseFeedForward(d_model, d_inner)

    def forward(self, x: Tensor, keep: Tensor, attend_any: Tensor) -> Tensor:
        return self.pos_ffn(self.slf_attn(x, keep, attend_any))


class PatchTransformer(nn.Module):
    """The long-range branch: a stack of encoder layers over flattened 4×4 feature patches."""

    def __init__(self, d_model: int = _D_MODEL, d_inner: int = _D_INNER, n_layers: int = _N_LAYERS) -> None:
        super().__init__()
        self.layer_stack = nn.ModuleList(
            [EncoderLayer(d_model, d_inner, _N_HEAD, _D_K, _D_K) for _ in range(n_layers)]
        )

    def forward(self, tokens: Tensor, patch_snr: Tensor) -> Tensor:
        """Transform ``tokens`` ``(B, N, d_model)``; keys whose ``patch_snr`` ``(B, N)`` is 0 are masked out."""
        keep = (patch_snr != 0)[:, None, None, :]
        attend_any = keep.any(dim=-1, keepdim=True)
        for layer in self.layer_stack:
            tokens = layer(tokens, keep, attend_any)
        return tokens


@BACKBONES.register("snr_aware")
class SNRAware(Backbone):
    """SNR-Aware (official class ``low_light_transformer``) with the official constructor arguments.

    Defaults are the released configuration (nf 64, one front and one back residual block, ``HR_in``): 39,124,099
    parameters. ``forward(x, mask=None)`` computes the SNR map with :func:`snr_map` unless ``mask`` is given.

    Injection point: the output of ``feature_extraction`` (H/4, ``nf`` channels), before the light and transformer
    branches; ``Encoded.key`` is the same tensor.
    """

    arch = "snr_aware"
    multiple_of = 4
    inject_stride = 4
    detect_keys = (
        "conv_first_1.weight",
        "recon_trunk_light.0.conv1.weight",
        "transformer.layer_stack.0.slf_attn.w_qs.weight",
    )

    def __init__(
        self,
        nf: int = 64,
        nframes: int = 5,
        groups: int = 8,
        front_RBs: int = 1,  # noqa: N803 - official argument name
        back_RBs: int = 1,  # noqa: N803
        center: int | None = None,
        predeblur: bool = True,
        HR_in: bool = True,  # noqa: N803
        w_TSA: bool = True,  # noqa: N803
    ) -> None:
        super().__init__()
        if not HR_in:
            raise InputError(
                "snr_aware got HR_in=False, but the official network only runs with HR_in=True "
                "(its forward uses conv_first_1..3); use HR_in=True"
            )
        if nf * _PATCH * _PATCH != _D_MODEL:
            raise InputError(
                f"snr_aware got nf={nf}, but the official network only runs with nf=64 (its transformer width "
                f"{_D_MODEL} = 16·nf and its upsampling widths are fixed); use nf=64"
            )
        self.config: dict[str, Any] = {
            "nf": nf, "nframes": nframes, "groups": groups, "front_RBs": front_RBs, "back_RBs": back_RBs,
            "center": center, "predeblur": predeblur, "HR_in": HR_in, "w_TSA": w_TSA,
        }
        self.inject_channels = nf
        self.conv_first_1 = nn.Conv2d(3, nf, 3, 1, 1, bias=True)
        self.conv_first_2 = nn.Conv2d(nf, nf, 3, 2, 1, bias=True)
        self.conv_first_3 = nn.Conv2d(nf, nf, 3, 2, 1, bias=True)
        self.feature_extraction = _residual_stack(nf, front_RBs)
        self.recon_trunk = _residual_stack(nf, back_RBs)
        self.upconv1 = nn.Conv2d(nf * 2, nf * 4, 3, 1, 1, bias=True)
        self.upconv2 = nn.Conv2d(nf * 2, 64 * 4, 3, 1, 1, bias=True)
        self.HRconv = nn.Conv2d(64 * 2, 64, 3, 1, 1, bias=True)
        self.conv_last = nn.Conv2d(64, 3, 3, 1, 1, bias=True)
        self.transformer = PatchTransformer()
        self.recon_trunk_light = _residual_stack(nf, 6)

    @staticmethod
    def _lrelu(x: Tensor) -> Tensor:
        return F.leaky_relu(x, 0.1)

    def _check_mask(self, x: Tensor, mask: Tensor | None) -> None:
        if mask is None:
            return
        if mask.dim() != 4 or mask.shape[1] != 1 or mask.shape[0] != x.shape[0]:
            raise InputError(
                f"snr_aware expects an SNR mask of shape (B, 1, H, W) with B={x.shape[0]}, got "
                f"{tuple(mask.shape)}; leave mask=None to compute it from the input"
            )

    def encode(self, x: Tensor, mask: Tensor | None = None) -> Encoded:
        """:meth:`Backbone.encode` with the optional SNR ``mask``, padded with the input when it has its size."""
        self.check_input(x)
        self._check_mask(x, mask)
        if mask is not None and mask.shape[-2:] == x.shape[-2:]:
            mask, _ = pad_to_multiple(mask, self.multiple_of)
        padded, size = pad_to_multiple(x, self.multiple_of)
        enc = self._encode(padded, mask)
        enc.size = size
        return enc

    def _encode(self, x: Tensor, mask: Tensor | None = None) -> Encoded:
        """Run the encoder up to ``feature_extraction``.

        Args:
            x: ``(B, 3, H, W)`` float in [0, 1], H and W divisible by 4.
            mask: optional ``(B, 1, H', W')`` SNR map in [0, 1]; computed from ``x`` in :meth:`decode` when None.

        Returns:
            ``Encoded`` whose key is the ``(B, nf, H/4, W/4)`` feature; skips hold the input, the mask and the three
            stem features.
        """
        fea_1 = self._lrelu(self.conv_first_1(x))
        fea_2 = self._lrelu(self.conv_first_2(fea_1))
        fea_3 = self._lrelu(self.conv_first_3(fea_2))
        fea = self.feature_extraction(fea_3)
        return Encoded(key=fea, skips=(x, mask, fea_1, fea_2, fea_3))

    def _decode(self, enc: Encoded, adapt: Adapt | None = None) -> Tensor:
        """Finish the network: SNR-guided fusion of the light and transformer branches, then the decoder.

        Returns:
            ``(B, 3, H, W)`` enhanced image (not clamped).
        """
        x, mask, fea_1, fea_2, fea_3 = enc.skips
        fea = enc.key if adapt is None else adapt(enc.key)
        fea_light = self.recon_trunk_light(fea)
        if mask is None:
            mask = snr_map(x)
        height, width = fea.shape[-2:]
        mask = F.interpolate(mask.to(fea.dtype), size=(height, width), mode="nearest")

        tokens = F.unfold(fea, kernel_size=_PATCH, stride=_PATCH).transpose(1, 2)
        patch_snr = F.unfold(mask, kernel_size=_PATCH, stride=_PATCH).mean(dim=1)
        patch_snr = patch_snr.masked_fill(patch_snr <= 0.5, 0.0)
        tokens = self.transformer(tokens, patch_snr)
        fea_long = F.fold(tokens.transpose(1, 2), (height, width), kernel_size=_PATCH, stride=_PATCH)
        fea = fea_long * (1 - mask) + fea_light * mask

        out = torch.cat([self.recon_trunk(fea), fea_3], dim=1)
        out = self._lrelu(F.pixel_shuffle(self.upconv1(out), 2))
        out = self._lrelu(F.pixel_shuffle(self.upconv2(torch.cat([out, fea_2], dim=1)), 2))
        out = self._lrelu(self.HRconv(torch.cat([out, fea_1], dim=1)))
        return self.conv_last(out) + x

    def forward(self, x: Tensor, mask: Tensor | None = None) -> Tensor:
        """The official forward; the SNR map is computed from ``x`` unless ``mask`` ``(B, 1, H, W)`` is given."""
        return self.decode(self.encode(x, mask))


_CHECKPOINTS = {
    "lol_v1": ("LOLv1.pth", "LOL-v1"),
    "lol_v2_real": ("LOLv2_real.pth", "LOL-v2 real"),
    "lol_v2_synthetic": ("LOLv2_synthetic.pth", "LOL-v2 synthetic"),
    "sid": ("sid_G.pth", "SID (sRGB)"),
    "smid": ("smid_G.pth", "SMID"),
    "sdsd_indoor": ("indoor_G.pth", "SDSD indoor"),
    "sdsd_outdoor": ("outdoor_G.pth", "SDSD outdoor"),
}
_RELEASED = {"nf": 64, "front_RBs": 1, "back_RBs": 1, "predeblur": True, "HR_in": True, "w_TSA": True}

register_preset("snr_aware.released", "configuration of every released SNR-Aware checkpoint", **_RELEASED)
for _tag, (_file, _data) in _CHECKPOINTS.items():
    register_preset(f"snr_aware.{_tag}", f"official checkpoint {_file} trained on {_data}", **_RELEASED)
