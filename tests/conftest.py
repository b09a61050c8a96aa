"""Shared test helpers: where the official backbone fixtures live and how to read them."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(os.environ.get("TAMI_FIXTURES", REPO.parent / "shared" / "fixtures" / "backbones"))


def fixture_variants(arch: str) -> list[str]:
    """Variant folder names of ``arch`` under the fixtures (``released``, ``small``, ...)."""
    root = FIXTURES / arch
    return sorted(p.name for p in root.iterdir() if (p / "meta.json").is_file()) if root.is_dir() else []


def load_meta(arch: str, variant: str) -> dict:
    path = FIXTURES / arch / variant / "meta.json"
    if not path.is_file():
        pytest.skip(f"official fixtures not found at {path.parent} (set TAMI_FIXTURES)")
    return json.loads(path.read_text())


def load_fixture_tensors(arch: str, variant: str, name: str) -> dict[str, torch.Tensor]:
    """Tensors of ``<arch>/<variant>/<name>.safetensors`` cast to float32."""
    from safetensors.torch import load_file

    path = FIXTURES / arch / variant / f"{name}.safetensors"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    return {k: v.float() for k, v in load_file(str(path)).items()}


@pytest.fixture(autouse=True)
def _deterministic_torch():
    torch.manual_seed(0)
    yield
