"""The local runner's console output: everything to a log file, the useful part to the terminal.

kfp's SubprocessRunner streams each step with the executor's INFO logging switched on, so a run
prints every step's full executor-input JSON and every INFO line of the libraries it imports
(Great Expectations alone writes ~200 per step). kfp has no setting for this, hence a filter on
stdout: the terminal keeps the task headers and statuses, artflow's own lines, Keras progress,
warnings, errors and tracebacks; the file keeps every line.
"""

from __future__ import annotations

import contextlib
import io
import re
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

_EXECUTOR_INFO = re.compile(r"^\s*\[KFP Executor [^\]]* INFO\]:")
_NOISE = (
    "Streamed logs:",
    "WARNING: All log messages before absl::InitializeLog()",
    "cpu_feature_guard.cc",
    "To enable the following instructions:",
    "Failed to resolve installed pip version",  # uv venvs have no pip; the image pins anyway
    "\u2501",  # "━" of Keras progress bars (MLflow's signature inference predicts with verbose on)
)


class QuietFilter(io.TextIOBase):
    """A text stream that writes whole lines to `log` and the kept ones to `console`."""

    def __init__(self, console: TextIO, log: TextIO) -> None:
        self.console, self.log = console, log
        self._partial = ""
        self._skip_block: str | None = None  # the line that ends the block being skipped
        self._blank = False

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.log.write(text)
        lines = (self._partial + text).split("\n")
        self._partial = lines.pop()
        for line in lines:
            if self.keep(line):
                self.console.write(line + "\n")
        return len(text)

    def flush(self) -> None:
        self.log.flush()
        self.console.flush()

    def keep(self, line: str) -> bool:
        if self._skip_block is not None:
            if line.rstrip() == self._skip_block or line.startswith("-----"):
                self._skip_block = None
                return line.startswith("-----")
            return False
        if "Got executor_input:" in line:
            self._skip_block = "    }"  # the JSON's closing brace, indented by kfp
            return False
        if re.search(r"Task .* outputs:\s*$", line):
            self._skip_block = ""  # the outputs block ends at the next separator
            return False
        if _EXECUTOR_INFO.match(line) or any(n in line for n in _NOISE):
            return False
        blank = not line.strip()
        keep = not (blank and self._blank)  # collapse runs of blank lines
        self._blank = blank
        return keep


@contextlib.contextmanager
def quiet_steps(log_path: Path, verbose: bool = False) -> Iterator[Path]:
    """Route stdout through QuietFilter (or only tee it, when verbose) while a pipeline runs."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    console = sys.stdout
    with open(log_path, "w", encoding="utf-8") as log, warnings.catch_warnings():
        # Our steps run in the venv, whatever base image the compiled YAML names for a cluster.
        warnings.filterwarnings("ignore", message="You may be attemping to run a task")
        stream = _Tee(console, log) if verbose else QuietFilter(console, log)
        with contextlib.redirect_stdout(stream):
            try:
                yield log_path
            finally:
                stream.flush()


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
