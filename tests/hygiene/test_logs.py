"""The library logs through `logging`; the entry points choose how the lines look."""

from __future__ import annotations

import ast
import json
import logging
from pathlib import Path

import pytest

from artflow import logs, stages
from artflow.cli import run
from artflow.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
# Where printing is the job: the CLI's output functions. Everything else logs.
CLI_OUTPUT = (ROOT / "src/artflow/cli.py", ROOT / "src/artflow/commands")
LIBRARY = (ROOT / "src/artflow", ROOT / "components", ROOT / "pipelines")


@pytest.fixture(autouse=True)
def _restore_artflow_logger(monkeypatch):
    """Each test configures logging afresh; later tests get the logger back as it was."""
    logger = logging.getLogger(logs.ROOT)
    saved = (list(logger.handlers), logger.level, logger.propagate)
    logger.handlers = [h for h in logger.handlers if h.get_name() != logs._HANDLER]
    monkeypatch.delenv(logs.ENV_FORMAT, raising=False)
    monkeypatch.delenv(logs.ENV_LEVEL, raising=False)
    yield
    logger.handlers, logger.level, logger.propagate = saved


def _prints(path: Path) -> list[int]:
    """Lines that call the builtin print, rich's print (under any name) or typer.echo/secho."""
    tree = ast.parse(path.read_text(), filename=str(path))
    printers = {"print"} | {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "rich"
        for alias in node.names
        if alias.name == "print"
    }
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and (_called(node.func) in printers | TYPER_PRINTERS)
    ]


TYPER_PRINTERS = {"typer.echo", "typer.secho"}


def _called(func: ast.expr) -> str:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
        return f"{func.value.id}.{func.attr}"
    return ""


def test_no_print_outside_the_cli_output_functions() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{line}"
        for folder in LIBRARY
        for path in sorted(folder.rglob("*.py"))
        if not any(path == out or out in path.parents for out in CLI_OUTPUT)
        for line in _prints(path)
    ]
    assert found == [], "log through logging.getLogger(__name__) instead of printing"


def test_the_print_finder_finds_prints(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(
        'from rich import print as rp\nprint("a")\nrp("b")\nx.print("c")\ntyper.echo("d")\n'
    )
    assert _prints(probe) == [2, 3, 5]


def test_plain_lines_off_a_terminal(capsys) -> None:
    logs.configure()  # stderr is captured, not a terminal: plain
    logging.getLogger("artflow.stages").info("validate: done in %s s", 1.2)
    logging.getLogger("artflow.stages").debug("not shown at info")
    assert capsys.readouterr().err == "INFO artflow.stages: validate: done in 1.2 s\n"


def test_json_lines_from_the_cli_option(capsys) -> None:
    assert run(["--log-format", "json", "--log-level", "debug", "train", "--help"]) == 0
    capsys.readouterr()
    logging.getLogger("artflow.x").debug("hello %s", "there")
    entry = json.loads(capsys.readouterr().err)
    assert entry["level"] == "DEBUG" and entry["logger"] == "artflow.x"
    assert entry["message"] == "hello there"


def test_environment_is_read_when_no_option_is_given(capsys, monkeypatch) -> None:
    monkeypatch.setenv(logs.ENV_FORMAT, "JSON")
    monkeypatch.setenv(logs.ENV_LEVEL, "warning")
    logs.configure()
    logging.getLogger("artflow.x").info("hidden")
    logging.getLogger("artflow.x").warning("shown")
    assert json.loads(capsys.readouterr().err)["message"] == "shown"
    monkeypatch.setenv(logs.ENV_FORMAT, "xml")
    with pytest.raises(ConfigError, match="ARTFLOW_LOG_FORMAT='xml'.*\n  fix: use one of auto"):
        logs.configure()


def test_a_pipeline_step_configures_logging_and_keeps_the_cli_choice(tmp_path, capsys) -> None:
    stages.begin("", "")  # a component's entry, with nothing configured yet
    handler = logging.getLogger(logs.ROOT).handlers[-1]
    assert handler.get_name() == logs._HANDLER and not logging.getLogger(logs.ROOT).propagate
    logs.configure(logs.LogFormat.json)
    stages.begin("", "")  # the CLI already chose: kept
    logging.getLogger("artflow.stages").info("kept")
    assert json.loads(capsys.readouterr().err)["message"] == "kept"
