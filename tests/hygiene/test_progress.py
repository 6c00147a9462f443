"""Long loops report progress: a Rich bar on a terminal, INFO lines in logs otherwise."""

from __future__ import annotations

import io
import logging
import sys

import pytest

from artflow.progress import progress


@pytest.fixture
def lines():
    """The INFO lines artflow.progress logs, as text."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("artflow.progress")
    saved = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield lambda: stream.getvalue().splitlines()
    logger.removeHandler(handler)
    logger.setLevel(saved)


def test_off_a_terminal_a_line_per_quarter(lines, monkeypatch) -> None:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    assert list(progress(iter(range(1000)), 1000, "copying images")) == list(range(1000))
    assert lines() == [
        f"copying images: {p}% ({n}/1,000)"
        for p, n in ((25, 250), (50, 500), (75, 750), (100, "1,000"))
    ]


def test_short_loops_stay_silent(lines) -> None:
    items = list(range(10))
    assert progress(items, len(items), "probing images") is items
    assert lines() == []


def test_on_a_terminal_a_rich_bar_on_stderr(lines, monkeypatch, capsys) -> None:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert list(progress(range(600), 600, "extracting archive.zip")) == list(range(600))
    assert lines() == [] and capsys.readouterr().out == ""
