"""A small explicit registry: one instance per kind of thing (backbones, metrics, flow methods, ...).

Entries are added by a decorator in the module that defines them; nothing is discovered by scanning files. Every
kind offers the same verbs to users, ``create_<kind>(name, **options)`` and ``list_<kind>s(pattern=None)``, built on
:meth:`Registry.create` / :meth:`Registry.get` and :meth:`Registry.names`. Unknown names raise
:class:`~tami.errors.UnknownNameError` and unknown options :class:`~tami.errors.OptionError`, which the CLI reports
in one line (exit 2).
"""

from __future__ import annotations

import difflib
import fnmatch
import inspect
from typing import Any, Callable, Generic, TypeVar

from .errors import OptionError, UnknownNameError

T = TypeVar("T")


def option_names(fn: Callable[..., Any]) -> list[str] | None:
    """Keyword options ``fn`` (a class: its ``__init__``) takes, or ``None`` when it takes ``**kwargs``."""
    target = fn.__init__ if inspect.isclass(fn) else fn  # type: ignore[misc]
    if target is object.__init__:  # a class without its own __init__ takes no options
        return []
    params = list(inspect.signature(target).parameters.values())
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [p.name for p in params if p.kind in kinds and p.name != "self"]


def check_options(what: str, valid: list[str] | None, options: dict[str, Any]) -> None:
    """Raise :class:`OptionError` naming ``what``, the unknown options and the ``valid`` ones (``None``: any)."""
    unknown = [] if valid is None else sorted(set(options) - set(valid))
    if unknown:
        raise OptionError(
            f"{what} has no option {', '.join(map(repr, unknown))}; its options are {', '.join(valid or []) or 'none'}"
        )


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
        """Return the entry called ``name``; raise :class:`UnknownNameError` naming close matches when absent."""
        try:
            return self._entries[name]
        except KeyError:
            close = difflib.get_close_matches(name, list(self._entries), n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}{hint} (known: {', '.join(sorted(self._entries))})"
            ) from None

    def create(self, name: str, **options: Any) -> Any:
        """Call the entry ``name`` (a class or factory) with ``options``, checked against its signature first.

        Raises:
            UnknownNameError: no entry ``name``.
            OptionError: an option the entry does not take, naming the valid ones.
        """
        entry: Any = self.get(name)
        check_options(f"{self.kind} {name!r}", option_names(entry), options)
        return entry(**options)

    def names(self, pattern: str | None = None) -> list[str]:
        """Sorted registered names, optionally filtered by a shell-style ``pattern``."""
        names = sorted(self._entries)
        return [n for n in names if pattern is None or fnmatch.fnmatch(n, pattern)]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __len__(self) -> int:
        return len(self._entries)
