"""HVI-CIDNet, split for temporal adaptation.

Paper: Yan, Feng, Zhang et al., "HVI: A New Color Space for Low-light Image Enhancement", CVPR 2025
(earlier: "You Only Need One Color Space: An Efficient Network for Low-light Image Enhancement", arXiv 2402.05809).
Official code: https://github.com/Fediory/HVI-CIDNet (``net/CIDNet.py``, ``net/HVI_transform.py`` at e1ce133,
``net/LCA.py``, ``net/transformer_utils.py``), MIT license. Written from scratch: module and parameter names, layer
order and formulas follow the official classes so their checkpoints load unchanged (``strict=True``); the code is
this project's own.

The network works in the HVI colour space: a dual-branch U-Net, one branch on the intensity map I and one on the
HV colour plane, exchanging information through lighten cross-attention (LCA) blocks at every level.

Differences from the official code:

* the colour transform keeps the density ``k`` as a tensor (the official ``RGB_HVI.HVIT`` calls ``k.item()``, a
  host synchronisation on accelerators); the numbers are the same, and, as in the official code, no gradient
  reaches ``k`` through the inverse transform;
* the evaluation switches the official scripts set on ``model.trans`` (``gated``, ``gated2``, ``alpha``,
  ``alpha_s``) are constructor arguments here, so presets and saved files carry them;
* hue and the HSV-to-RGB selection use ``torch.where`` in place of boolean-mask assignments (same values);
* the two branches run in channels_last layout, layer norms use ``F.layer_norm`` on the ``(B, H, W, C)`` view and
  the cross-attention shares Restormer's copy-free attention (``restormer.attend_and_project``): faster on CPU, same
  mathematics, float32 rounding differences only. Tensors crossing the API are contiguous.

Injection point (TAMI): the HV-branch feature after ``HV_LCA3`` and before ``HV_LCA4``, ``(B, channels[3], H/8,
W/8)``; it is also the memory key. ``adapt`` replaces that feature wherever the decoder reads it (``HV_LCA4`` and the
cross-attention input of ``I_LCA4``); the I-branch features themselves are never modified.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import InputError
from .base import Adapt, Backbone, Encoded
from .registry import BACKBONES, register_preset
from .restormer import attend_and_project, gated_half, tokens

_EPS = 1e-8  # the colour transform's epsilon


class LayerNorm(nn.Module):
    """Layer norm over the channels of ``(B, C, H, W)`` (eps 1e-6), official ``weight``/``bias`` keys.

    Computed by ``F.layer_norm`` on the ``(B, H, W, C)`` view (free for channels_last input); output channels_last.
    """

    def __init__(self, normalized_shape: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(normalized_shape))
        self.bias = nn.Parameter(torch.zeros(normalized_shape))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        y = x.permute(0, 2, 3, 1)
        return F.layer_norm(y, y.shape[-1:], self.weight, self.bias, self.eps).permute(0, 3, 1, 2)


class NormDownsample(nn.Module):
    """3x3 conv ``in_ch -> out_ch``, bilinear x0.5 (align_corners), PReLU, optional layer norm."""

    def __init__(self, in_ch: int, out_ch: int, use_norm: bool = False) -> None:
        super().__init__()
        self.use_norm = use_norm
        if use_norm:
            self.norm = LayerNorm(out_ch)
        self.prelu = nn.PReLU()
        self.down = nn.Sequential(nn.Conv2d(in_ch, out_ch, kernel_size=3, padding=1, bias=False))

    def forward(self, x: Tensor) -> Tensor:
        x = F.interpolate(self.down(x), scale_factor=0.5, mode="bilinear", align_corners=True)
        x = self.prelu(x)
        return self.norm(x) if self.use_norm else x


class NormUpsample(nn.Module):
    """3x3 conv ``in_ch -> out_ch``, bilinear x2 (align_corners), concat the skip, 1x1 conv, PReLU, optional norm."""

    def __init__(self, in_ch: int, out_ch: int, use_norm: bool = False) -> None:
        super().__init__()
        self.use_norm = use_norm
        if use_norm:
            self.norm = LayerNorm(out_ch)
        self.prelu = nn.PReLU()
        self.up_scale = nn.Sequential(nn.Conv2d(in_ch, out_ch, kernel_size=3, padding=1, bias=False))
        self.up = nn.Conv2d(out_ch * 2, out_ch, kernel_size=1, bias=False)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        x = F.interpolate(self.up_scale(x), scale_factor=2.0, mode="bilinear", align_corners=True)
        x = self.prelu(self.up(torch.cat([x, skip], dim=1)))
        return self.norm(x) if self.use_norm else x


class CAB(nn.Module):
    """Cross-attention block: queries from ``x``, keys and values from ``y``, attention across channels.

    Restormer's transposed attention with q and kv from different inputs; computed by
    :func:`tami.backbones.restormer.attend_and_project` (no normalised copies, projection folded in).

    Args:
        dim: channels of ``x`` and ``y``.
        num_heads: heads (``dim`` must be divisible by it).
        bias: whether the convolutions have biases.
    """

    def __init__(self, dim: int, num_heads: int, bias: bool = False) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.temperature = nn.Parameter(torch.ones(num_heads, 1, 1))
        self.q = nn.Conv2d(dim, dim, kernel_size=1, bias=bias)
        self.q_dwconv = nn.Conv2d(dim, dim, kernel_size=3, padding=1, groups=dim, bias=bias)
        self.kv = nn.Conv2d(dim, dim * 2, kernel_size=1, bias=bias)
        self.kv_dwconv = nn.Conv2d(dim * 2, dim * 2, kernel_size=3, padding=1, groups=dim * 2, bias=bias)
        self.project_out = nn.Conv2d(dim, dim, kernel_size=1, bias=bias)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        q = tokens(self.q_dwconv(self.q(x)))
        k, v = tokens(self.kv_dwconv(self.kv(y))).chunk(2, dim=-1)
        return attend_and_project(q, k, v, self.num_heads, self.temperature, self.project_out, x.shape[-2:])


class IEL(nn.Module):
    """Intensity enhancement layer: 1x1 conv to 2h, depth-wise 3x3, ``(tanh(dw(a)) + a) * (tanh(dw(b)) + b)``, 1x1.

    The halves a and b are computed by :func:`tami.backbones.restormer.gated_half` (dense channels_last tensors).

    Args:
        dim: channels in and out.
        ffn_expansion_factor: hidden width ``h = int(dim * ffn_expansion_factor)``.
        bias: whether the convolutions have biases.
    """

    def __init__(self, dim: int, ffn_expansion_factor: float = 2.66, bias: bool = False) -> None:
        super().__init__()
        hidden = int(dim * ffn_expansion_factor)
        self.project_in = nn.Conv2d(dim, hidden * 2, kernel_size=1, bias=bias)
        self.dwconv = nn.Conv2d(hidden * 2, hidden * 2, kernel_size=3, padding=1, groups=hidden * 2, bias=bias)
        self.dwconv1 = nn.Conv2d(hidden, hidden, kernel_size=3, padding=1, groups=hidden, bias=bias)
        self.dwconv2 = nn.Conv2d(hidden, hidden, kernel_size=3, padding=1, groups=hidden, bias=bias)
        self.project_out = nn.Conv2d(hidden, dim, kernel_size=1, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        hidden = self.project_out.in_channels
        a = gated_half(x, self.project_in, self.dwconv, 0, hidden)
        b = gated_half(x, self.project_in, self.dwconv, hidden, 2 * hidden)
        a = torch.tanh(self.dwconv1(a)) + a
        b = torch.tanh(self.dwconv2(b)) + b
        return self.project_out(a * b)


class HV_LCA(nn.Module):  # noqa: N801 - official class name
    """HV-branch lighten cross-attention: ``x + CAB(LN(x), LN(y))``, then ``IEL(LN(x))`` (no residual)."""

    def __init__(self, dim: int, num_heads: int, bias: bool = False) -> None:
        super().__init__()
        self.gdfn = IEL(dim)
        self.norm = LayerNorm(dim)
        self.ffn = CAB(dim, num_heads, bias)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        x = x + self.ffn(self.norm(x), self.norm(y))
        return self.gdfn(self.norm(x))


class I_LCA(nn.Module):  # noqa: N801 - official class name
    """I-branch lighten cross-attention: ``x + CAB(LN(x), LN(y))``, then ``x + IEL(LN(x))``."""

    def __init__(self, dim: int, num_heads: int, bias: bool = False) -> None:
        super().__init__()
        self.norm = LayerNorm(dim)
        self.gdfn = IEL(dim)
        self.ffn = CAB(dim, num_heads, bias)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        x = x + self.ffn(self.norm(x), self.norm(y))
        return x + self.gdfn(self.norm(x))


class RGB_HVI(nn.Module):  # noqa: N801 - official class name
    """The HVI colour transform and its inverse, with the learnable density ``k`` (key ``density_k``).

    Args:
        gated: multiply the recovered saturation by ``alpha_s`` (official LOLv1 evaluation).
        gated2: multiply the output RGB by ``alpha`` (official LOLv2-real evaluation).
        alpha: output brightness scale used when ``gated2``.
        alpha_s: saturation scale used when ``gated``.
    """

    def __init__(self, gated: bool = False, gated2: bool = False, alpha: float = 1.0, alpha_s: float = 1.3):
        super().__init__()
        self.density_k = nn.Parameter(torch.full([1], 0.2))
        self.gated = gated
        self.gated2 = gated2
        self.alpha = alpha
        self.alpha_s = alpha_s

    def HVIT(self, img: Tensor) -> Tensor:  # noqa: N802 - official method name
        """RGB ``(B, 3, H, W)`` in [0, 1] -> HVI ``(B, 3, H, W)``: H, V in [-1, 1], I = max(R, G, B)."""
        red, green, blue = img.unbind(1)
        value, _ = img.max(1)
        img_min, _ = img.min(1)
        delta = value - img_min + _EPS
        # hue sextant: red wins ties over green, green over blue; grey pixels have hue 0
        hue = torch.where(
            red == value,
            ((green - blue) / delta) % 6,
            torch.where(
                green == value,
                2.0 + (blue - red) / delta,
                torch.where(blue == value, 4.0 + (red - green) / delta, torch.zeros_like(value)),
            ),
        )
        hue = torch.where(img_min == value, torch.zeros_like(hue), hue) / 6.0
        saturation = (value - img_min) / (value + _EPS)
        saturation = torch.where(value == 0, torch.zeros_like(saturation), saturation)
        hue, saturation, value = hue.unsqueeze(1), saturation.unsqueeze(1), value.unsqueeze(1)
        density = ((value * 0.5 * math.pi).sin() + _EPS).pow(self.density_k)
        chroma = density * saturation
        angle = 2.0 * math.pi * hue
        return torch.cat([chroma * angle.cos(), chroma * angle.sin(), value], dim=1)

    def PHVIT(self, hvi: Tensor) -> Tensor:  # noqa: N802 - official method name
        """HVI ``(B, 3, H, W)`` -> RGB ``(B, 3, H, W)`` (in [0, 1], times ``alpha`` when ``gated2``)."""
        h_plane = hvi[:, 0].clamp(-1, 1)
        v_plane = hvi[:, 1].clamp(-1, 1)
        value = hvi[:, 2].clamp(0, 1)
        density = ((value * 0.5 * math.pi).sin() + _EPS).pow(self.density_k.detach()) + _EPS
        h_plane = (h_plane / density).clamp(-1, 1)
        v_plane = (v_plane / density).clamp(-1, 1)
        hue = torch.atan2(v_plane + _EPS, h_plane + _EPS) / (2 * math.pi) % 1
        sat = torch.sqrt(h_plane**2 + v_plane**2 + _EPS)
        if self.gated:
            sat = sat * self.alpha_s
        sat = sat.clamp(0, 1)
        value = value.clamp(0, 1)

        sextant = torch.floor(hue * 6.0)
        frac = hue * 6.0 - sextant
        p = value * (1.0 - sat)
        q = value * (1.0 - frac * sat)
        t = value * (1.0 - (1.0 - frac) * sat)
        zero = torch.zeros_like(value)
        s0, s1, s2, s3, s4, s5 = (sextant == i for i in range(6))
        # sextant 6 (hue rounding up to 1) matches none and stays black, as in the official masked assignment
        red = torch.where(s0 | s5, value, torch.where(s1, q, torch.where(s2 | s3, p, torch.where(s4, t, zero))))
        green = torch.where(s0, t, torch.where(s1 | s2, value, torch.where(s3, q, torch.where(s4 | s5, p, zero))))
        blue = torch.where(s0 | s1, p, torch.where(s2, t, torch.where(s3 | s4, value, torch.where(s5, q, zero))))
        rgb = torch.stack([red, green, blue], dim=1)
        if self.gated2:
            rgb = rgb * self.alpha
        return rgb


def _head(in_ch: int, out_ch: int) -> nn.Sequential:
    return nn.Sequential(nn.ReplicationPad2d(1), nn.Conv2d(in_ch, out_ch, kernel_size=3, bias=False))


@BACKBONES.register("hvi_cidnet")
class CIDNet(Backbone):
    """HVI-CIDNet with the official constructor arguments and state_dict keys, plus its inference switches.

    Args:
        channels: widths ``(ch1, ch2, ch3, ch4)``: full resolution, then H/2, H/4, H/8.
        heads: attention heads per level.
        norm: layer norm after every down/upsampling block.
        gated: scale the saturation by ``alpha_s`` in the inverse transform (official LOLv1 evaluation).
        gated2: scale the output by ``alpha`` (official LOLv2-real evaluation).
        alpha: output scale used when ``gated2``.
        alpha_s: saturation scale used when ``gated``.

    ``forward(x)``: ``x`` ``(B, 3, H, W)`` RGB in [0, 1], any H and W (padded to 8 inside); returns ``(B, 3, H, W)`` RGB
    (in [0, 1] unless ``gated2`` with ``alpha > 1``).
    """

    arch = "hvi_cidnet"
    multiple_of = 8
    inject_stride = 8
    detect_keys = ("trans.density_k", "HVE_block0.1.weight", "IE_block0.1.weight", "HV_LCA3.ffn.temperature")

    def __init__(
        self,
        channels: tuple[int, int, int, int] | list[int] = (36, 36, 72, 144),
        heads: tuple[int, int, int, int] | list[int] = (1, 2, 4, 8),
        norm: bool = False,
        gated: bool = False,
        gated2: bool = False,
        alpha: float = 1.0,
        alpha_s: float = 1.3,
    ) -> None:
        super().__init__()
        if len(channels) != 4 or len(heads) != 4:
            raise InputError(
                f"hvi_cidnet needs 4 entries in channels and heads, got {list(channels)} and {list(heads)}"
            )
        if any(c % h for c, h in zip(channels[1:], heads[1:])):
            raise InputError(
                f"hvi_cidnet channels[1:] {list(channels[1:])} must be divisible by heads[1:] {list(heads[1:])}"
            )
        ch1, ch2, ch3, ch4 = channels
        _, head2, head3, head4 = heads
        self.inject_channels = ch4
        self.config = {
            "channels": list(channels),
            "heads": list(heads),
            "norm": norm,
            "gated": gated,
            "gated2": gated2,
            "alpha": alpha,
            "alpha_s": alpha_s,
        }

        self.HVE_block0 = _head(3, ch1)
        self.HVE_block1 = NormDownsample(ch1, ch2, use_norm=norm)
        self.HVE_block2 = NormDownsample(ch2, ch3, use_norm=norm)
        self.HVE_block3 = NormDownsample(ch3, ch4, use_norm=norm)
        self.HVD_block3 = NormUpsample(ch4, ch3, use_norm=norm)
        self.HVD_block2 = NormUpsample(ch3, ch2, use_norm=norm)
        self.HVD_block1 = NormUpsample(ch2, ch1, use_norm=norm)
        self.HVD_block0 = _head(ch1, 2)

        self.IE_block0 = _head(1, ch1)
        self.IE_block1 = NormDownsample(ch1, ch2, use_norm=norm)
        self.IE_block2 = NormDownsample(ch2, ch3, use_norm=norm)
        self.IE_block3 = NormDownsample(ch3, ch4, use_norm=norm)
        self.ID_block3 = NormUpsample(ch4, ch3, use_norm=norm)
        self.ID_block2 = NormUpsample(ch3, ch2, use_norm=norm)
        self.ID_block1 = NormUpsample(ch2, ch1, use_norm=norm)
        self.ID_block0 = _head(ch1, 1)

        self.HV_LCA1 = HV_LCA(ch2, head2)
        self.HV_LCA2 = HV_LCA(ch3, head3)
        self.HV_LCA3 = HV_LCA(ch4, head4)
        self.HV_LCA4 = HV_LCA(ch4, head4)
        self.HV_LCA5 = HV_LCA(ch3, head3)
        self.HV_LCA6 = HV_LCA(ch2, head2)

        self.I_LCA1 = I_LCA(ch2, head2)
        self.I_LCA2 = I_LCA(ch3, head3)
        self.I_LCA3 = I_LCA(ch4, head4)
        self.I_LCA4 = I_LCA(ch4, head4)
        self.I_LCA5 = I_LCA(ch3, head3)
        self.I_LCA6 = I_LCA(ch2, head2)

        self.trans = RGB_HVI(gated=gated, gated2=gated2, alpha=alpha, alpha_s=alpha_s)

    def _encode(self, x: Tensor) -> Encoded:
        """Run both branches on ``x`` ``(B, 3, H, W)`` up to ``HV_LCA3``/``I_LCA3``.

        Returns:
            ``key`` = HV-branch output of ``HV_LCA3`` ``(B, ch4, H/8, W/8)`` (contiguous); ``skips`` = the HVI
            image, the I-branch output of ``I_LCA3`` and the skip features of both branches.
        """
        hvi = self.trans.HVIT(x.contiguous())
        i = hvi[:, 2:3]

        # both branches run in channels_last layout (the colour transforms in the plain one)
        i_enc0 = self.IE_block0(i).contiguous(memory_format=torch.channels_last)
        i_enc1 = self.IE_block1(i_enc0)
        hv_0 = self.HVE_block0(hvi.contiguous(memory_format=torch.channels_last))
        hv_1 = self.HVE_block1(hv_0)

        i_jump1 = self.I_LCA1(i_enc1, hv_1)
        hv_jump1 = self.HV_LCA1(hv_1, i_enc1)
        i_enc2 = self.IE_block2(i_jump1)
        hv_2 = self.HVE_block2(hv_jump1)

        # the official network feeds the level-2 LCA outputs only to the skips, not to the next downsampling
        i_jump2 = self.I_LCA2(i_enc2, hv_2)
        hv_jump2 = self.HV_LCA2(hv_2, i_enc2)
        i_enc3 = self.IE_block3(i_enc2)
        hv_3 = self.HVE_block3(hv_2)

        i_enc4 = self.I_LCA3(i_enc3, hv_3)
        hv_4 = self.HV_LCA3(hv_3, i_enc3).contiguous()
        return Encoded(key=hv_4, skips=(hvi, i_enc4, (i_enc0, i_jump1, i_jump2), (hv_0, hv_jump1, hv_jump2)))

    def _decode(self, enc: Encoded, adapt: Adapt | None = None) -> Tensor:
        """Finish both branches from ``enc``, replacing the HV feature by ``adapt(enc.key)``.

        Returns:
            ``(B, 3, H, W)`` enhanced RGB.
        """
        hvi, i_enc4, (i_jump0, i_jump1, i_jump2), (hv_jump0, hv_jump1, hv_jump2) = enc.skips
        hv_4 = enc.key if adapt is None else adapt(enc.key)
        hv_4 = hv_4.contiguous(memory_format=torch.channels_last)

        i_dec4 = self.I_LCA4(i_enc4, hv_4)
        hv_4 = self.HV_LCA4(hv_4, i_enc4)

        hv_3 = self.HVD_block3(hv_4, hv_jump2)
        i_dec3 = self.ID_block3(i_dec4, i_jump2)
        i_dec2 = self.I_LCA5(i_dec3, hv_3)
        hv_2 = self.HV_LCA5(hv_3, i_dec3)

        hv_2 = self.HVD_block2(hv_2, hv_jump1)
        i_dec2 = self.ID_block2(i_dec3, i_jump1)  # the official network skips I_LCA5's output here

        i_dec1 = self.I_LCA6(i_dec2, hv_2)
        hv_1 = self.HV_LCA6(hv_2, i_dec2)

        i_dec0 = self.ID_block0(self.ID_block1(i_dec1, i_jump0))
        hv_0 = self.HVD_block0(self.HVD_block1(hv_1, hv_jump0))
        return self.trans.PHVIT((torch.cat([hv_0, i_dec0], dim=1) + hvi).contiguous())



_WEIGHTS = "official weights (https://github.com/Fediory/HVI-CIDNet, Readme 'Weights and Results')"

register_preset(
    "hvi_cidnet.released",
    "released configuration (channels [36,36,72,144]); inference switches off as in CIDNet(); the setting of "
    "HVI-CIDNet(-TAMI) in the TAMI paper",
)
register_preset(
    "hvi_cidnet.lol_v1",
    f"LOLv1/w_perc.pth or wo_perc.pth, {_WEIGHTS}; gated saturation (x1.3) as eval.py --lol sets it",
    gated=True,
)
register_preset(
    "hvi_cidnet.lol_v2_real",
    "LOLv2_real/w_perc.pth ('best GT mean'); output x0.84 (gated2) as eval.py --lol_v2_real --best_GT_mean",
    gated2=True,
    alpha=0.84,
)
register_preset(
    "hvi_cidnet.lol_v2_real_best_psnr",
    "LOLv2_real/best_PSNR.pth; output x0.8 (gated2) as eval.py --lol_v2_real --best_PSNR",
    gated2=True,
    alpha=0.8,
)
register_preset(
    "hvi_cidnet.lol_v2_real_best_ssim",
    "LOLv2_real/best_SSIM.pth; output x0.82 (gated2) as eval.py --lol_v2_real --best_SSIM",
    gated2=True,
    alpha=0.82,
)
register_preset(
    "hvi_cidnet.lol_v2_syn",
    "LOLv2_syn/w_perc.pth or wo_perc.pth; no switches (eval.py --lol_v2_syn)",
)
register_preset(
    "hvi_cidnet.generalization",
    "LOLv2_syn/generalization.pth (trained with random gamma, for unpaired images: DICM, LIME, MEF, NPE, VV); "
    "no switches (eval.py --unpaired sets alpha without gated2, which has no effect)",
)
register_preset(
    "hvi_cidnet.sice",
    "SICE.pth (SICE-Mix / SICE-Grad); no switches (eval.py --SICE_mix / --SICE_grad)",
)
register_preset(
    "hvi_cidnet.sid",
    "SID.pth (Sony-Total-Dark); no switches (eval_SID_blur.py --SID)",
)
register_preset(
    "hvi_cidnet.lol_blur",
    "LOL-Blur.pth (joint low-light deblurring); no switches (eval_SID_blur.py --Blur)",
)
