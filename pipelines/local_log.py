"""The local runner's output: the whole of it to a log file, a log-level choice on the terminal.

kfp's SubprocessRunner runs each step as a child process with the executor's INFO logging on,
so a step's raw output is its whole executor-input JSON and the INFO lines of every library it
imports. Instead of sorting those lines by pattern, the rule is structural:
  - a step logs artflow's records as JSON lines at the chosen level (`step_environment`); the
    runner parses them and re-emits each through `logging` in this process, where the CLI's
    handler shows it (Rich on a terminal);
  - any other line of a step (kfp's executor, TensorFlow, Great Expectations, Keras progress)
    goes to the file only, except Python tracebacks, which the terminal shows whole;
  - kfp's own records in this process show their one-line ones (a task started, its status, the
    pipeline's status) and warnings; its multi-line listings (a task's outputs) go to the file.
The file keeps every line.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from artflow import logs

_TRACEBACK = "Traceback (most recent call last):"


def step_environment(level: int) -> dict[str, str]:
    """The environment of a step process: this one's, plus artflow's log format and level.

    A step configures its logging at entry from these two variables (artflow.logs, the one place
    that reads them); kfp's SubprocessRunner offers no other channel that reaches a step before
    its parameters are parsed. They are set only in the child's environment, which the runner
    builds, never in this process's os.environ."""
    return {
        **os.environ,
        logs.ENV_FORMAT: logs.LogFormat.json.value,
        logs.ENV_LEVEL: logging.getLevelName(level).lower(),
    }


class StepLines:
    """Routes one step's output lines: all to `log`; artflow's JSON records through `logging`;
    tracebacks to `console`."""

    def __init__(self, console: TextIO, log: TextIO) -> None:
        self.console, self.log = console, log
        self._in_traceback = False  # between "Traceback ..." and the exception's line
        self._in_message = False  # the exception's message, while its lines are indented

    def __call__(self, line: str) -> None:
        self.log.write("    " + line)  # indented by 4, as kfp streams a step
        record = _record(line)
        if record is not None:
            self._in_traceback = self._in_message = False
            logging.getLogger(record.name).handle(record)  # already filtered by the step's level
            return
        indented = line[:1].isspace() and bool(line.strip())
        if line.startswith(_TRACEBACK):
            self._in_traceback, self._in_message = True, False
        elif self._in_traceback and not indented:
            self._in_traceback, self._in_message = False, True  # the exception's own line
        elif self._in_message and not indented:
            self._in_message = False  # (e.g. the "  fix: ..." of an ArtflowError ends here)
        if self._in_traceback or self._in_message:
            self.console.write("    " + line)


def _record(line: str) -> logging.LogRecord | None:
    """The log record a JSON line of artflow.logs.JsonFormatter stands for, else None."""
    if not line.lstrip().startswith("{"):
        return None
    try:
        entry: Any = json.loads(line)
    except ValueError:
        return None
    if not isinstance(entry, dict) or not {"level", "logger", "message"} <= entry.keys():
        return None
    message = str(entry["message"])
    if entry.get("exception"):
        message += "\n" + str(entry["exception"])
    fields: dict[str, Any] = {
        "name": str(entry["logger"]),
        "levelname": str(entry["level"]),
        "levelno": logging.getLevelName(str(entry["level"])),
        "msg": message,
    }
    with contextlib.suppress(KeyError, TypeError, ValueError):
        fields["created"] = datetime.fromisoformat(entry["time"]).timestamp()
    if not isinstance(fields["levelno"], int):
        fields["levelno"] = logging.INFO
    return logging.makeLogRecord(fields)


class _KfpListings(logging.Filter):
    """On the root logger (kfp.local logs through it): a multi-line INFO record of kfp's goes
    to the file only; the rest shows."""

    def __init__(self, log: TextIO) -> None:
        super().__init__()
        self.log = log

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if record.levelno >= logging.WARNING or "\n" not in message:
            return True
        self.log.write(f"{record.levelname} - {message}\n")
        return False


@contextlib.contextmanager
def step_output(log_path: Path) -> Iterator[StepLines]:
    """While a pipeline runs here: this process's stdout (where kfp logs) is copied to the log
    file, kfp's listings go to the file only; yields the router for the steps' lines."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    console = sys.stdout
    root = logging.getLogger()
    with open(log_path, "w", encoding="utf-8") as log, warnings.catch_warnings():
        # Our steps run in the venv, whatever base image the compiled YAML names for a cluster.
        warnings.filterwarnings("ignore", message="You may be attemping to run a task")
        # Resources, GPUs and names are for a cluster; kfp warns that they do nothing here.
        warnings.filterwarnings("ignore", message=".*have no effect in the current local runner")
        listings = _KfpListings(log)
        root.addFilter(listings)
        tee = _Tee(console, log)
        try:
            with contextlib.redirect_stdout(tee):
                yield StepLines(console, log)
        finally:
            root.removeFilter(listings)
            tee.flush()


class _Tee(io.TextIOBase):
    def __init__(self, *streams: TextIO) -> None:
        self.streams = streams

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        for stream in self.streams:
            stream.write(text)
        return len(text)

    def flush(self) -> None:
        for stream in self.streams:
            stream.flush()
