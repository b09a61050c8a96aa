"""The split contract every image backbone follows, and the one padding helper.

A backbone is an ``nn.Module`` whose state_dict keys equal the official implementation's, plus a split of its
forward pass at the *injection point* where the TAMI adapter modifies features:

* ``encode(x) -> Encoded`` runs the network up to the injection point; ``Encoded.key`` is the feature map the
  memory keys are computed from, ``Encoded.skips`` whatever ``decode`` needs;
* ``decode(enc, adapt=None)`` finishes the network, applying ``adapt(z) -> z'`` at the injection point;
* ``forward(x) == decode(encode(x))`` equals the official forward.

Backbones require input sizes divisible by ``multiple_of``; :func:`pad_to_multiple` / :func:`crop_to` are the only
place that pads, used by the adapter and the inference engine alike.
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
    """

    key: Tensor
    skips: tuple[Any, ...] = field(default_factory=tuple)


class Backbone(nn.Module, ABC):
    """Base class of the split image backbones.

    Class attributes:
        arch: registry name (``"retinexformer"``).
        multiple_of: input height and width must be divisible by this.
        inject_stride: spatial stride of the injection point relative to the input.
        detect_keys: state_dict keys whose joint presence identifies an official checkpoint of this arch.

    Instance attributes:
        inject_channels: channel count at the injection point (depends on the width of the preset).
        config: the constructor arguments this instance was built with (official argument names).
    """

    arch: ClassVar[str] = ""
    multiple_of: ClassVar[int] = 1
    inject_stride: ClassVar[int] = 1
    detect_keys: ClassVar[tuple[str, ...]] = ()

    inject_channels: int
    config: dict[str, Any]

    @abstractmethod
    def encode(self, x: Tensor) -> Encoded:
        """Run the network on ``x`` ``(B, 3, H, W)`` up to the injection point."""

    @abstractmethod
    def decode(self, enc: Encoded, adapt: Adapt | None = None) -> Tensor:
        """Finish the network from ``enc``; ``adapt`` maps the injection-point feature to its replacement."""

    def forward(self, x: Tensor) -> Tensor:
        """The official forward pass: ``decode(encode(x))``."""
        return self.decode(self.encode(x))

    def check_input(self, x: Tensor) -> None:
        """Raise :class:`InputError` unless ``x`` is ``(B, 3, H, W)`` with H, W divisible by ``multiple_of``."""
        if x.dim() != 4 or x.shape[1] != 3:
            raise InputError(
                f"{self.arch} expects a (B, 3, H, W) batch of RGB images, got shape {tuple(x.shape)}"
            )
        h, w = x.shape[-2:]
        m = self.multiple_of
        if h % m or w % m:
            raise InputError(
                f"{self.arch} needs height and width divisible by {m}, got {h}x{w}; "
                f"pad with tami.backbones.pad_to_multiple (the adapter and enhancer do this for you)"
            )


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
