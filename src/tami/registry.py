"""A small explicit registry: one instance per kind of thing (backbones, metrics, ...).

Entries are added by a decorator in the module that defines them; nothing is discovered by scanning files.
"""

from __future__ import annotations

import difflib
import fnmatch
from typing import Callable, Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to objects; duplicate names fail, unknown names suggest close matches."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator that registers its target under ``name``."""

        def add(obj: T) -> T:
            if name in self._entries:
                old = self._entries[name]
                raise KeyError(
                    f"{self.kind} {name!r} is already registered by {getattr(old, '__module__', old)!s}; "
                    f"{getattr(obj, '__module__', obj)!s} tried to register it again"
                )
            self._entries[name] = obj
            return obj

        return add

    def get(self, name: str) -> T:
        """Return the entry called ``name``; raise ``KeyError`` naming close matches when absent."""
        try:
            return self._entries[name]
        except KeyError:
            close = difflib.get_close_matches(name, list(self._entries), n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise KeyError(
                f"unknown {self.kind} {name!r}{hint} (known: {', '.join(sorted(self._entries))})"
            ) from None

    def names(self, pattern: str | None = None) -> list[str]:
        """Sorted registered names, optionally filtered by a shell-style ``pattern``."""
        names = sorted(self._entries)
        return [n for n in names if pattern is None or fnmatch.fnmatch(n, pattern)]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __len__(self) -> int:
        return len(self._entries)
