"""Backbone and preset registries and the factory ``create``.

Each backbone module registers its class with ``@BACKBONES.register("name")`` and its named configurations with
:func:`register_preset` (``arch.tag``); ``tami.backbones`` imports every backbone module explicitly.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

from ..registry import Registry
from .base import Backbone

BACKBONES: Registry[type[Backbone]] = Registry("backbone")


@dataclass(frozen=True)
class Preset:
    """A named configuration ``arch.tag`` of a backbone (constructor arguments with official names)."""

    name: str
    arch: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    description: str = ""


PRESETS: Registry[Preset] = Registry("backbone preset")


def register_preset(name: str, description: str = "", **kwargs: Any) -> Preset:
    """Register the preset ``name`` (``"arch.tag"``) with constructor arguments ``kwargs``."""
    arch, _, tag = name.partition(".")
    if not tag:
        raise ValueError(f"preset names are 'arch.tag', got {name!r}")
    preset = Preset(name=name, arch=arch, kwargs=dict(kwargs), description=description)
    PRESETS.register(name)(preset)
    return preset


def default_config(arch: str) -> dict[str, Any]:
    """Constructor defaults (official argument names) of backbone ``arch``."""
    sig = inspect.signature(BACKBONES.get(arch).__init__)
    return {
        n: p.default
        for n, p in sig.parameters.items()
        if n != "self" and p.default is not inspect.Parameter.empty and p.kind is not p.VAR_KEYWORD
    }


def resolve(name: str, **overrides: Any) -> tuple[str, dict[str, Any]]:
    """Turn an arch or preset name plus overrides into ``(arch, full constructor kwargs)``."""
    if "." in name:
        preset = PRESETS.get(name)
        arch, kwargs = preset.arch, {**preset.kwargs, **overrides}
    else:
        arch, kwargs = name, dict(overrides)
    config = default_config(arch)
    unknown = sorted(set(kwargs) - set(config))
    if unknown:
        raise TypeError(
            f"backbone {arch!r} has no option {', '.join(map(repr, unknown))}; its options are "
            f"{', '.join(sorted(config))}"
        )
    config.update(kwargs)
    # JSON-compatible values (tuples as lists), so a configuration saved with the weights reloads equal.
    return arch, {k: list(v) if isinstance(v, tuple) else v for k, v in config.items()}


def create(name: str, **overrides: Any) -> Backbone:
    """Build a backbone from its arch name (released defaults) or a preset ``arch.tag``, with overrides.

    Args:
        name: ``"retinexformer"`` or a preset such as ``"retinexformer.released"``.
        **overrides: constructor arguments under their official names (``n_feat=40``).

    Returns:
        A randomly initialised backbone whose ``config`` records every constructor argument.
    """
    arch, config = resolve(name, **overrides)
    model = BACKBONES.get(arch)(**config)
    model.config = config
    return model


def names(pattern: str | None = None) -> list[str]:
    """Registered backbone architectures."""
    return BACKBONES.names(pattern)


def preset_names(pattern: str | None = None) -> list[str]:
    """Registered presets ``arch.tag``."""
    return PRESETS.names(pattern)
