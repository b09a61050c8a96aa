"""Reading official checkpoints and writing tami's own backbone files.

Official ``.pth``/``.pt`` files are read only through ``torch.load(weights_only=True)`` (nothing in the file is
executed), ``.safetensors`` through safetensors. Wrappers (``params_ema``, ``params``, ``state_dict``, ``model``)
are unwrapped and ``module.`` prefixes stripped in one place; the architecture is recognised by its key set, the
configuration by matching tensor shapes against the registered presets.
"""

from __future__ import annotations

import json
import os
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import Tensor

from ..atomic import atomic_path
from ..errors import CheckpointError
from .base import Backbone
from .registry import BACKBONES, PRESETS, create

FORMAT = "tami.backbone"
_WRAPPERS = ("params_ema", "params", "state_dict", "model", "net", "network")
# tami's other files, named when one lands where a backbone is expected (written by tami.adapter.io and tami.train).
_OTHER_FORMATS = {
    "tami.model": "a tami model file (backbone + adapter, for tami enhance --model), not a backbone file; a "
                  "stage-image run exports its backbone as export/backbone.safetensors",
    "tami.adapter": "a tami adapter file (the adapter alone), not a backbone file; a stage-image run exports its "
                    "backbone as export/backbone.safetensors",
}
TRAIN_CHECKPOINT = "tami.train-checkpoint"


class UnknownConfiguration(CheckpointError):
    """Weights of a known architecture whose shapes match none of its presets: the caller must give the
    constructor arguments. ``arch`` names the architecture, ``detail`` how the weights differ from the closest
    preset, whose constructor arguments are ``closest`` (callers add how to give the arguments in their own
    terms)."""

    def __init__(self, arch: str, detail: str, closest: dict[str, Any]) -> None:
        example = ", ".join(f"{k}={v!r}" for k, v in closest.items()) or "..."
        super().__init__(f"{detail}; give the constructor arguments it was trained with, e.g. "
                         f"tami.backbones.load(path, {arch!r}, {example})")
        self.arch = arch
        self.detail = detail
        self.closest = dict(closest)


def training_checkpoint_hint(path: Path, stage: Any) -> str:
    """What to use instead of the training checkpoint ``path`` (``RUN/checkpoints/*.pt``) as weights."""
    run = path.parent.parent if path.parent.name == "checkpoints" else Path("RUN")
    wanted = "backbone.safetensors" if stage == "image" else "model.safetensors"
    return (f"{path} is a tami training checkpoint (the state tami train --resume continues), not weights; use "
            f"{run / 'export' / wanted} (or the run folder {run} itself with tami enhance --model)")


def canonicalize(obj: Any) -> dict[str, Tensor]:
    """Unwrap common checkpoint containers and strip ``module.`` prefixes; return a flat state_dict."""
    while isinstance(obj, Mapping) and not _is_state_dict(obj):
        inner = next((obj[k] for k in _WRAPPERS if k in obj and isinstance(obj[k], Mapping)), None)
        if inner is None:
            break
        obj = inner
    if not isinstance(obj, Mapping) or not _is_state_dict(obj):
        raise CheckpointError(
            "checkpoint holds no state_dict (expected a mapping of tensors, possibly under "
            f"{', '.join(_WRAPPERS)})"
        )
    out: dict[str, Tensor] = {}
    for key, value in obj.items():
        while key.startswith("module."):
            key = key[len("module.") :]
        out[key] = value
    return out


def _is_state_dict(obj: Mapping) -> bool:
    return len(obj) > 0 and all(isinstance(v, Tensor) for v in obj.values())


def read_checkpoint(path: str | os.PathLike[str]) -> tuple[dict[str, Tensor], dict[str, str]]:
    """Read ``path`` (``.safetensors`` or a torch pickle) safely.

    Returns:
        The canonical state_dict and the safetensors metadata (empty for pickles).

    Raises:
        CheckpointError: missing/unreadable file, or a pickle that would need to execute code.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    if path.suffix == ".safetensors":
        try:
            with safe_open(str(path), framework="pt") as f:
                metadata = dict(f.metadata() or {})
                tensors = {k: f.get_tensor(k) for k in f.keys()}
        except Exception as exc:  # safetensors raises several types for corrupt headers
            raise CheckpointError(f"cannot read {path} as safetensors: {exc}") from None
        return canonicalize(tensors), metadata
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        code, reason = _unpickling_reason(exc)
        if code:
            raise CheckpointError(
                f"refusing to load {path}: it needs to run code to unpickle ({reason}); "
                "only plain tensor checkpoints are read — re-save its state_dict on a trusted machine"
            ) from None
        raise CheckpointError(f"cannot read {path} as a torch checkpoint: {reason}") from None
    except Exception as exc:
        raise CheckpointError(f"cannot read {path} as a torch checkpoint: {exc}") from None
    if isinstance(obj, Mapping) and obj.get("format") == TRAIN_CHECKPOINT:
        raise CheckpointError(training_checkpoint_hint(path, obj.get("stage")))
    return canonicalize(obj), {}


def _unpickling_reason(exc: pickle.UnpicklingError) -> tuple[bool, str]:
    """Whether torch's weights-only unpickler refused code (a GLOBAL it does not allow), and the telling line.

    torch wraps the real reason in paragraphs of advice; corrupt files fail the same way, with other reasons.
    """
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    for line in lines:
        if "GLOBAL" in line:
            return True, line
    boilerplate = ("Weights only load failed", "Check the documentation", "Please file an issue")
    details = [ln for ln in lines if not ln.startswith(boilerplate)]
    return False, details[-1] if details else (lines[0] if lines else type(exc).__name__)


def detect_arch(keys: set[str] | Mapping[str, Any]) -> str | None:
    """Name of the registered backbone whose ``detect_keys`` are all in ``keys``, if any."""
    keys = set(keys)
    for arch in BACKBONES.names():
        required = BACKBONES.get(arch).detect_keys
        if required and set(required) <= keys:
            return arch
    return None


def load_state_dict(model: Backbone, state_dict: Mapping[str, Tensor]) -> Backbone:
    """Strictly load ``state_dict`` into ``model``, casting to the model's dtype.

    Raises:
        CheckpointError: naming missing, unexpected and mis-shaped keys, or the backbone the keys belong to.
    """
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    misshaped = [
        f"{k}: file {tuple(state_dict[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in state_dict and state_dict[k].shape != own[k].shape
    ]
    if missing or unexpected or misshaped:
        other = detect_arch(state_dict)
        if other is not None and other != model.arch:
            raise CheckpointError(
                f"these weights belong to a {BACKBONES.get(other).__name__} backbone ({other!r}), "
                f"not {model.arch!r}; load them with backbone {other!r}"
            )
        parts = []
        for label, items in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", misshaped)):
            if items:
                shown = ", ".join(items[:5]) + (f", ... ({len(items)} in all)" if len(items) > 5 else "")
                parts.append(f"{label}: {shown}")
        raise CheckpointError(
            f"weights do not fit {model.arch} with {_short_config(model)} — " + "; ".join(parts)
            + ". Check the preset/configuration the weights were trained with"
        )
    model.load_state_dict(dict(state_dict), strict=True)
    return model


def _short_config(model: Backbone) -> str:
    cfg = getattr(model, "config", {}) or {}
    return ", ".join(f"{k}={v}" for k, v in cfg.items()) or "its default configuration"


def save(model: Backbone, path: str | os.PathLike[str], extra_metadata: Mapping[str, str] | None = None) -> Path:
    """Write ``model`` as tami's backbone safetensors file (weights + arch + configuration), atomically."""
    metadata = {"format": FORMAT, "arch": model.arch, "config": json.dumps(model.config)}
    metadata.update(extra_metadata or {})
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
    return Path(path)


def _differences(state_dict: Mapping[str, Tensor], name: str, config: dict[str, Any]) -> list[str]:
    """How ``state_dict`` differs from ``name`` built with ``config``: missing, unexpected and mis-shaped keys."""
    with torch.device("meta"):
        model = create(name, **config)
    own = model.state_dict()
    return ([f"missing {k}" for k in own if k not in state_dict]
            + [f"unexpected {k}" for k in state_dict if k not in own]
            + [f"{k} is {tuple(state_dict[k].shape)}, not {tuple(own[k].shape)}" for k in own
               if k in state_dict and state_dict[k].shape != own[k].shape])


def infer_config(state_dict: Mapping[str, Tensor], arch: str) -> dict[str, Any]:
    """Constructor arguments of ``arch`` whose tensor shapes equal ``state_dict``'s (tries every preset).

    Raises:
        UnknownConfiguration: no preset fits; the message names the closest one and how the file differs.
    """
    names = [arch, *PRESETS.names(f"{arch}.*")]
    closest: tuple[int, str, list[str], dict[str, Any]] | None = None
    for name in names:
        config = {} if name == arch else PRESETS.get(name).kwargs
        diff = _differences(state_dict, arch, config)
        if not diff:
            return dict(config)
        if closest is None or len(diff) < closest[0]:
            with torch.device("meta"):
                full = dict(getattr(create(arch, **config), "config", None) or config)
            closest = (len(diff), name, diff, full)
    assert closest is not None
    count, name, diff, kwargs = closest
    if all(d.startswith("missing ") for d in diff):
        shown = ", ".join(d[len("missing "):] for d in diff[:3]) + (f" and {count - 3} more" if count > 3 else "")
        raise CheckpointError(
            f"the weights are a {arch} checkpoint that lacks {count} tensor{'s' if count != 1 else ''} of {name} "
            f"({shown}); the file is incomplete: save the whole state_dict again"
        )
    shown = ", ".join(diff[:3]) + (f" and {count - 3} more" if count > 3 else "")
    raise UnknownConfiguration(
        arch, f"the weights are a {arch} checkpoint but match none of its presets; the closest, {name}, differs in "
        f"{count} tensor{'s' if count != 1 else ''} ({shown})", kwargs,
    )


def load(path: str | os.PathLike[str], name: str | None = None, **overrides: Any) -> Backbone:
    """Build a backbone from a weights file and load them strictly.

    tami's own files carry their arch and configuration. For official files the arch is recognised by its keys
    (or given as ``name``: an arch or preset), and the configuration found by matching shapes against the presets
    unless given as ``overrides``.

    Raises:
        CheckpointError: unreadable file, unknown architecture, or weights that do not fit.
    """
    state_dict, metadata = read_checkpoint(path)
    if metadata.get("format") in _OTHER_FORMATS:
        raise CheckpointError(f"{path} is {_OTHER_FORMATS[metadata['format']]}")
    if metadata.get("format") == FORMAT and name is None:
        model = create(metadata["arch"], **{**json.loads(metadata["config"]), **overrides})
        return load_state_dict(model, state_dict)
    if name is None:
        name = detect_arch(state_dict)
        if name is None:
            raise CheckpointError(
                f"cannot tell which backbone {path} holds (its keys match none of {', '.join(BACKBONES.names())}); "
                "name it explicitly (tami convert --arch NAME; model.backbone in a training config)"
            )
    arch = name.partition(".")[0]
    if arch not in BACKBONES:
        BACKBONES.get(arch)  # raises UnknownNameError with close matches
    detected = detect_arch(state_dict)
    if detected is not None and detected != arch:
        raise CheckpointError(
            f"{path} holds a {BACKBONES.get(detected).__name__} backbone ({detected!r}), not {arch!r}; "
            f"use backbone {detected!r}"
        )
    if "." not in name and not overrides:
        overrides = infer_config(state_dict, arch)
    return load_state_dict(create(name, **overrides), state_dict)
