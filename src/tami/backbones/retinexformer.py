"""Retinexformer, split at the denoiser bottleneck for temporal adaptation.

Paper: Cai et al., "Retinexformer: One-stage Retinex-based Transformer for Low-light Image Enhancement", ICCV 2023.
Official code: https://github.com/caiyuanhao1998/Retinexformer (``basicsr/models/archs/RetinexFormer_arch.py``,
read at a72c8f6), MIT license. Written from scratch; class, attribute and argument names follow the official ones so
official checkpoints load with ``strict=True``.

Network (one stage; ``stage`` stages run in sequence): an illumination estimator maps the image to an illumination
feature ``illu_fea`` (n_feat channels) and a map ``illu_map``; the lit-up image ``img * illu_map + img`` goes through
a two-level U-shaped denoiser of illumination-guided attention blocks (IGAB: channel-wise attention whose values are
modulated by ``illu_fea``, then a depth-wise feed-forward), plus a global residual.

Split for TAMI: ``encode`` stops at the denoiser features entering the bottleneck IGAB of the last stage
(``(B, 4*n_feat, H/4, W/4)``); ``decode`` applies ``adapt`` there and finishes the network.

Two execution orders with the same parameters:

* ``fast`` (default): channels_last tensors throughout, 1x1 convolutions as matrix products on the token view, the
  L2 normalisations of q and k applied to the small ``(d, d)`` Gram matrix instead of the ``(N, d)`` tensors, the
  attention matrix folded into the output projection (one ``N x C x C`` product instead of two), the projection bias
  carried by the positional convolution, residual additions done by the BLAS call. Same mathematics; results differ
  from the official order by float32 rounding only (about 1e-6).
* reference (``model.fast = False``): the official operation order (layout changes and copies included); used as a
  baseline by ``benchmarks/backbones.py`` and as a cross-check in the tests.

Optional bfloat16 CPU inference: :meth:`RetinexFormer.forward_bf16` (autocast; max-abs error a few 1e-3 against
float32, about 1.5x faster on CPUs with AVX512-BF16; see ``benchmarks/RESULTS.md``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import InputError
from .base import Adapt, Backbone, Encoded
from .registry import BACKBONES, register_preset

_EPS = 1e-12  # F.normalize's default eps, as used by the official attention


_FUSED_OPS = torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")


def _fusable(x: Tensor) -> bool:
    """Whether oneDNN's fused GELU kernels may run: float32 CPU inference (they have no autograd or autocast)."""
    return (_FUSED_OPS and x.device.type == "cpu" and x.dtype == torch.float32 and not torch.is_grad_enabled()
            and not torch.is_autocast_enabled("cpu"))


def _linear_gelu(x: Tensor, weight: Tensor) -> Tensor:
    """``gelu(x @ weight^T)``, one oneDNN call where possible."""
    if _fusable(x):
        return torch.ops.mkldnn._linear_pointwise(x, weight, None, "gelu", [], "none")
    return F.gelu(F.linear(x, weight))


def _dwconv_gelu(x: Tensor, weight: Tensor) -> Tensor:
    """``gelu(depthwise_conv3x3(x))`` with padding 1, one oneDNN call where possible."""
    groups = weight.shape[0]
    if _fusable(x):
        return torch.ops.mkldnn._convolution_pointwise(
            x, weight, None, [1, 1], [1, 1], [1, 1], groups, "gelu", [], "none"
        )
    return F.gelu(F.conv2d(x, weight, None, 1, 1, 1, groups))


def _tokens(x: Tensor) -> Tensor:
    """``(B, C, H, W)`` -> ``(B, H*W, C)``; a free view when ``x`` is channels_last."""
    b, c, h, w = x.shape
    return x.permute(0, 2, 3, 1).reshape(b, h * w, c)


def _image(t: Tensor, h: int, w: int) -> Tensor:
    """``(B, H*W, C)`` contiguous -> ``(B, C, H, W)`` channels_last view."""
    b, _, c = t.shape
    return t.view(b, h, w, c).permute(0, 3, 1, 2)


class Illumination_Estimator(nn.Module):  # noqa: N801 - official name
    """Illumination prior: ``(illu_fea, illu_map)`` from the image and its channel mean.

    Args:
        n_fea_middle: width of the illumination feature (n_feat).
        n_fea_in: image channels + 1 (the mean channel); also the group count of ``depth_conv``.
        n_fea_out: channels of the illumination map.
    """

    def __init__(self, n_fea_middle: int, n_fea_in: int = 4, n_fea_out: int = 3) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(n_fea_in, n_fea_middle, kernel_size=1, bias=True)
        self.depth_conv = nn.Conv2d(
            n_fea_middle, n_fea_middle, kernel_size=5, padding=2, bias=True, groups=n_fea_in
        )
        self.conv2 = nn.Conv2d(n_fea_middle, n_fea_out, kernel_size=1, bias=True)

    def forward(self, img: Tensor, fast: bool = False) -> tuple[Tensor, Tensor]:
        """Args: img ``(B, 3, H, W)``. Returns ``illu_fea`` ``(B, n_feat, H, W)`` and ``illu_map`` ``(B, 3, H, W)``."""
        if fast:
            # conv1(cat[img, mean(img)]) with the mean channel folded into the image weights.
            w = self.conv1.weight
            c = img.shape[1]
            weight = w[:, :c] + w[:, c:] / c
            x_1 = F.conv2d(img, weight, self.conv1.bias)
        else:
            mean_c = img.mean(dim=1, keepdim=True)
            x_1 = self.conv1(torch.cat([img, mean_c], dim=1))
        illu_fea = self.depth_conv(x_1)
        return illu_fea, self.conv2(illu_fea)


class IG_MSA(nn.Module):  # noqa: N801 - official name
    """Illumination-guided multi-head self-attention across channels (attention maps are ``d x d`` per head).

    Args:
        dim: input channels.
        dim_head: channels per head.
        heads: number of heads (``dim == dim_head * heads``).
    """

    def __init__(self, dim: int, dim_head: int = 64, heads: int = 8) -> None:
        super().__init__()
        self.num_heads = heads
        self.dim_head = dim_head
        self.to_q = nn.Linear(dim, dim_head * heads, bias=False)
        self.to_k = nn.Linear(dim, dim_head * heads, bias=False)
        self.to_v = nn.Linear(dim, dim_head * heads, bias=False)
        self.rescale = nn.Parameter(torch.ones(heads, 1, 1))
        self.proj = nn.Linear(dim_head * heads, dim, bias=True)
        self.pos_emb = nn.Sequential(
            nn.Conv2d(dim, dim, 3, 1, 1, bias=False, groups=dim),
            nn.GELU(),
            nn.Conv2d(dim, dim, 3, 1, 1, bias=False, groups=dim),
        )
        self.dim = dim

    def forward(self, x_in: Tensor, illu_fea_trans: Tensor) -> Tensor:
        """Official order. Args: ``x_in``, ``illu_fea_trans`` ``(B, H, W, C)``. Returns ``(B, H, W, C)``."""
        b, h, w, c = x_in.shape
        heads, d = self.num_heads, self.dim_head
        x = x_in.reshape(b, h * w, c)
        q_inp, k_inp, v_inp = self.to_q(x), self.to_k(x), self.to_v(x)

        def split(t: Tensor) -> Tensor:  # (b, n, heads*d) -> (b, heads, n, d)
            return t.reshape(b, h * w, heads, d).permute(0, 2, 1, 3)

        q, k, v, illu = map(split, (q_inp, k_inp, v_inp, illu_fea_trans.flatten(1, 2)))
        v = v * illu
        q, k, v = q.transpose(-2, -1), k.transpose(-2, -1), v.transpose(-2, -1)
        q = F.normalize(q, dim=-1, p=2)
        k = F.normalize(k, dim=-1, p=2)
        attn = (k @ q.transpose(-2, -1)) * self.rescale
        attn = attn.softmax(dim=-1)
        out = (attn @ v).permute(0, 3, 1, 2).reshape(b, h * w, heads * d)
        out_c = self.proj(out).view(b, h, w, c)
        out_p = self.pos_emb(v_inp.reshape(b, h, w, c).permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        return out_c + out_p

    def forward_fast(self, x: Tensor, illu: Tensor) -> Tensor:
        """Residual block ``x + attention(x)`` in the fast order.

        Args:
            x: ``(B, C, H, W)`` features, channels_last.
            illu: ``(B, C, H, W)`` illumination feature, channels_last.

        Returns:
            ``(B, C, H, W)`` channels_last.
        """
        b, c, h, w = x.shape
        heads, d = self.num_heads, self.dim_head
        t = _tokens(x)
        qk = F.linear(t, torch.cat([self.to_q.weight, self.to_k.weight]))
        v_inp = F.linear(t, self.to_v.weight)
        v = v_inp * _tokens(illu)
        # normalize(k) @ normalize(q)^T over tokens == (k^T q) / (|k| |q|^T): one Gram matrix of [q, k] over the
        # tokens gives k^T q and, on its diagonal, the squared norms of q and k.
        gram = torch.bmm(qk.transpose(1, 2), qk)  # (b, 2c, 2c)
        norms = gram.diagonal(dim1=1, dim2=2).sqrt().clamp_min(_EPS)  # (b, 2c): |q| then |k|
        kq = gram[:, c:, :c].reshape(b, heads, d, heads, d)
        kq = kq.diagonal(dim1=1, dim2=3).permute(0, 3, 1, 2)  # (b, heads, d, d) per-head blocks
        nq = norms[:, :c].reshape(b, heads, 1, d)
        nk = norms[:, c:].reshape(b, heads, d, 1)
        attn = (kq / (nk * nq) * self.rescale).softmax(dim=-1)
        # proj(attn @ v) == v @ M with M = blockdiag(attn^T) @ W_proj^T, a (C, C) matrix per image.
        w_proj = self.proj.weight.t().reshape(heads, d, c)
        m = torch.matmul(attn.transpose(-2, -1), w_proj).reshape(b, c, c)
        conv0, conv2 = self.pos_emb[0], self.pos_emb[2]
        p = _dwconv_gelu(_image(v_inp, h, w), conv0.weight)
        p = F.conv2d(p, conv2.weight, self.proj.bias, 1, 1, 1, c)
        out = _tokens(p).add_(t)
        for i in range(b):  # 2-D in-place addmm writes into ``out`` directly (3-D baddbmm_ goes via a copy)
            out[i].addmm_(v[i], m[i])
        return _image(out, h, w)


class FeedForward(nn.Module):
    """Point-wise expansion, depth-wise 3x3, point-wise projection, with GELUs (official layout)."""

    def __init__(self, dim: int, mult: int = 4) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(dim, dim * mult, 1, 1, bias=False),
            nn.GELU(),
            nn.Conv2d(dim * mult, dim * mult, 3, 1, 1, bias=False, groups=dim * mult),
            nn.GELU(),
            nn.Conv2d(dim * mult, dim, 1, 1, bias=False),
        )

    def forward(self, x: Tensor) -> Tensor:
        """Args: x ``(B, H, W, C)``. Returns ``(B, H, W, C)``."""
        return self.net(x.permute(0, 3, 1, 2).contiguous()).permute(0, 2, 3, 1)


class PreNorm(nn.Module):
    """LayerNorm over channels, then ``fn``."""

    def __init__(self, dim: int, fn: nn.Module) -> None:
        super().__init__()
        self.fn = fn
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: Tensor) -> Tensor:
        """Args: x ``(B, H, W, C)``. Returns ``fn(norm(x))``."""
        return self.fn(self.norm(x))

    def forward_fast(self, x: Tensor) -> Tensor:
        """Residual ``x + fn(norm(x))`` for a :class:`FeedForward` ``fn`` on channels_last ``(B, C, H, W)``."""
        b, c, h, w = x.shape
        conv1, conv2, conv3 = self.fn.net[0], self.fn.net[2], self.fn.net[4]
        hidden = conv1.out_channels
        t = _tokens(x)
        y = F.layer_norm(t, (c,), self.norm.weight, self.norm.bias, self.norm.eps)
        y = _linear_gelu(y, conv1.weight.view(hidden, c))
        y = _dwconv_gelu(_image(y, h, w), conv2.weight)
        y = _tokens(y)
        w3 = conv3.weight.view(c, hidden)
        if _fusable(y):  # projection and residual addition in one oneDNN call
            out = torch.ops.mkldnn._linear_pointwise.binary(y, t, w3, None, "add")
        else:
            out = torch.addmm(t.reshape(b * h * w, c), y.reshape(b * h * w, hidden), w3.t())
        return _image(out.view(b, h * w, c), h, w)


class IGAB(nn.Module):
    """Illumination-guided attention block: ``num_blocks`` x (IG_MSA + residual, PreNorm FeedForward + residual)."""

    def __init__(self, dim: int, dim_head: int = 64, heads: int = 8, num_blocks: int = 2) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            nn.ModuleList([IG_MSA(dim=dim, dim_head=dim_head, heads=heads), PreNorm(dim, FeedForward(dim=dim))])
            for _ in range(num_blocks)
        )

    def forward(self, x: Tensor, illu_fea: Tensor, fast: bool = False) -> Tensor:
        """Args: x, illu_fea ``(B, C, H, W)`` (channels_last when ``fast``). Returns ``(B, C, H, W)``."""
        if fast:
            for attn, ff in self.blocks:
                x = ff.forward_fast(attn.forward_fast(x, illu_fea))
            return x
        x = x.permute(0, 2, 3, 1)
        illu = illu_fea.permute(0, 2, 3, 1)
        for attn, ff in self.blocks:
            x = attn(x, illu_fea_trans=illu) + x
            x = ff(x) + x
        return x.permute(0, 3, 1, 2)


class Denoiser(nn.Module):
    """Two-level U-shaped denoiser of IGABs guided by the illumination feature.

    Args:
        in_dim: image channels in.
        out_dim: image channels out.
        dim: base width (n_feat); also the head width of every IGAB.
        level: number of down-samplings.
        num_blocks: IGAB depths ``[level 0, ..., bottleneck]``.
    """

    def __init__(self, in_dim: int = 3, out_dim: int = 3, dim: int = 31, level: int = 2,
                 num_blocks: list[int] | tuple[int, ...] = (2, 4, 4)) -> None:
        super().__init__()
        self.dim = dim
        self.level = level
        self.embedding = nn.Conv2d(in_dim, dim, 3, 1, 1, bias=False)
        self.encoder_layers = nn.ModuleList()
        dim_level = dim
        for i in range(level):
            self.encoder_layers.append(nn.ModuleList([
                IGAB(dim=dim_level, num_blocks=num_blocks[i], dim_head=dim, heads=dim_level // dim),
                nn.Conv2d(dim_level, dim_level * 2, 4, 2, 1, bias=False),
                nn.Conv2d(dim_level, dim_level * 2, 4, 2, 1, bias=False),
            ]))
            dim_level *= 2
        self.bottleneck = IGAB(dim=dim_level, dim_head=dim, heads=dim_level // dim, num_blocks=num_blocks[-1])
        self.decoder_layers = nn.ModuleList()
        for i in range(level):
            self.decoder_layers.append(nn.ModuleList([
                nn.ConvTranspose2d(dim_level, dim_level // 2, stride=2, kernel_size=2, padding=0, output_padding=0),
                nn.Conv2d(dim_level, dim_level // 2, 1, 1, bias=False),
                IGAB(dim=dim_level // 2, num_blocks=num_blocks[level - 1 - i], dim_head=dim,
                     heads=(dim_level // 2) // dim),
            ]))
            dim_level //= 2
        self.mapping = nn.Conv2d(dim, out_dim, 3, 1, 1, bias=False)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

    def encode(self, x: Tensor, illu_fea: Tensor, fast: bool = False) -> tuple[Tensor, tuple]:
        """Embedding and encoder levels.

        Returns:
            The bottleneck input ``(B, 2**level * dim, H/2**level, W/2**level)`` and the skips
            ``(x, encoder features per level, illumination features per level + bottleneck)``.
        """
        fea = self.embedding(x)
        fea_encoder, illu_fea_list = [], []
        for igab, fea_down, illu_down in self.encoder_layers:
            fea = igab(fea, illu_fea, fast)
            illu_fea_list.append(illu_fea)
            fea_encoder.append(fea)
            fea = fea_down(fea)
            illu_fea = illu_down(illu_fea)
        illu_fea_list.append(illu_fea)
        return fea, (x, tuple(fea_encoder), tuple(illu_fea_list))

    def decode(self, fea: Tensor, skips: tuple, fast: bool = False) -> Tensor:
        """Bottleneck, decoder and output mapping from :meth:`encode`'s results. Returns ``(B, out_dim, H, W)``."""
        x, fea_encoder, illu_fea_list = skips
        fea = self.bottleneck(fea, illu_fea_list[-1], fast)
        for i, (up, fusion, igab) in enumerate(self.decoder_layers):
            skip = fea_encoder[self.level - 1 - i]
            fea = up(fea)
            if fast:
                b, c, h, w = fea.shape
                wf = fusion.weight.view(fusion.out_channels, 2 * c)
                out = torch.mm(_tokens(fea).reshape(-1, c), wf[:, :c].t())
                out = torch.addmm(out, _tokens(skip).reshape(-1, c), wf[:, c:].t())
                fea = _image(out.view(b, h * w, -1), h, w)
            else:
                fea = fusion(torch.cat([fea, skip], dim=1))
            fea = igab(fea, illu_fea_list[self.level - 1 - i], fast)
        return self.mapping(fea) + x

    def forward(self, x: Tensor, illu_fea: Tensor) -> Tensor:
        """Official forward: ``x`` ``(B, in_dim, H, W)``, ``illu_fea`` ``(B, dim, H, W)``."""
        fea, skips = self.encode(x, illu_fea)
        return self.decode(fea, skips)


class RetinexFormer_Single_Stage(nn.Module):  # noqa: N801 - official name
    """Estimator + denoiser: ``denoiser(img * illu_map + img, illu_fea)``."""

    def __init__(self, in_channels: int = 3, out_channels: int = 3, n_feat: int = 31, level: int = 2,
                 num_blocks: list[int] | tuple[int, ...] = (1, 1, 1)) -> None:
        super().__init__()
        self.estimator = Illumination_Estimator(n_feat)
        self.denoiser = Denoiser(in_dim=in_channels, out_dim=out_channels, dim=n_feat, level=level,
                                 num_blocks=num_blocks)

    def encode(self, img: Tensor, fast: bool = False) -> tuple[Tensor, tuple]:
        """Estimator and denoiser encoder; see :meth:`Denoiser.encode`."""
        illu_fea, illu_map = self.estimator(img, fast)
        input_img = torch.addcmul(img, img, illu_map) if fast else img * illu_map + img
        return self.denoiser.encode(input_img, illu_fea, fast)

    def forward(self, img: Tensor, fast: bool = False) -> Tensor:
        """``(B, 3, H, W)`` -> ``(B, 3, H, W)``."""
        fea, skips = self.encode(img, fast)
        return self.denoiser.decode(fea, skips, fast)


@BACKBONES.register("retinexformer")
class RetinexFormer(Backbone):
    """Retinexformer (official argument names and defaults of the released checkpoints).

    Args:
        in_channels: image channels in.
        out_channels: image channels out.
        n_feat: base width; must be divisible by 4 (the estimator's grouped convolution).
        stage: number of stages run in sequence.
        num_blocks: IGAB depths ``[level 0, level 1, bottleneck]``.

    Attributes:
        fast: run the fast operation order (default) or the official one (``False``); same results up to rounding.

    Inputs are ``(B, 3, H, W)`` float images in [0, 1] with H and W divisible by 4; outputs are not clamped.
    ``Encoded.skips`` holds ``(input_img, encoder features, illumination features per level incl. the bottleneck)``
    of the last stage; ``input_img`` ``(B, 3, H, W)`` is the lit-up image and the first illumination feature
    ``(B, n_feat, H, W)`` is ``illu_fea``, the cue TAMI's memory encoders take.
    """

    arch = "retinexformer"
    multiple_of = 4
    inject_stride = 4
    detect_keys = (
        "body.0.estimator.conv1.weight",
        "body.0.estimator.depth_conv.weight",
        "body.0.denoiser.embedding.weight",
        "body.0.denoiser.bottleneck.blocks.0.0.rescale",
    )

    def __init__(self, in_channels: int = 3, out_channels: int = 3, n_feat: int = 40, stage: int = 1,
                 num_blocks: list[int] | tuple[int, ...] = (1, 2, 2)) -> None:
        super().__init__()
        if n_feat <= 0 or n_feat % 4:
            raise InputError(f"retinexformer needs n_feat divisible by 4 (estimator groups), got {n_feat}")
        if stage < 1 or len(num_blocks) != 3:
            raise InputError(
                f"retinexformer needs stage >= 1 and three num_blocks, got stage={stage}, num_blocks={num_blocks}"
            )
        self.stage = stage
        self.body = nn.Sequential(*[
            RetinexFormer_Single_Stage(in_channels=in_channels, out_channels=out_channels, n_feat=n_feat,
                                       level=2, num_blocks=list(num_blocks))
            for _ in range(stage)
        ])
        self.inject_channels = 4 * n_feat
        self.config = {"in_channels": in_channels, "out_channels": out_channels, "n_feat": n_feat,
                       "stage": stage, "num_blocks": list(num_blocks)}
        self.fast = True

    def _encode(self, x: Tensor) -> Encoded:
        """Run earlier stages fully, then the last stage up to its bottleneck.

        Args:
            x: ``(B, 3, H, W)`` float in [0, 1], H and W divisible by 4.

        Returns:
            ``Encoded`` with ``key`` ``(B, 4*n_feat, H/4, W/4)`` (contiguous) and the last stage's skips.
        """
        if self.fast:
            x = x.contiguous(memory_format=torch.channels_last)
        for block in self.body[:-1]:
            x = block(x, self.fast)
        fea, skips = self.body[-1].encode(x, self.fast)
        return Encoded(key=fea.contiguous(), skips=skips)

    def _decode(self, enc: Encoded, adapt: Adapt | None = None) -> Tensor:
        """Finish the last stage from ``enc``; ``adapt`` replaces the bottleneck input.

        Returns:
            ``(B, 3, H, W)`` enhanced image (contiguous, not clamped).
        """
        fea = enc.key if adapt is None else adapt(enc.key)
        if self.fast:
            fea = fea.contiguous(memory_format=torch.channels_last)
        out = self.body[-1].denoiser.decode(fea, enc.skips, self.fast)
        return out.contiguous()

    def forward_bf16(self, x: Tensor) -> Tensor:
        """Opt-in bfloat16 inference on CPU: ``forward`` under ``torch.autocast("cpu", torch.bfloat16)``.

        Matrix products and convolutions run in bfloat16 (fast on CPUs with AVX512-BF16/AMX), normalisations and
        softmax in float32. Expect max-abs errors of a few 1e-3 against float32 (2.4e-3 on the official fixture); use
        it for previews, not for evaluation.

        Returns:
            ``(B, 3, H, W)`` float32.
        """
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = self.forward(x)
        return out.float()


DETECT_KEYS = RetinexFormer.detect_keys

# Every released checkpoint uses the same configuration (network_g of each Options/RetinexFormer_*.yml).
_RELEASED = "n_feat 40, stage 1, num_blocks [1,2,2]"
_CHECKPOINTS = (
    ("sdsd_indoor", "SDSD indoor", "RetinexFormer_SDSD_indoor.pth"),
    ("sdsd_outdoor", "SDSD outdoor", "RetinexFormer_SDSD_outdoor.pth"),
    ("lol_v1", "LOL-v1", "RetinexFormer_LOL_v1.pth"),
    ("lol_v2_real", "LOL-v2 real", "RetinexFormer_LOL_v2_real.pth"),
    ("lol_v2_synthetic", "LOL-v2 synthetic", "RetinexFormer_LOL_v2_synthetic.pth"),
    ("sid", "SID (sRGB)", "RetinexFormer_SID.pth"),
    ("smid", "SMID", "RetinexFormer_SMID.pth"),
    ("fivek", "MIT-Adobe FiveK (sRGB)", "RetinexFormer_FiveK.pth"),
    ("ntire", "the NTIRE 2024 low-light challenge data", "RetinexFormer_NTIRE.pth"),
)
register_preset("retinexformer.released", f"released configuration ({_RELEASED}), shared by every official checkpoint")
for _tag, _data, _file in _CHECKPOINTS:
    register_preset(f"retinexformer.{_tag}", f"official {_file}, trained on {_data}; {_RELEASED}")
del _tag, _data, _file
