"""A tiny split backbone obeying the Backbone contract (stride 4), for adapter and loss tests."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from tami.backbones.base import Adapt, Backbone, Encoded


class ToyBackbone(Backbone):
    """3 -> width conv, stride-4 conv to 2*width (the injection point), mid conv, transposed conv back, head."""

    arch = "toy"
    multiple_of = 4
    inject_stride = 4

    def __init__(self, width: int = 8) -> None:
        super().__init__()
        self.inject_channels = 2 * width
        self.config = {"width": width}
        self.stem = nn.Conv2d(3, width, 3, padding=1)
        self.down = nn.Conv2d(width, 2 * width, 4, stride=4)
        self.mid = nn.Conv2d(2 * width, 2 * width, 3, padding=1)
        self.up = nn.ConvTranspose2d(2 * width, width, 4, stride=4)
        self.head = nn.Conv2d(width, 3, 3, padding=1)

    def _encode(self, x: Tensor) -> Encoded:
        s = F.gelu(self.stem(x))
        return Encoded(self.down(s), (x, s))

    def _decode(self, enc: Encoded, adapt: Adapt | None = None) -> Tensor:
        x, s = enc.skips
        z = F.gelu(self.mid(enc.key))
        if adapt is not None:
            z = adapt(z)
        return x + self.head(F.gelu(self.up(z) + s))


def small_config(**overrides):
    """A tiny TAMIConfig for fast CPU tests."""
    from tami.adapter import TAMIConfig

    base = dict(key_dim=8, value_dim=8, hidden_dim=8, illu_dim=8, igfe_blocks=2, igfe_dim=16, memory_frames=2, top_m=4)
    base.update(overrides)
    return TAMIConfig(**base)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny tensors run fastest (and least disturbed on a shared machine) on one thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
