"""The TAMI temporal adapter: bounded memory, ICMem, IGFE and the :class:`TAMI` model.

``TAMI(backbone, config)`` / ``TAMI.from_preset(backbone)`` wrap a frozen split backbone; ``init_state`` +
``step`` stream frames, ``forward_clip`` runs training clips; :mod:`tami.adapter.io` saves and loads weights.
"""

from .io import adapter_config, load_adapter, load_model, save_adapter, save_model
from .memory import KVMemory, topm_readout
from .frame_aux import FrameAux
from .config import TAMIConfig
from .model import TAMI, StreamState
from .presets import ADAPTER_PRESETS, adapter_parameter_count, preset_config

__all__ = [
    "ADAPTER_PRESETS",
    "FrameAux",
    "TAMI",
    "KVMemory",
    "StreamState",
    "TAMIConfig",
    "adapter_config",
    "adapter_parameter_count",
    "load_adapter",
    "load_model",
    "preset_config",
    "save_adapter",
    "save_model",
    "topm_readout",
]
