"""Dependencies point down (docs/architecture.md): a module imports only from its own layer or
the layers below it, the packages form no cycle, and nothing changes `sys.path`.

Pure AST over the repository's files (no module is imported), so it runs in well under a
second. Imports inside functions count as much as those at the top of a module."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

from artflow.config import PROJECT_ROOT

# Bottom to top; a unit is `artflow.<top-level module or package>`, `components` or
# `pipelines`. Keep in step with the picture in docs/architecture.md.
LAYERS: tuple[tuple[str, frozenset[str]], ...] = (
    (
        "foundation",
        frozenset(
            {
                "artflow",
                "artflow.errors",
                "artflow.fallback",
                "artflow.config",
                "artflow.progress",
                "artflow.logs",
                "artflow.imageio",
                "artflow.runtime",
                "artflow.stats",
                "artflow.plots",
            }
        ),
    ),
    ("model table", frozenset({"artflow.families"})),
    ("data", frozenset({"artflow.data"})),
    ("registry", frozenset({"artflow.registry"})),
    ("models", frozenset({"artflow.classify", "artflow.style"})),
    ("decisions", frozenset({"artflow.promote", "artflow.abtest"})),
    ("monitoring", frozenset({"artflow.monitor"})),
    ("serving", frozenset({"artflow.serve"})),
    ("stages", frozenset({"artflow.stages"})),
    ("components", frozenset({"components"})),
    ("pipelines", frozenset({"pipelines"})),
    ("cli", frozenset({"artflow.commands", "artflow.cli"})),
)
LEVEL = {unit: i for i, (_, units) in enumerate(LAYERS) for unit in units}
OURS = ("artflow", "components", "pipelines")
SOURCES = ("src/artflow", "components", "pipelines")


def unit(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "artflow" else parts[0]


def module_name(path: Path) -> str:
    rel = path.relative_to(PROJECT_ROOT)
    parts = list(rel.with_suffix("").parts)
    if parts[0] == "src":
        parts = parts[1:]
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


@cache
def source_files() -> tuple[Path, ...]:
    return tuple(sorted(p for d in SOURCES for p in (PROJECT_ROOT / d).rglob("*.py")))


def imported(path: Path) -> Iterator[tuple[int, str]]:
    """(line, module) for every import of ours in `path`, `from artflow import x` as
    `artflow.x` (x may be a module)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, a.name) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolved against this module's package
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            if base in OURS:
                yield from ((node.lineno, f"{base}.{a.name}") for a in node.names)
            else:
                yield node.lineno, base


@cache
def edges() -> tuple[tuple[str, str, str], ...]:
    """(importing unit, imported unit, where) between different units of ours."""
    found = []
    for path in source_files():
        here = unit(module_name(path))
        for line, module in imported(path):
            there = unit(module)
            if module.split(".")[0] in OURS and there != here:
                found.append((here, there, f"{path.relative_to(PROJECT_ROOT)}:{line}"))
    return tuple(found)


def test_every_unit_has_a_layer() -> None:
    units = {unit(module_name(p)) for p in source_files()} | {e[1] for e in edges()}
    assert not sorted(units - set(LEVEL)), "add them to a layer (docs/architecture.md)"


def test_imports_point_down_the_layers() -> None:
    upward = [
        f"{where}: {here} ({LAYERS[LEVEL[here]][0]}) imports {there} ({LAYERS[LEVEL[there]][0]})"
        for here, there, where in edges()
        if here in LEVEL and there in LEVEL and LEVEL[there] > LEVEL[here]
    ]
    assert not upward, "\n".join(upward)


def cycle(graph: dict[str, set[str]]) -> list[str]:
    """One cycle of `graph` (as a closed path), or [] when there is none."""
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node] = 2
        path.pop()
        return []

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return []


def test_no_import_cycle_between_packages() -> None:
    graph: dict[str, set[str]] = {}
    for here, there, _ in edges():
        graph.setdefault(here, set()).add(there)
    loop = cycle(graph)
    where = [
        w for a, b, w in edges() for x, y in zip(loop, loop[1:], strict=False) if (a, b) == (x, y)
    ]
    assert not loop, f"{' -> '.join(loop)}: " + ", ".join(where)


def test_the_cycle_finder_finds_one() -> None:
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) == []


def _changes_sys_path(node: ast.AST) -> bool:
    """`sys.path.insert(...)`/`.append`/... , `sys.path = ...`, `sys.path[...] = ...`,
    `site.addsitedir(...)`."""

    def is_sys_path(n: ast.AST) -> bool:
        return (
            isinstance(n, ast.Attribute)
            and n.attr == "path"
            and isinstance(n.value, ast.Name)
            and n.value.id == "sys"
        )

    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        if is_sys_path(node.func.value):
            return True
        func = node.func
        return func.attr == "addsitedir" and isinstance(func.value, ast.Name)
    if isinstance(node, (ast.Assign, ast.AugAssign)):
        targets = node.targets if isinstance(node, ast.Assign) else [node.target]
        return any(
            is_sys_path(t) or (isinstance(t, ast.Subscript) and is_sys_path(t.value))
            for t in targets
        )
    return False


@pytest.mark.parametrize(
    "folder", ["src", "components", "pipelines", "tests", "benchmarks", "infra"]
)
def test_no_module_changes_sys_path(folder: str) -> None:
    changes = [
        f"{path.relative_to(PROJECT_ROOT)}:{node.lineno}"
        for path in sorted((PROJECT_ROOT / folder).rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if _changes_sys_path(node)
    ]
    assert not changes, "import installed packages instead (pyproject.toml): " + ", ".join(changes)


def test_the_sys_path_check_sees_a_change() -> None:
    tree = ast.parse("import sys\nsys.path.insert(0, 'x')\nsys.path[:0] = ['y']\n")
    assert sum(_changes_sys_path(n) for n in ast.walk(tree)) == 2
