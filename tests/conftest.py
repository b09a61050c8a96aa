"""Shared test helpers: the official backbone manifests and fixture tensors, and how to read them.

* Manifests (``meta.json``: official keys, shapes, parameter counts, constructor arguments) are vendored in
  ``tests/fixtures/backbones`` and always present; :func:`official_layout` fills them with random tensors for the
  tests of loading mechanics.
* Tensors (official weights and outputs) live in ``../shared/fixtures/backbones`` beside the checkout, or where
  ``TAMI_FIXTURES`` points. Tests that need them skip without them, or fail when ``TAMI_REQUIRE_FIXTURES=1``
  (CI sets it, so a green CI run means the official-equality tests ran).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
MANIFESTS = REPO / "tests" / "fixtures" / "backbones"
FIXTURES = Path(os.environ.get("TAMI_FIXTURES", REPO.parent / "shared" / "fixtures" / "backbones"))
REQUIRE_FIXTURES = os.environ.get("TAMI_REQUIRE_FIXTURES", "") not in ("", "0")


def fixture_archs() -> list[str]:
    """Backbones with official manifests."""
    return sorted(p.name for p in MANIFESTS.iterdir() if p.is_dir())


def fixture_variants(arch: str) -> list[str]:
    """Variant folder names of ``arch`` (``released``, ``small``, ...), from the vendored manifests."""
    root = MANIFESTS / arch
    return sorted(p.name for p in root.iterdir() if (p / "meta.json").is_file()) if root.is_dir() else []


def load_meta(arch: str, variant: str) -> dict:
    """The vendored official manifest of ``<arch>/<variant>``."""
    return json.loads((MANIFESTS / arch / variant / "meta.json").read_text())


def official_layout(arch: str, variant: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random float32 tensors under the official keys and shapes of ``<arch>/<variant>`` (its vendored manifest, in
    its order): what tests of loading mechanics need, which depend on the official layout, not the official values."""
    generator = torch.Generator().manual_seed(seed)
    return {key: torch.randn(shape, generator=generator) for key, shape in load_meta(arch, variant)["keys"].items()}


def missing_fixtures(reason: str) -> None:
    """Skip the calling test because official fixture tensors are missing; fail instead under CI's switch."""
    message = f"{reason} (put the fixtures at {REPO.parent / 'shared' / 'fixtures' / 'backbones'} or set TAMI_FIXTURES)"
    if REQUIRE_FIXTURES:
        pytest.fail(f"TAMI_REQUIRE_FIXTURES is set but {message}", pytrace=False)
    pytest.skip(message)


def fixture_path(arch: str, variant: str, filename: str) -> Path:
    """Path of a fixture file of ``<arch>/<variant>`` under ``FIXTURES`` (skips, or fails, when it is missing)."""
    path = FIXTURES / arch / variant / filename
    if not path.is_file():
        missing_fixtures(f"official fixture {arch}/{variant}/{filename} not found in {FIXTURES}")
    return path


def load_fixture_tensors(arch: str, variant: str, name: str) -> dict[str, torch.Tensor]:
    """Tensors of ``<arch>/<variant>/<name>.safetensors`` cast to float32."""
    from safetensors.torch import load_file

    path = fixture_path(arch, variant, f"{name}.safetensors")
    return {k: v.float() for k, v in load_file(str(path)).items()}


@pytest.fixture
def av():
    """PyAV, the optional ``video`` extra: only the tests that take this fixture skip without it."""
    return pytest.importorskip("av")


@pytest.fixture(autouse=True)
def _deterministic_torch():
    torch.manual_seed(0)
    yield
