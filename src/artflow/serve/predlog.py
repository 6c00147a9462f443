"""The prediction log: one JSON line per answered request, read by drift monitoring.

Each record holds what drift needs and nothing a user uploaded: timestamp, endpoint, variant,
model name and version, predicted artist and confidence (classify), latency and the cheap
image statistics of `artflow.monitor.features.describe_image`. Rotation is the standard
library's RotatingFileHandler (size-based, `backups` old files kept as .1, .2, ...); it is
safe for the threads of one process, so the service runs one worker per log file.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import time
from pathlib import Path
from typing import Any

from artflow.config import PROJECT_ROOT

ENV_OVERRIDE = "ARTFLOW_PREDICTION_LOG"


def resolve_log_path(configured: str) -> Path:
    """ARTFLOW_PREDICTION_LOG if set, else the configured path (relative = project root)."""
    path = Path(os.environ.get(ENV_OVERRIDE) or configured).expanduser()
    return path if path.is_absolute() else PROJECT_ROOT / path


class PredictionLog:
    def __init__(self, path: str | Path, rotate_mb: float, backups: int = 5) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.handlers.RotatingFileHandler(
            self.path, maxBytes=int(rotate_mb * 2**20), backupCount=backups, encoding="utf-8"
        )
        handler.setFormatter(logging.Formatter("%(message)s"))
        # A private logger (unique name, no propagation) so records never reach BentoML's
        # console handlers and two logs in one process stay apart.
        self._logger = logging.getLogger(f"artflow.predictions.{id(self)}")
        self._logger.handlers[:] = [handler]
        self._logger.setLevel(logging.INFO)
        self._logger.propagate = False

    def write(self, endpoint: str, **fields: Any) -> dict[str, Any]:
        record = {"timestamp": _utc_now(), "endpoint": endpoint, **fields}
        self._logger.info(json.dumps(record, separators=(",", ":"), default=_plain))
        return record

    def close(self) -> None:
        for handler in self._logger.handlers:
            handler.close()
        self._logger.handlers.clear()


def _utc_now() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"


def _plain(value: Any) -> Any:
    """NumPy scalars and arrays -> Python numbers and lists for JSON."""
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def read_log(path: str | Path) -> list[dict[str, Any]]:
    """All records of a log file (not its rotated backups), skipping a torn last line."""
    out = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out
