"""What ``--model`` may name, and how each kind becomes a model to run.

``tami enhance --model`` (and ``tami demo --model``) accept:

* a bundled model name (``demo``);
* a training run folder: its best export (``export/best/``) when validation chose one, else its final export
  (``export/``); a stage-video run gives its ``model.safetensors``, a stage-image run its ``backbone.safetensors``;
* an exported model file (``tami.model``: backbone + adapter);
* an exported backbone file (``tami.backbone``) or an official backbone checkpoint (``.pth``/``.pt``/
  ``.safetensors``, recognised by its keys and shapes as ``tami convert`` does): these hold no adapter, so the
  model runs backbone-only.

Anything else gets one error naming what the file is and what to pass instead (a training checkpoint names the
run's export).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from safetensors import safe_open

from . import backbones
from .adapter import TAMI
from .adapter.io import ADAPTER_FORMAT, MODEL_FORMAT, load_model
from .backbones.checkpoints import FORMAT as BACKBONE_FORMAT
from .backbones.checkpoints import UnknownConfiguration
from .bundled import DEFAULT_MODEL, WEIGHTS_DIR, bundled_models
from .errors import CheckpointError, InputError
from .train.stages import BACKBONE_FILE, MODEL_FILE

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelChoice:
    """A model resolved from ``--model``.

    Attributes:
        model: the model (an identity adapter on the backbone when the file holds no adapter).
        path: the weights file it was read from.
        backbone_only: the file holds no adapter, so only the backbone can run.
    """

    model: TAMI
    path: Path
    backbone_only: bool


def find_weights(spec: str | os.PathLike[str] | None) -> Path:
    """The weights file ``spec`` names: a bundled name, a run folder (its export), or a file.

    Raises:
        InputError: nothing there, an unknown bundled name, or a run folder without an export yet.
    """
    name = DEFAULT_MODEL if spec is None else os.fspath(spec)
    path = Path(name)
    if path.is_file():
        return path
    if path.is_dir():
        return _run_export(path)
    if not path.suffix and len(path.parts) == 1:
        bundled = WEIGHTS_DIR / f"{name}.safetensors"
        if bundled.is_file():
            return bundled
        raise InputError(
            f"no bundled model {name!r} (bundled: {', '.join(bundled_models()) or 'none'}); give a bundled name, a "
            "training run folder or a weights file"
        )
    raise InputError(f"model {path} does not exist; give a bundled name ({', '.join(bundled_models())}), a "
                     "training run folder or a weights file")


def _run_export(folder: Path) -> Path:
    """The export of a run folder (or of an ``export/`` folder): best first, then final; model before backbone."""
    for base in (folder / "export" / "best", folder / "export", folder):
        for name in (MODEL_FILE, BACKBONE_FILE):
            if (base / name).is_file():
                return base / name
    if (folder / "checkpoints").is_dir():
        raise InputError(f"run folder {folder} has no export yet (its training has not finished); finish it with "
                         f"tami train {folder} --resume auto")
    raise InputError(f"folder {folder} is not a training run (no export/{MODEL_FILE} or export/{BACKBONE_FILE}); "
                     "give a run folder or a weights file")


def file_format(path: Path) -> str | None:
    """The ``format`` metadata of a safetensors file (``None`` for other files and foreign safetensors)."""
    if path.suffix != ".safetensors":
        return None
    try:
        with safe_open(str(path), framework="pt") as f:
            return (f.metadata() or {}).get("format")
    except Exception as exc:  # safetensors raises several types for corrupt headers
        raise CheckpointError(f"cannot read {path} as safetensors: {exc}") from None


def load_model_spec(spec: str | os.PathLike[str] | None = None) -> ModelChoice:
    """Resolve and load what ``--model`` names (see the module description).

    Raises:
        InputError: nothing usable at ``spec``.
        CheckpointError: a file that is not a model, backbone or official checkpoint (the message says what it
            is and what to pass instead), or weights that do not fit.
    """
    path = find_weights(spec)
    fmt = file_format(path)
    if fmt == MODEL_FORMAT:
        return ModelChoice(load_model(path), path, backbone_only=False)
    if fmt == ADAPTER_FORMAT:
        raise CheckpointError(f"{path} is an adapter alone, without its backbone; pass the model file exported "
                              f"beside it ({path.with_name(MODEL_FILE)}) or the run folder")
    if fmt not in (None, BACKBONE_FORMAT):
        raise CheckpointError(f"{path} is a {fmt!r} file, not a model, backbone or official checkpoint")
    # A tami backbone file or an official checkpoint (a training checkpoint is named by read_checkpoint).
    try:
        backbone = backbones.load(path)
    except UnknownConfiguration as exc:
        raise CheckpointError(
            f"{path}: {exc.detail}; convert it with the constructor arguments it was trained with first "
            f"(tami convert {path} OUT.safetensors --arch {exc.arch} --set KEY=VALUE ...) and pass OUT.safetensors"
        ) from None
    return ModelChoice(TAMI.from_preset(backbone).eval(), path, backbone_only=True)


def describe(choice: ModelChoice) -> str:
    """One line for logs: the file and, for backbone weights, that no adapter runs."""
    if choice.backbone_only:
        return f"{choice.path} (a {choice.model.backbone.arch} backbone alone: the file holds no adapter)"
    return f"{choice.path} ({choice.model.backbone.arch} + TAMI adapter)"
