"""A component is its signature and a few lines (docs/architecture.md): the choreography
lives in `artflow.stages` (`run`, the report writers), so no body grows past MAX_BODY_LINES.

Pure AST over `components/*.py` (nothing is imported), well under a second."""

from __future__ import annotations

import ast

from artflow.config import PROJECT_ROOT

MAX_BODY_LINES = 15  # non-blank lines after the docstring


def _is_component(node: ast.FunctionDef) -> bool:
    for decorator in node.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        if isinstance(target, ast.Name) and target.id == "component":
            return True
    return False


def body_lines(node: ast.FunctionDef, source: list[str]) -> int:
    """Non-blank source lines of `node`'s body, its docstring left out."""
    body = node.body
    if ast.get_docstring(node) is not None:
        body = body[1:]
    if not body:
        return 0
    lines = source[body[0].lineno - 1 : body[-1].end_lineno]
    return sum(1 for line in lines if line.strip())


def components() -> list[tuple[str, int]]:
    """(module:function, body lines) of every component in components/."""
    found = []
    for path in sorted((PROJECT_ROOT / "components").glob("*.py")):
        text = path.read_text(encoding="utf-8")
        source = text.splitlines()
        for node in ast.walk(ast.parse(text, str(path))):
            if isinstance(node, ast.FunctionDef) and _is_component(node):
                found.append((f"{path.stem}:{node.name}", body_lines(node, source)))
    return found


def test_every_component_body_is_a_few_lines():
    found = components()
    assert {"train:train_op", "evaluate:evaluate_op", "gate:gate_op"} <= {n for n, _ in found}
    too_long = {name: n for name, n in found if n > MAX_BODY_LINES}
    assert not too_long, f"component bodies over {MAX_BODY_LINES} lines: {too_long}"


def test_the_count_skips_the_docstring_and_blank_lines():
    text = 'def f():\n    """Doc.\n\n    more."""\n    a = 1\n\n    return a\n'
    node = ast.parse(text).body[0]
    assert isinstance(node, ast.FunctionDef)
    assert body_lines(node, text.splitlines()) == 2
