"""A pipeline runner for the trigger tests that starts nothing (artflow.monitor.trigger.Runner)."""

from __future__ import annotations

from typing import Any


class RecordingRunner:
    """Records the pipelines it is asked to start (the real local runner: test_trigger.py)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, name: str, **kwargs: Any) -> dict[str, Any]:
        self.calls.append((name, kwargs))
        return {"pipeline": name, "seconds": 0.1, "gates": {}}
