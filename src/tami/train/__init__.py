"""Two-stage training: stage ``image`` trains a backbone on frames, stage ``video`` trains the TAMI adapter on clips.

Entry points: :func:`load_config` (YAML + ``a.b=c`` overrides) and :func:`train` (also under ``torchrun``); the
``tami train`` command wraps both.
"""

from .config import (
    DataConfig,
    LoopConfig,
    MemoryStopConfig,
    ModelConfig,
    OptimConfig,
    SyntheticConfig,
    TrainConfig,
    ValConfig,
    dump_yaml,
    from_dict,
    load_config,
    to_dict,
)
from .trainer import TrainResult, Trainer, train

__all__ = [
    "DataConfig",
    "LoopConfig",
    "MemoryStopConfig",
    "ModelConfig",
    "OptimConfig",
    "SyntheticConfig",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "ValConfig",
    "dump_yaml",
    "from_dict",
    "load_config",
    "to_dict",
    "train",
]
