"""Image backbones with official-compatible weights, split for temporal adaptation.

Use :func:`create_backbone` (short: :func:`create`) to build one by name or preset, :func:`list_backbones` (short:
:func:`names`) to list them, :func:`load` to build one from a weights file.
"""

from .base import Backbone, Encoded, count_parameters, crop_to, freeze, pad_to_multiple
from .registry import (
    BACKBONES,
    PRESETS,
    Preset,
    create,
    create_backbone,
    default_config,
    list_backbone_presets,
    list_backbones,
    names,
    preset_names,
    register_preset,
)

# Backbone modules register themselves on import; the list is explicit on purpose.
from . import retinexformer  # noqa: E402,F401  isort:skip
from . import restormer  # noqa: E402,F401  isort:skip
from . import hvi_cidnet  # noqa: E402,F401  isort:skip
from . import snr_aware  # noqa: E402,F401  isort:skip
from . import llformer  # noqa: E402,F401  isort:skip
from . import urwkv  # noqa: E402,F401  isort:skip

from .checkpoints import load, load_state_dict, read_checkpoint, save  # noqa: E402

__all__ = [
    "BACKBONES",
    "PRESETS",
    "Backbone",
    "Encoded",
    "Preset",
    "count_parameters",
    "create",
    "create_backbone",
    "crop_to",
    "default_config",
    "freeze",
    "list_backbone_presets",
    "list_backbones",
    "load",
    "load_state_dict",
    "names",
    "pad_to_multiple",
    "preset_names",
    "read_checkpoint",
    "register_preset",
    "save",
]
