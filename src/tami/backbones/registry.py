"""Backbone and preset registries and the factory ``create_backbone``.

Each backbone module registers its class with ``@BACKBONES.register("name")`` and its named configurations with
:func:`register_preset` (``arch.tag``); ``tami.backbones`` imports every backbone module explicitly. The verbs are
those of every tami registry (``create_<kind>``, ``list_<kind>s``); inside the ``tami.backbones`` namespace the
short forms ``create``, ``names`` and ``preset_names`` are the same functions.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

from ..registry import Registry, check_options
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
    """Turn an arch or preset name plus overrides into ``(arch, full constructor kwargs)``.

    Raises:
        UnknownNameError: unknown arch or preset, with close matches.
        OptionError: an override the backbone does not take, naming the valid ones.
    """
    if "." in name:
        preset = PRESETS.get(name)
        arch, kwargs = preset.arch, {**preset.kwargs, **overrides}
    else:
        arch, kwargs = name, dict(overrides)
    config = default_config(arch)
    check_options(f"backbone {arch!r}", sorted(config), kwargs)
    config.update(kwargs)
    # JSON-compatible values (tuples as lists), so a configuration saved with the weights reloads equal.
    return arch, {k: list(v) if isinstance(v, tuple) else v for k, v in config.items()}


def create_backbone(name: str, **overrides: Any) -> Backbone:
    """Build a backbone from its arch name (released defaults) or a preset ``arch.tag``, with overrides.

    Args:
        name: ``"retinexformer"`` or a preset such as ``"retinexformer.released"``.
        **overrides: constructor arguments under their official names (``n_feat=40``).

    Returns:
        A randomly initialised backbone whose ``config`` records every constructor argument.

    Raises:
        UnknownNameError: unknown arch or preset, with close matches.
        OptionError: an override the backbone does not take, naming the valid ones.
    """
    arch, config = resolve(name, **overrides)
    model = BACKBONES.get(arch)(**config)
    model.config = config
    return model


def list_backbones(pattern: str | None = None) -> list[str]:
    """Registered backbone architectures, optionally filtered by a shell-style pattern."""
    return BACKBONES.names(pattern)


def list_backbone_presets(pattern: str | None = None) -> list[str]:
    """Registered presets ``arch.tag``, optionally filtered by a shell-style pattern."""
    return PRESETS.names(pattern)


# Short forms inside the ``tami.backbones`` namespace (``tami.backbones.create("retinexformer")``).
create = create_backbone
names = list_backbones
preset_names = list_backbone_presets
