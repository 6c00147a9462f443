"""The library's shape stays readable: no class longer than about 250 lines, and the
service module only wires (docs/architecture.md, "An endpoint."): its endpoints are declared
in `src/artflow/serve/endpoints/`, each `@bentoml.api` body one delegating statement, and
only `src/artflow/serve/service.py` reads the settings in the serving package. And the one
route table (`src/artflow/serve/routes.py`: the guard's fields, the metric labels) has a row
for every endpoint declared, and no row without one.

Pure AST over the library's files (nothing imported): one parse of each, about a second."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from artflow.config import PROJECT_ROOT
from artflow.serve import routes

LIBRARY = PROJECT_ROOT / "src" / "artflow"
SERVICE = LIBRARY / "serve" / "service.py"
MAX_CLASS_LINES = 250
MAX_SERVICE_LINES = 250


Function = ast.FunctionDef | ast.AsyncFunctionDef


@dataclass
class Census:
    """What the checks look at, from one parse and one walk of each library module."""

    classes: list[tuple[Path, ast.ClassDef]] = field(default_factory=list)
    apis: list[tuple[Path, Function]] = field(default_factory=list)
    settings_readers: list[tuple[Path, ast.AST]] = field(default_factory=list)


@cache
def _census() -> Census:
    census = Census()
    for path in sorted(LIBRARY.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.ClassDef):
                census.classes.append((path, node))
            elif isinstance(node, Function) and any(map(_is_api, node.decorator_list)):
                census.apis.append((path, node))
            elif _name(node) == "load_settings":
                census.settings_readers.append((path, node))
    return census


def _name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    return node.attr if isinstance(node, ast.Attribute) else None


def _where(path: Path, node: ast.AST) -> str:
    return f"{path.relative_to(PROJECT_ROOT)}:{node.lineno}"


def _is_api(decorator: ast.expr) -> bool:
    """`@bentoml.api` or `@bentoml.api(...)`."""
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    return isinstance(target, ast.Attribute) and target.attr == "api"


def _body_without_docstring(fn: Function) -> list[ast.stmt]:
    body = fn.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        return body[1:]
    return body


def test_no_class_is_longer_than_about_250_lines() -> None:
    long = [
        f"{_where(path, node)} {node.name}: {node.end_lineno - node.lineno + 1} lines"
        for path, node in _census().classes
        if node.end_lineno - node.lineno + 1 > MAX_CLASS_LINES
    ]
    assert not long, f"split these classes (at most {MAX_CLASS_LINES} lines): {long}"


def test_the_service_module_only_wires() -> None:
    lines = len(SERVICE.read_text().splitlines())
    assert lines <= MAX_SERVICE_LINES, f"serve/service.py has {lines} lines: move logic out"
    declared = [_where(path, fn) for path, fn in _census().apis if path == SERVICE]
    assert not declared, (
        f"endpoints declared in serve/service.py: {declared}; declare them in a group of "
        "src/artflow/serve/endpoints/ that the service class inherits"
    )


def test_every_endpoint_declaration_only_delegates() -> None:
    """An `@bentoml.api` method is its signature, bounds and docstring, then one statement
    that hands the request to its group's class (where the logic is tested and sized)."""
    heavy = [
        f"{_where(path, fn)} {fn.name}"
        for path, fn in _census().apis
        if len(_body_without_docstring(fn)) != 1
        or not isinstance(_body_without_docstring(fn)[0], ast.Return)
    ]
    assert not heavy, f"these endpoint bodies do more than delegate: {heavy}"


def test_only_the_service_module_reads_the_settings_in_serving() -> None:
    """Settings are read once, where `bentoml serve` starts the service, and handed down."""
    serving = LIBRARY / "serve"
    readers = [
        _where(path, node)
        for path, node in _census().settings_readers
        if path.is_relative_to(serving) and path != SERVICE
    ]
    assert not readers, f"read the settings only in serve/service.py: {readers}"


def test_the_rules_see_what_they_check() -> None:
    """The checks above look at real endpoint declarations and classes (not an empty set)."""
    census = _census()
    apis = {fn.name for _, fn in census.apis}
    assert {"classify", "stylize", "monet", "feedback", "admin_status"} <= apis
    assert any(path == SERVICE and c.name == "Artflow" for path, c in census.classes)
    assert any(path == SERVICE for path, _ in census.settings_readers)


def _route_of(fn: Function) -> str | None:
    """The `route="..."` of its `@bentoml.api(...)` (None when BentoML derives it)."""
    for decorator in fn.decorator_list:
        if isinstance(decorator, ast.Call) and _is_api(decorator):
            for keyword in decorator.keywords:
                if keyword.arg == "route" and isinstance(keyword.value, ast.Constant):
                    return keyword.value.value
    return None


def test_the_route_table_and_the_endpoints_agree() -> None:
    declared = {fn.name: _route_of(fn) for _, fn in _census().apis}
    unrouted = {name: path for name, path in declared.items() if path is None}
    assert not unrouted, f"name each endpoint's route in its @bentoml.api: {unrouted}"
    missing = {name: path for name, path in declared.items() if routes.label(path) == "other"}
    assert not missing, f"add these endpoints to artflow.serve.routes.ROUTES: {missing}"
    labelled = {routes.label(path) for path in declared.values()}
    stale = [r.path for r in routes.ROUTES if r.label not in labelled]
    assert not stale, f"rows of artflow.serve.routes.ROUTES without an endpoint: {stale}"
