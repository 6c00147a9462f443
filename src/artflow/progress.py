"""Progress of long loops: a Rich bar on a terminal, INFO log lines otherwise.

A pipeline step or CI job has no terminal, so a bar there would only be noise in the log; a few
`label: 50% (4,223/8,446)` lines say the same and show where a slow run is.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)
MIN_TOTAL = 500  # shorter loops finish before a bar would tell anything
LOG_EVERY = 0.25  # off a terminal: one line per quarter


def progress(items: Iterable[T], total: int, label: str, min_total: int = MIN_TOTAL) -> Iterable[T]:
    """`items`, reporting progress while they are consumed when there are at least `min_total`."""
    if total < min_total:
        return items
    if sys.stderr.isatty():
        from rich.console import Console
        from rich.progress import track

        return track(
            items, total=total, description=label, transient=True, console=Console(stderr=True)
        )
    return _logged(items, total, label)


def _logged(items: Iterable[T], total: int, label: str) -> Iterator[T]:
    step = max(1, int(total * LOG_EVERY))
    for done, item in enumerate(items, start=1):
        yield item
        if done % step == 0 or done == total:
            log.info(
                "%s: %d%% (%s/%s)", label, round(100 * done / total), f"{done:,}", f"{total:,}"
            )
