"""Saving and loading TAMI weights as safetensors.

* :func:`save_adapter` / :func:`load_adapter`: the adapter alone (``tami.adapter`` format) with its
  :class:`TAMIConfig` and the backbone arch and configuration it was trained for, in the file's metadata; loading it
  onto another backbone fails with a :class:`CheckpointError` naming both.
* :func:`save_model` / :func:`load_model`: one file (``tami.model`` format) with backbone and adapter weights and
  both configurations - what ``tami enhance`` and the bundled weights use.

Every write is atomic (temporary file + rename).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from safetensors.torch import save_file
from torch import Tensor

from ..atomic import atomic_path
from ..backbones import create
from ..backbones.checkpoints import read_checkpoint
from ..errors import CheckpointError, InputError
from .config import TAMIConfig
from .model import TAMI

ADAPTER_FORMAT = "tami.adapter"
MODEL_FORMAT = "tami.model"


def _normalise(config: dict[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(config, sort_keys=True))


def _metadata(model: TAMI, fmt: str) -> dict[str, str]:
    return {
        "format": fmt,
        "tami_config": model.config.to_json(),
        "backbone_arch": model.backbone.arch,
        "backbone_config": json.dumps(_normalise(getattr(model.backbone, "config", {}) or {}), sort_keys=True),
        "inject_channels": str(model.backbone.inject_channels),
    }


def _write(tensors: dict[str, Tensor], metadata: dict[str, str], path: str | os.PathLike[str]) -> Path:
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return Path(path)


def _read(path: str | os.PathLike[str], fmt: str) -> tuple[dict[str, Tensor], dict[str, str]]:
    tensors, metadata = read_checkpoint(path)
    if metadata.get("format") != fmt:
        raise CheckpointError(
            f"{path} is not a {fmt} file (format {metadata.get('format') or 'unknown'!r}); "
            f"write it with tami.adapter.io.{'save_adapter' if fmt == ADAPTER_FORMAT else 'save_model'}"
        )
    try:
        config = TAMIConfig.from_dict(json.loads(metadata["tami_config"]))
        json.loads(metadata["backbone_config"])
    except (KeyError, ValueError, InputError) as exc:
        raise CheckpointError(f"{path} has damaged metadata ({exc}); re-export it") from None
    metadata["_config"] = config.to_json()
    return tensors, metadata


def save_adapter(model: TAMI, path: str | os.PathLike[str]) -> Path:
    """Write the adapter weights of ``model`` (not the backbone) with its configuration to ``path``."""
    return _write(model.adapter_state_dict(), _metadata(model, ADAPTER_FORMAT), path)


def adapter_config(path: str | os.PathLike[str]) -> TAMIConfig:
    """The :class:`TAMIConfig` an adapter file was saved with (build ``TAMI(backbone, adapter_config(path))``)."""
    _, meta = _read(path, ADAPTER_FORMAT)
    return TAMIConfig.from_dict(json.loads(meta["_config"]))


def load_adapter(model: TAMI, path: str | os.PathLike[str]) -> TAMI:
    """Load an adapter file into ``model`` in place and return it.

    Raises:
        CheckpointError: the file was trained for another backbone (arch or configuration), with other adapter
            options than ``model.config`` (the message names them), or its tensors do not fit.
    """
    tensors, meta = _read(path, ADAPTER_FORMAT)
    file_arch, file_backbone = meta["backbone_arch"], json.loads(meta["backbone_config"])
    own_backbone = _normalise(getattr(model.backbone, "config", {}) or {})
    if file_arch != model.backbone.arch or file_backbone != own_backbone:
        raise CheckpointError(
            f"{path} is an adapter for backbone {file_arch} ({_short(file_backbone)}), but the model's backbone is "
            f"{model.backbone.arch} ({_short(own_backbone)}); load it onto a {file_arch} backbone with that "
            "configuration, or train an adapter for this one"
        )
    config = TAMIConfig.from_dict(json.loads(meta["_config"])).to_dict()
    differing = {k: (v, getattr(model.config, k)) for k, v in config.items() if getattr(model.config, k) != v}
    if differing:
        shown = ", ".join(f"{k}={f!r} (model: {m!r})" for k, (f, m) in sorted(differing.items()))
        raise CheckpointError(
            f"{path} was saved with adapter options {shown}; build the model with the file's options, e.g. "
            "TAMI(backbone, tami.adapter.io.adapter_config(path))"
        )
    _load_adapter_tensors(model, tensors, path)
    return model


def _check_fit(own: dict[str, Tensor], tensors: dict[str, Tensor], what: str, hint: str) -> None:
    """Raise one-line :class:`CheckpointError` unless ``tensors`` has exactly ``own``'s keys and shapes."""
    missing = sorted(set(own) - set(tensors))
    unexpected = sorted(set(tensors) - set(own))
    misshaped = sorted(k for k in own if k in tensors and tensors[k].shape != own[k].shape)
    if missing or unexpected or misshaped:
        raise CheckpointError(
            f"{what}: missing {missing[:5]}, unexpected {unexpected[:5]}, mis-shaped {misshaped[:5]}; {hint}"
        )


def _load_adapter_tensors(model: TAMI, tensors: dict[str, Tensor], path: str | os.PathLike[str]) -> None:
    _check_fit(model.adapter_state_dict(), tensors, f"adapter weights in {path} do not fit the model",
               "the file was written by another version of the adapter")
    model.load_state_dict(tensors, strict=False)


def _short(config: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(config.items())) or "default configuration"


def save_model(model: TAMI, path: str | os.PathLike[str]) -> Path:
    """Write backbone and adapter weights with both configurations to one file."""
    return _write(model.state_dict(), _metadata(model, MODEL_FORMAT), path)


def load_model(path: str | os.PathLike[str]) -> TAMI:
    """Rebuild the :class:`TAMI` stored by :func:`save_model` (backbone created from its arch and configuration).

    Raises:
        CheckpointError: not a model file, or tensors that do not fit the configuration.
    """
    tensors, meta = _read(path, MODEL_FORMAT)
    try:
        backbone = create(meta["backbone_arch"], **json.loads(meta["backbone_config"]))
    except (KeyError, TypeError) as exc:
        raise CheckpointError(f"{path} names a backbone this version cannot build: {exc}") from None
    model = TAMI(backbone, TAMIConfig.from_dict(json.loads(meta["_config"])))
    _check_fit(model.state_dict(), tensors,
               f"weights in {path} do not fit {meta['backbone_arch']}+TAMI as configured in the file",
               "the file is damaged or was written by another version")
    model.load_state_dict(tensors, strict=True)
    return model.eval()
