"""The models shipped inside the package (``tami/weights/<name>.safetensors``) and loading a model by name or file."""

from __future__ import annotations

import os
from pathlib import Path

from .adapter import TAMI
from .adapter.io import load_model
from .errors import InputError

WEIGHTS_DIR = Path(__file__).with_name("weights")
DEFAULT_MODEL = "demo"


def bundled_models() -> list[str]:
    """Names of the models shipped inside the package (``tami/weights/<name>.safetensors``)."""
    return sorted(p.stem for p in WEIGHTS_DIR.glob("*.safetensors"))


def load_enhancement_model(model: str | os.PathLike[str] | None = None) -> TAMI:
    """Load a bundled model by name (default ``"demo"``) or a backbone+adapter file written by ``save_model``.

    An existing file is always read as a model file; otherwise a plain name (no suffix, no folder) is looked up
    among the bundled models.

    Raises:
        InputError: unknown bundled name or missing file.
        CheckpointError: the file is not a model file or its weights do not fit its configuration.
    """
    name = DEFAULT_MODEL if model is None else os.fspath(model)
    path = Path(name)
    if path.is_file():
        return load_model(path)
    if not path.suffix and len(path.parts) == 1:
        path = WEIGHTS_DIR / f"{name}.safetensors"
        if not path.is_file():
            raise InputError(
                f"no bundled model {name!r} (bundled: {', '.join(bundled_models()) or 'none'}); "
                "give a bundled name or the path of a .safetensors model file"
            )
    else:
        raise InputError(f"model file {path} does not exist; give a bundled name or an existing .safetensors file")
    return load_model(path)
