"""The local runner's output: the terminal is a log-level choice, the log file keeps everything."""

from __future__ import annotations

import io
import json
import logging
import sys

import pytest

from pipelines.local_log import StepLines, step_environment, step_output
from tests.logcapture import artflow_records


@pytest.fixture
def records():
    """What reaches the `artflow` logger's handlers in this process (it does not propagate)."""
    with artflow_records() as seen:
        yield seen


def _json(level: str, logger: str, message: str) -> str:
    return json.dumps({"time": "2026-11-25T15:08:14.500+00:00", "level": level,
                       "logger": logger, "message": message}) + "\n"  # fmt: skip


def test_a_steps_records_are_re_emitted_noise_goes_to_the_file_tracebacks_show(records):
    lines = [
        "[KFP Executor 2026-11-25 15:08:14,501 INFO]: Got executor_input:\n",
        '{"inputs": {"parameterValues": {"profile": "smoke"}}}\n',  # JSON, but not a record
        _json("DEBUG", "artflow.stages", "validate: cache key abc"),
        "WARNING: All log messages before absl::InitializeLog() is called\n",
        "\x1b[1m1/1\x1b[0m \x1b[32m\u2501\u2501\u2501\u2501\x1b[0m 148ms/step\n",
        _json("INFO", "artflow.stages", "validate: done in 1.2 s"),
        "Traceback (most recent call last):\n",
        '  File "x.py", line 1, in <module>\n',
        "artflow.errors.DataError: bad\n",
        "  fix: regenerate\n",
        "I0000 after the traceback\n",
    ]
    console, log = io.StringIO(), io.StringIO()
    route = StepLines(console, log)
    for line in lines:
        route(line)
    assert log.getvalue() == "".join("    " + line for line in lines)
    # records pass at the step's level (the step filtered them), under their own logger
    assert records == [
        ("DEBUG", "artflow.stages", "validate: cache key abc"),
        ("INFO", "artflow.stages", "validate: done in 1.2 s"),
    ]
    shown = console.getvalue()
    assert shown.splitlines() == [
        "    Traceback (most recent call last):",
        '      File "x.py", line 1, in <module>',
        "    artflow.errors.DataError: bad",
        "      fix: regenerate",
    ]


def test_kfp_status_lines_show_and_its_listings_go_to_the_file(tmp_path, capsys):
    path = tmp_path / "logs/run.log"
    root = logging.getLogger()
    with step_output(path):
        handler = logging.StreamHandler(sys.stdout)  # as kfp.local logs: root, to stdout
        root.addHandler(handler)
        try:
            logging.warning("Executing task 'validate-op'")
            logging.warning("Task 'validate-op' outputs:\n    summary: Metrics(uri='/x')")
            root.setLevel(logging.INFO)
            logging.info("Streamed logs:\n")
            logging.info("Task 'validate-op' outputs:\n    summary: Metrics(uri='/x')")
            logging.info("Task 'validate-op' finished with status SUCCESS")
        finally:
            root.removeHandler(handler)
            root.setLevel(logging.WARNING)
    shown = capsys.readouterr().out
    written = path.read_text()
    for line in ("Executing task", "finished with status SUCCESS"):
        assert line in shown and line in written
    assert "Streamed logs" not in shown and "Streamed logs" in written
    assert shown.count("outputs:") == 1  # a warning shows whole; the INFO listing does not
    assert written.count("outputs:") == 2
    assert not any(f is not None and f.__class__.__name__ == "_KfpListings" for f in root.filters)


def test_a_real_step_logs_at_the_level_passed_down(tmp_path, records, capsys):
    """A kfp step in its own process gets the level through the environment the runner builds."""
    from kfp import dsl, local

    from pipelines.local_runner import steps_in_empty_dirs

    @dsl.component(base_image="python:3.11", install_kfp_package=False)
    def chatty():
        import logging

        from artflow import logs

        logs.ensure_configured()
        log = logging.getLogger("artflow.chatty")
        log.debug("hidden detail")
        log.info("step done")
        print("third-party noise")

    local.init(local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "root"))
    path = tmp_path / "run.log"
    with step_output(path) as lines, steps_in_empty_dirs(lines, step_environment(logging.INFO)):
        chatty()
    assert ("INFO", "artflow.chatty", "step done") in records
    assert not any("hidden detail" in message for *_, message in records)
    shown, written = capsys.readouterr().out, path.read_text()
    assert "third-party noise" in written and "third-party noise" not in shown
    assert "executor_input" in written and "executor_input" not in shown
    assert '"step done"' in written  # the file keeps the step's record as it came
