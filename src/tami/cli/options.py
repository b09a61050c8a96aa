"""Option parsing shared by several subcommands."""

from __future__ import annotations

from pathlib import Path

from ..errors import UsageError


def parse_methods(specs: list[str]) -> dict[str, Path]:
    """``["NAME=PATH", ...]`` to an ordered ``{name: path}``.

    Raises:
        UsageError: a spec without ``=``, an empty part, or a repeated name.
    """
    methods: dict[str, Path] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise UsageError(f"--method expects NAME=PATH, got {spec!r}")
        if name in methods:
            raise UsageError(f"method name {name!r} given twice; names must be unique")
        methods[name] = Path(path)
    if not methods:
        raise UsageError("no method given: add one or more --method NAME=PATH")
    return methods
