"""Capture what reaches the `artflow` logger's handlers in this process (it does not propagate,
so pytest's caplog does not see it)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, str, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append((record.levelname, record.name, record.getMessage()))


@contextmanager
def artflow_records() -> Iterator[list[tuple[str, str, str]]]:
    """(level, logger, message) of every artflow record emitted inside the block."""
    handler = Records()
    logger = logging.getLogger("artflow")
    logger.addHandler(handler)
    try:
        yield handler.seen
    finally:
        logger.removeHandler(handler)
