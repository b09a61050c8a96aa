"""The split contract every image backbone follows, and the one padding helper.

A backbone is an ``nn.Module`` whose state_dict keys equal the official implementation's, plus a split of its
forward pass at the *injection point* where the TAMI adapter modifies features:

* ``encode(x) -> Encoded`` runs the network up to the injection point; ``Encoded.key`` is the feature map the
  memory keys are computed from, ``Encoded.skips`` whatever ``decode`` needs;
* ``decode(enc, adapt=None)`` finishes the network, applying ``adapt(z) -> z'`` at the injection point;
* ``forward(x) == decode(encode(x))`` equals the official forward.

The wrapper takes any size (as spandrel's model wrapper does): :meth:`Backbone.encode` checks the input, reflect-pads
it to ``multiple_of`` (:func:`pad_to_multiple`) and hands the padded batch to the subclass's ``_encode``;
:meth:`Backbone.decode` runs the subclass's ``_decode`` and crops the image back to the input size. ``Encoded.key``
is the feature of the padded input, ``(H + pad) / inject_stride`` by ``(W + pad) / inject_stride``. Nobody else
pads for a backbone.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import InputError

Adapt = Callable[[Tensor], Tensor]


@dataclass
class Encoded:
    """Result of :meth:`Backbone.encode`.

    Attributes:
        key: ``(B, inject_channels, H/inject_stride, W/inject_stride)`` feature the memory keys come from.
        skips: backbone-specific tensors (skip connections, the input, ...) that ``decode`` consumes.
        size: the ``(H, W)`` of the input before padding; ``decode`` crops its output to it.
    """

    key: Tensor
    skips: tuple[Any, ...] = field(default_factory=tuple)
    size: tuple[int, int] | None = None


class Backbone(nn.Module, ABC):
    """Base class of the split image backbones.

    Class attributes:
        arch: registry name (``"retinexformer"``).
        multiple_of: the network needs height and width divisible by this; ``encode`` pads to it.
        in_channels: channels of the input batch (3, RGB, unless a preset says otherwise).
        inject_stride: spatial stride of the injection point relative to the input.
        detect_keys: state_dict keys whose joint presence identifies an official checkpoint of this arch.

    Instance attributes:
        inject_channels: channel count at the injection point (depends on the width of the preset).
        config: the constructor arguments this instance was built with (official argument names).
    """

    arch: ClassVar[str] = ""
    multiple_of: ClassVar[int] = 1
    in_channels: int = 3
    inject_stride: ClassVar[int] = 1
    detect_keys: ClassVar[tuple[str, ...]] = ()

    inject_channels: int
    config: dict[str, Any]

    def encode(self, x: Tensor) -> Encoded:
        """Run the network on ``x`` ``(B, in_channels, H, W)``, any H and W, up to the injection point."""
        self.check_input(x)
        padded, size = pad_to_multiple(x, self.multiple_of)
        enc = self._encode(padded)
        enc.size = size
        return enc

    def decode(self, enc: Encoded, adapt: Adapt | None = None) -> Tensor:
        """Finish the network from ``enc``; ``adapt`` maps the injection-point feature to its replacement.

        Returns the image cropped back to the size ``encode`` was given.
        """
        out = self._decode(enc, adapt)
        return out if enc.size is None else crop_to(out, enc.size)

    @abstractmethod
    def _encode(self, x: Tensor) -> Encoded:
        """The network up to the injection point on ``x`` whose H and W are divisible by ``multiple_of``."""

    @abstractmethod
    def _decode(self, enc: Encoded, adapt: Adapt | None) -> Tensor:
        """The rest of the network at the padded size (:meth:`decode` crops)."""

    def forward(self, x: Tensor) -> Tensor:
        """The official forward pass on any size: ``decode(encode(x))``."""
        return self.decode(self.encode(x))

    def check_input(self, x: Tensor) -> None:
        """Raise :class:`InputError` unless ``x`` is a floating-point ``(B, in_channels, H, W)`` batch."""
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise InputError(
                f"{self.arch} expects a (B, {self.in_channels}, H, W) batch of images, got shape {tuple(x.shape)}"
            )
        if not x.is_floating_point():
            raise InputError(f"{self.arch} expects a floating-point batch in [0, 1], got dtype {x.dtype}")


def pad_to_multiple(x: Tensor, multiple: int) -> tuple[Tensor, tuple[int, int]]:
    """Reflect-pad ``x`` ``(..., H, W)`` at the right and bottom so H and W are divisible by ``multiple``.

    Returns the padded tensor and the original ``(H, W)`` for :func:`crop_to`. Falls back to edge replication
    where the image is too small to reflect.
    """
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph == 0 and pw == 0:
        return x, (h, w)
    mode = "reflect" if ph < h and pw < w else "replicate"
    flat = x.reshape(-1, *x.shape[-3:]) if x.dim() != 4 else x
    padded = F.pad(flat, (0, pw, 0, ph), mode=mode)
    return padded.reshape(*x.shape[:-2], h + ph, w + pw), (h, w)


def crop_to(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Crop ``x`` ``(..., H', W')`` back to the top-left ``size`` = ``(H, W)`` after :func:`pad_to_multiple`."""
    h, w = size
    return x[..., :h, :w]


def count_parameters(module: nn.Module) -> int:
    """Number of parameters (trainable or not) of ``module``."""
    return sum(p.numel() for p in module.parameters())


@torch.no_grad()
def freeze(module: nn.Module) -> nn.Module:
    """Disable gradients for every parameter of ``module`` and put it in eval mode."""
    for p in module.parameters():
        p.requires_grad_(False)
    return module.eval()
