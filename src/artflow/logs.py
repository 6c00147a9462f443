"""Logging for the library: one `artflow` logger, configured once by the entry point.

Library modules log through `logging.getLogger(__name__)`; only the CLI prints. The entry point
(the CLI's callback, or a pipeline step through `stages.begin`) calls `configure()`:
  - rich:  Rich's handler, the default when stderr is a terminal;
  - plain: `LEVEL name: message` lines, the default otherwise (pipeline steps, CI, pipes);
  - json:  one JSON object per line, for log collectors.
The format and level come from the CLI's `--log-format`/`--log-level`, else from the
environment (ARTFLOW_LOG_FORMAT, ARTFLOW_LOG_LEVEL), read here and nowhere else.

The handler sits on the `artflow` logger, which does not propagate: kfp's executor configures
the root logger (INFO, `[KFP Executor ...]` prefix), whose lines the local runner keeps in its
log file only (pipelines/local_log.py), so artflow's lines must not go through it; nor should
they appear twice.
"""

from __future__ import annotations

import enum
import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import TypeVar

ROOT = "artflow"
ENV_FORMAT = "ARTFLOW_LOG_FORMAT"
ENV_LEVEL = "ARTFLOW_LOG_LEVEL"
_HANDLER = "artflow-handler"
E = TypeVar("E", bound=enum.Enum)


class LogFormat(enum.StrEnum):
    auto = "auto"
    rich = "rich"
    plain = "plain"
    json = "json"


class LogLevel(enum.StrEnum):
    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"


class JsonFormatter(logging.Formatter):
    """One JSON object per record. Written here: the standard library has none, and a logging
    dependency (structlog, python-json-logger) would be more code to wire than these lines."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at emit time (pytest and kfp swap it after setup)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def resolve_format(fmt: LogFormat | str | None = None) -> LogFormat:
    """The explicit choice, else ARTFLOW_LOG_FORMAT, else rich on a terminal and plain lines."""
    chosen = _choice(LogFormat, fmt, ENV_FORMAT, LogFormat.auto)
    if chosen is LogFormat.auto:
        return LogFormat.rich if sys.stderr.isatty() else LogFormat.plain
    return chosen


def resolve_level(level: LogLevel | str | None = None) -> int:
    """The explicit level, else ARTFLOW_LOG_LEVEL, else INFO."""
    return logging.getLevelName(_choice(LogLevel, level, ENV_LEVEL, LogLevel.info).value.upper())


def _choice(kind: type[E], given: E | str | None, env: str, default: E) -> E:
    value = given if given is not None else os.environ.get(env, "").strip().lower()
    if not value:
        return default
    try:
        return kind(value)
    except ValueError:
        from artflow.errors import ConfigError

        names = ", ".join(m.value for m in kind)
        raise ConfigError(f"{env}={value!r} is not a log setting", f"use one of {names}") from None


def _handler(fmt: LogFormat) -> logging.Handler:
    if fmt is LogFormat.rich:
        from rich.console import Console
        from rich.logging import RichHandler

        return RichHandler(console=Console(stderr=True), show_path=False, markup=False)
    handler = _StderrHandler()
    if fmt is LogFormat.json:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    return handler


def configure(
    fmt: LogFormat | str | None = None, level: LogLevel | str | None = None
) -> logging.Logger:
    """(Re)configure the `artflow` logger; called by the entry point."""
    logger = logging.getLogger(ROOT)
    for old in [h for h in logger.handlers if h.get_name() == _HANDLER]:
        logger.removeHandler(old)
    handler = _handler(resolve_format(fmt))
    handler.set_name(_HANDLER)
    logger.addHandler(handler)
    logger.setLevel(resolve_level(level))
    logger.propagate = False
    return logger


def ensure_configured() -> logging.Logger:
    """configure() from the environment unless an entry point already did (pipeline steps)."""
    logger = logging.getLogger(ROOT)
    if any(h.get_name() == _HANDLER for h in logger.handlers):
        return logger
    return configure()
