"""The layering rules of docs/ARCHITECTURE.md, checked on the source: imports are parsed with ``ast``, nothing runs.

Each rule names the layer that broke it, so a failure says which import to move.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "tami"
DOC = SRC.parents[1] / "docs" / "ARCHITECTURE.md"

# Lower number = lower layer; a module may import its own package or a lower layer, never a higher one.
LAYERS = {
    "tami": 0, "errors": 0, "registry": 0, "wording": 0, "atomic": 0, "device": 0, "frames": 0,
    "data": 1, "backbones": 1, "budget": 1, "tiling": 1,
    "adapter": 2, "metrics": 2, "timeslice": 2,
    "enhance": 3, "losses": 3, "evaluation": 3, "bundled": 3, "scene_cuts": 1,
    "train": 4, "report": 4,
    "demo": 5, "model_files": 5,
    "cli": 6,
}
# Imports allowed nowhere else: package -> packages it must never import even though they sit lower.
FORBIDDEN = {
    "backbones": {"adapter", "data", "metrics", "enhance", "train"},
    "metrics": {"data", "adapter", "backbones"},
    "data": {"backbones", "adapter", "metrics"},
}


def _modules() -> list[Path]:
    return sorted(SRC.rglob("*.py"))


def _name(path: Path) -> list[str]:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return parts[:-1] if parts[-1] == "__init__" else parts


def _is_module(name: list[str]) -> bool:
    where = SRC.parent.joinpath(*name)
    return where.with_suffix(".py").is_file() or (where / "__init__.py").is_file()


def _imports(path: Path) -> set[str]:
    """The top-level tami parts (``data``, ``adapter``, ``tami`` for the package itself) ``path`` imports."""
    name, found = _name(path), set()
    package = name if path.name == "__init__.py" else name[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        targets: list[list[str]] = []
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                mod = base + (node.module.split(".") if node.module else [])
                targets = [mod + [a.name] if _is_module(mod + [a.name]) else mod for a in node.names]
            elif node.module and node.module.split(".")[0] == "tami":
                targets = [node.module.split(".")]
        elif isinstance(node, ast.Import):
            targets = [a.name.split(".") for a in node.names if a.name.split(".")[0] == "tami"]
        for t in targets:
            found.add(t[1] if len(t) > 1 else "tami")
    return found


def _part(path: Path) -> str:
    name = _name(path)
    return name[1] if len(name) > 1 else "tami"


def test_every_module_sits_on_a_layer():
    missing = sorted({_part(p) for p in _modules()} - set(LAYERS))
    assert not missing, f"add {missing} to LAYERS here and to the layer table of docs/ARCHITECTURE.md"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_no_import_runs_up_a_layer_or_across_a_forbidden_line(path):
    own = _part(path)
    for target in _imports(path) - {own}:
        assert target in LAYERS, f"{path.relative_to(SRC)} imports unknown part tami.{target}"
        assert LAYERS[target] <= LAYERS[own], (
            f"{path.relative_to(SRC)} (layer {LAYERS[own]}) imports tami.{target} (layer {LAYERS[target]})"
        )
        assert target not in FORBIDDEN.get(own, set()), f"{path.relative_to(SRC)}: tami.{own} must not import tami.{target}"


@pytest.mark.parametrize("path", [p for p in _modules() if _part(p) != "cli"], ids=lambda p: str(p.relative_to(SRC)))
def test_the_library_never_prints(path):
    tree = ast.parse(path.read_text())
    calls = [n.lineno for n in ast.walk(tree)
             if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "print"]
    streams = [n.lineno for n in ast.walk(tree)
               if isinstance(n, ast.Attribute) and n.attr in ("stdout", "stderr")
               and isinstance(n.value, ast.Name) and n.value.id == "sys"]
    assert not calls and not streams, (
        f"{path.relative_to(SRC)} prints (lines {calls + streams}); log, or report through a callback to tami.cli"
    )


def test_the_import_checker_sees_imports():
    """The checker itself: a relative import two levels up is read as the part it names."""
    adapter_model = SRC / "adapter" / "model.py"
    assert {"backbones", "errors"} <= _imports(adapter_model)
    assert "adapter" in _imports(SRC / "losses.py")


def test_architecture_map_names_every_module():
    text = DOC.read_text()
    missing = [".".join(_name(p)) for p in _modules()
               if p.name != "__init__.py" and f"`{'.'.join(_name(p)[1:])}`" not in text]
    assert not missing, f"docs/ARCHITECTURE.md has no line for {missing}"


def _module_imports(path: Path) -> set[str]:
    """Dotted names of the tami modules ``path`` imports (anywhere in the file, deferred imports included)."""
    name, found = _name(path), set()
    package = name if path.name == "__init__.py" else name[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                mod = package[: len(package) - node.level + 1] + (node.module.split(".") if node.module else [])
            elif node.module and node.module.split(".")[0] == "tami":
                mod = node.module.split(".")
            else:
                continue
            for alias in node.names:
                found.add(".".join(mod + [alias.name]) if _is_module(mod + [alias.name]) else ".".join(mod))
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "tami")
    return found


def test_no_module_import_cycles():
    graph = {".".join(_name(p)): _module_imports(p) for p in _modules()}
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if nxt == node or nxt not in graph:
                continue
            if state.get(nxt) == 1:
                cycle = trail[trail.index(nxt):] + [nxt]
                pytest.fail(f"import cycle: {' -> '.join(cycle)}")
            if nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = 2

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])


@pytest.mark.parametrize("part", ["report", "evaluation"])
def test_scoring_callers_use_the_metrics_package_surface(part):
    """The report and the evaluator score through the names ``tami.metrics`` exports (one scoring path), never by
    reaching into its modules."""
    deep = {str(p.relative_to(SRC)): sorted(m for m in _module_imports(p) if m.startswith("tami.metrics."))
            for p in sorted((SRC / part).rglob("*.py"))}
    assert deep, f"no modules under tami.{part}"
    assert not {k: v for k, v in deep.items() if v}, f"import these from tami.metrics instead: {deep}"
