"""Adapter sizes per backbone, matching the parameter overheads reported in the TAMI paper.

The paper gives only the totals (Table 1): Retinexformer +0.493 M, Restormer +4.461 M, HVI-CIDNet +0.401 M,
SNR-Aware +0.182 M, LLFormer +3.899 M, URWKV +0.520 M; the per-module widths were never released and many
combinations reach each total. The presets below keep the paper figure's three IGFE blocks and pick widths whose
total is within 1 % of the paper's (``adapter_parameter_count`` checks it, the tests assert 5 %).

Resolution (the same rule for every backbone): memory tokens and IGFE attention tokens each cover a 32 x 32 pixel
cell of the input - ``memory_scale = inject_stride / 32`` and ``igfe_pool = 32 / inject_stride`` - so a 256 x 256
training crop has 8 x 8 tokens per frame and a 960 x 512 SDSD frame 30 x 16, with the same image area per token
(the positional bias and the value encoder see the same scale in training and inference). Both are capped at 4096
tokens per frame (the cells grow beyond about 2048 x 2048 input). The cell size is what keeps the adapter cheap at
full resolution: top-k attention and top-m retrieval cost grows with the square of the token count (16-pixel cells
make both 16 times dearer, see ``benchmarks/adapter.py``); the IGFE query features stay at the full injection
resolution. Override ``memory_scale`` / ``igfe_pool`` for finer cells when time allows.
"""

from __future__ import annotations

from typing import Any

import torch

from ..errors import InputError
from .icmem import ICMem
from .igfe import IGFE
from .config import TAMIConfig

#: Paper overhead (parameters) and injection width per backbone arch.
PAPER_OVERHEAD: dict[str, tuple[int, int]] = {
    "retinexformer": (493_000, 160),
    "restormer": (4_461_000, 384),
    "hvi_cidnet": (401_000, 144),
    "snr_aware": (182_000, 64),
    "llformer": (3_899_000, 256),
    "urwkv": (520_000, 128),
}

_H4 = {"memory_scale": 0.125, "igfe_pool": 8}
_H8 = {"memory_scale": 0.25, "igfe_pool": 4}
_H16 = {"memory_scale": 0.5, "igfe_pool": 2}

ADAPTER_PRESETS: dict[str, dict[str, Any]] = {
    "retinexformer": dict(key_dim=32, value_dim=32, hidden_dim=16, illu_dim=64, igfe_blocks=3, igfe_dim=40, **_H4),
    "restormer": dict(key_dim=16, value_dim=64, hidden_dim=16, illu_dim=32, igfe_blocks=3, igfe_dim=304, **_H8),
    "hvi_cidnet": dict(key_dim=64, value_dim=32, hidden_dim=16, illu_dim=16, igfe_blocks=3, igfe_dim=48, **_H8),
    "snr_aware": dict(key_dim=16, value_dim=32, hidden_dim=16, illu_dim=32, igfe_blocks=3, igfe_dim=32, **_H4),
    "llformer": dict(key_dim=32, value_dim=128, hidden_dim=32, illu_dim=64, igfe_blocks=3, igfe_dim=296, **_H16),
    "urwkv": dict(key_dim=16, value_dim=64, hidden_dim=16, illu_dim=64, igfe_blocks=3, igfe_dim=64, **_H8),
}


def names() -> list[str]:
    """Backbone archs with an adapter preset."""
    return sorted(ADAPTER_PRESETS)


def preset_config(arch: str, **overrides: Any) -> TAMIConfig:
    """The :class:`TAMIConfig` preset for backbone ``arch`` with ``overrides`` applied.

    Raises:
        InputError: no preset for ``arch`` (build ``TAMI(backbone, TAMIConfig(...))`` yourself), or unknown options.
    """
    if arch not in ADAPTER_PRESETS:
        raise InputError(
            f"no TAMI preset for backbone {arch!r} (presets: {', '.join(names())}); "
            "construct TAMI(backbone, TAMIConfig(...)) with explicit sizes"
        )
    return TAMIConfig.from_dict({**ADAPTER_PRESETS[arch], **overrides})


def adapter_parameter_count(config: TAMIConfig, channels: int) -> int:
    """Parameters of an adapter with ``config`` for injection width ``channels`` (built on the meta device)."""
    with torch.device("meta"):
        icmem = ICMem(channels, config.key_dim, config.value_dim, config.hidden_dim, config.illu_dim)
        igfe = IGFE(
            channels,
            config.illu_dim,
            blocks=config.igfe_blocks,
            dim=config.igfe_dim or channels,
            heads=config.heads,
            ffn_expansion=config.ffn_expansion,
        )
    return sum(p.numel() for m in (icmem, igfe) for p in m.parameters())
