"""ICMem: the encoders and projectors that build TAMI's memory and its illumination prior.

Modules (paper name -> class; TAMI-reference section 1.2), with ``C`` = the backbone's injection width:

* LEnc / HEnc :class:`Projector` (``C -> C``): 1x1 conv, GELU, depth-wise 3x3 conv (orthogonal init, zero bias).
* LPrj :class:`KeyProjector` (``C -> key_dim``): 1x1 conv.
* HPrj :class:`ValueProjector`: fuses ``F_ls`` and ``F_hs`` into the value ``V`` (``value_dim``) and reinforces the
  hidden state with a gated update of the *previous* state.
* IEnc :class:`IlluminationEncoder`: image -> one-channel illumination map in [0, 1] at the memory grid.
* IR :class:`IlluminationRefiner`: fuses ``F_ls``, the retrieved prior ``I_ip`` and the hidden state into ``F_en``
  (``illu_dim``) and updates the hidden state (a correct GRU-style gate; the research code drops the previous state).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import InputError
from .config import ILLUMINATIONS, MAX_RETRIEVAL_SCALE
from .ops import luma


def _orthogonal(module: nn.Module) -> nn.Module:
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.orthogonal_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return module


def gated_update(gates: Tensor, hidden: Tensor) -> Tensor:
    """GRU-style update ``h' = f * h * (1 - u) + u * tanh(n)`` with ``(f, u, n)`` = sigmoid, sigmoid, raw thirds.

    Args:
        gates: ``(B, 3 Ch, h, w)`` pre-activations ``(f, u, n)``.
        hidden: ``(B, Ch, h, w)`` previous state.
    """
    forget, update, new = gates.chunk(3, dim=1)
    forget, update = torch.sigmoid(forget), torch.sigmoid(update)
    return forget * hidden * (1 - update) + update * torch.tanh(new)


class Projector(nn.Module):
    """LEnc / HEnc: ``(B, C, h, w) -> (B, C, h, w)`` by 1x1 conv, GELU, depth-wise 3x3 conv."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.pw = nn.Conv2d(channels, channels, 1)
        self.dw = nn.Conv2d(channels, channels, 3, padding=1, groups=channels)
        _orthogonal(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.dw(F.gelu(self.pw(x)))


class KeyProjector(nn.Module):
    """LPrj: memory key ``(B, key_dim, h, w)`` from ``F_ls`` by a 1x1 conv."""

    def __init__(self, channels: int, key_dim: int) -> None:
        super().__init__()
        self.proj = _orthogonal(nn.Conv2d(channels, key_dim, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x)


class MobileBlock(nn.Module):
    """1x1 conv, ReLU6, depth-wise 3x3, ReLU6, 1x1 conv, plus a (1x1-projected when widths differ) shortcut."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_ch, out_ch, 1),
            nn.ReLU6(),
            nn.Conv2d(out_ch, out_ch, 3, padding=1, groups=out_ch),
            nn.ReLU6(),
            nn.Conv2d(out_ch, out_ch, 1),
        )
        self.shortcut = nn.Identity() if in_ch == out_ch else nn.Conv2d(in_ch, out_ch, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x) + self.shortcut(x)


class CBAM(nn.Module):
    """Channel gate (shared MLP on average- and max-pooled vectors) then spatial gate (7x7 conv on [max, mean])."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        mid = max(1, channels // reduction)
        self.mlp = nn.Sequential(nn.Linear(channels, mid), nn.ReLU(), nn.Linear(mid, channels))
        self.spatial = nn.Conv2d(2, 1, 7, padding=3)

    def forward(self, x: Tensor) -> Tensor:
        gate = self.mlp(x.mean((2, 3))) + self.mlp(x.amax((2, 3)))
        x = x * torch.sigmoid(gate)[:, :, None, None]
        pooled = torch.cat([x.amax(1, keepdim=True), x.mean(1, keepdim=True)], 1)
        return x * torch.sigmoid(self.spatial(pooled))


class FusionBlock(nn.Module):
    """Fuse two feature maps: ``y1 = MB(concat[x, y])``, ``out = MB(y1 + CBAM(y1))``."""

    def __init__(self, x_in: int, y_in: int, mid: int, out: int) -> None:
        super().__init__()
        self.block1 = MobileBlock(x_in + y_in, mid)
        self.attention = CBAM(mid)
        self.block2 = MobileBlock(mid, out)

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        y1 = self.block1(torch.cat([x, y], 1))
        return self.block2(y1 + self.attention(y1))


class ValueProjector(nn.Module):
    """HPrj: value ``V`` from the key-side ``F_ls`` and ``F_hs``; then the hidden-state reinforcement.

    ``V = Fuse(F_ls, F_hs)``; ``h' = gated_update(conv3x3([V, h]), h)``.
    """

    def __init__(self, channels: int, value_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.fuser = FusionBlock(channels, channels, value_dim, value_dim)
        self.reinforce = nn.Conv2d(value_dim + hidden_dim, 3 * hidden_dim, 3, padding=1)
        nn.init.xavier_normal_(self.reinforce.weight)

    def forward(self, f_ls: Tensor, f_hs: Tensor, hidden: Tensor) -> tuple[Tensor, Tensor]:
        value = self.fuser(f_ls, f_hs)
        return value, gated_update(self.reinforce(torch.cat([value, hidden], 1)), hidden)


class IlluminationEncoder(nn.Module):
    """IEnc: image ``(B, 3, H, W)`` -> illumination ``(B, 1, h, w)`` in [0, 1].

    ``version="learned"`` (the paper's): area-resize to ``(h, w)``, 1x1 conv to ``illu_dim``, depth-wise 5x5,
    LeakyReLU(0.01), 1x1 conv to 1, clamp. ``version="luma"`` (the reference code's parameter-free ``brightness``
    version): the Rec. 709 luma of the area-resized image, which follows a gain on the image exactly.
    """

    def __init__(self, illu_dim: int, version: str = "learned") -> None:
        super().__init__()
        if version not in ILLUMINATIONS:
            raise InputError(f"illumination must be one of {', '.join(ILLUMINATIONS)}, got {version!r}")
        self.version = version
        if version == "learned":
            self.inp = nn.Conv2d(3, illu_dim, 1)
            self.dw = nn.Conv2d(illu_dim, illu_dim, 5, padding=2, groups=illu_dim)
            self.out = nn.Conv2d(illu_dim, 1, 1)

    def forward(self, image: Tensor, size: tuple[int, int], *, frozen: bool = False) -> Tensor:
        """Encode ``image``; ``frozen=True`` stops the gradient at the weights (it still reaches ``image``)."""
        x = image if tuple(image.shape[-2:]) == tuple(size) else F.adaptive_avg_pool2d(image, size)
        if self.version == "luma":
            return luma(x).clamp(0.0, 1.0)

        def p(t: Tensor) -> Tensor:
            return t.detach() if frozen else t

        x = F.conv2d(x, p(self.inp.weight), p(self.inp.bias))
        x = F.conv2d(x, p(self.dw.weight), p(self.dw.bias), padding=2, groups=self.dw.groups)
        x = F.conv2d(F.leaky_relu(x, 0.01), p(self.out.weight), p(self.out.bias))
        return x.clamp(0.0, 1.0)


class IlluminationRefiner(nn.Module):
    """IR: ``(F_ls, I_ip, h) -> (F_en, h')``.

    ``u = Fuse(F_ls, [I_ip, h])``; ``F_en = conv3x3(u)`` (``illu_dim``);
    ``h' = gated_update(conv3x3([conv1x1(u) + conv1x1(F_en), h]), h)``.
    """

    def __init__(self, channels: int, illu_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.fuser = FusionBlock(channels, 1 + hidden_dim, channels, channels)
        self.to_feature = nn.Conv2d(channels, illu_dim, 3, padding=1)
        mid = 4 * hidden_dim
        self.gate_u = nn.Conv2d(channels, mid, 1)
        self.gate_f = nn.Conv2d(illu_dim, mid, 1)
        self.gate = nn.Conv2d(mid + hidden_dim, 3 * hidden_dim, 3, padding=1)

    def forward(self, f_ls: Tensor, prior: Tensor, hidden: Tensor) -> tuple[Tensor, Tensor]:
        u = self.fuser(f_ls, torch.cat([prior, hidden], 1))
        f_en = self.to_feature(u)
        g = self.gate_u(u) + self.gate_f(f_en)
        return f_en, gated_update(self.gate(torch.cat([g, hidden], 1)), hidden)


class ICMem(nn.Module):
    """The memory-side modules of TAMI for injection width ``channels``.

    ``retrieval_scale`` (given for the cosine matches, :mod:`tami.adapter.memory`) adds the learned log-scales
    of the two retrieval stages, ``retrieval_log_scale`` ``(2,)``; without it the state has no such entry.
    ``illumination`` is IEnc's version (``"luma"`` has no weights, so the state has no ``illu_encoder`` entries).

    Attributes:
        lq_encoder (LEnc), hq_encoder (HEnc), key_projector (LPrj), value_projector (HPrj),
        illu_encoder (IEnc), illu_refiner (IR).
    """

    def __init__(self, channels: int, key_dim: int, value_dim: int, hidden_dim: int, illu_dim: int,
                 retrieval_scale: float | None = None, illumination: str = "learned") -> None:
        super().__init__()
        self.retrieval_log_scale = (None if retrieval_scale is None
                                    else nn.Parameter(torch.full((2,), math.log(retrieval_scale))))
        self.lq_encoder = Projector(channels)
        self.hq_encoder = Projector(channels)
        self.key_projector = KeyProjector(channels, key_dim)
        self.value_projector = ValueProjector(channels, value_dim, hidden_dim)
        self.illu_encoder = IlluminationEncoder(illu_dim, illumination)
        self.illu_refiner = IlluminationRefiner(channels, illu_dim, hidden_dim)

    def retrieval_scales(self) -> tuple[Tensor, Tensor] | None:
        """The two retrieval stages' cosine scales (capped), or None for the reference's distance match."""
        if self.retrieval_log_scale is None:
            return None
        scales = self.retrieval_log_scale.exp().clamp(max=MAX_RETRIEVAL_SCALE)
        return scales[0], scales[1]
