"""What the endpoints record off the request's path: one prediction record per answer (the
drift features are computed here, not on the event loop) and each client's first A/B
assignment under the current share, both in one writer thread, in answer order."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from artflow.serve.endpoints.plumbing import Trimmer
from artflow.serve.predlog import PredictionLog
from artflow.serve.shared import SharedAdmin
from artflow.serve.store import ServingStore, StoreUnavailable
from artflow.serve.validation import DecodedImage

log = logging.getLogger("artflow.serve")

MAX_ASSIGNED = 100_000  # (key, experiment) pairs remembered; the oldest are forgotten


class Recorder:
    def __init__(
        self,
        predictions: PredictionLog,
        store: ServingStore,
        shared: SharedAdmin,
        trimmer: Trimmer,
    ) -> None:
        self.predictions, self.store, self.shared = predictions, store, shared
        self.trimmer = trimmer
        self.writer = ThreadPoolExecutor(1, thread_name_prefix="artflow-predlog")
        self._assigned: dict[tuple[str, str], None] = {}  # (key, experiment) recorded (ordered)

    def record(self, *args: Any, **extra: Any) -> None:
        """Log the prediction off the request's path: one writer thread, in answer order."""
        self.writer.submit(self._write_record, *args, **extra)

    def assignment(self, key: str, variant: str) -> None:
        """Record the A/B assignment of `key` off the request's path (once per share)."""
        self.writer.submit(self._record_assignment, key, variant)

    def _record_assignment(self, key: str, variant: str) -> None:
        """First assignment of `key` under the current share (its time stamp names the
        experiment) in the store's serving_assignments; each pod remembers what it sent."""
        experiment = f"share@{self.shared.applied.get('challenger_weight', 0.0):.6f}"
        if (key, experiment) in self._assigned:
            return
        try:
            self.store.assignment(key, experiment, variant)
        except StoreUnavailable:
            return  # recorded by a later answer
        self._assigned[(key, experiment)] = None
        while len(self._assigned) > MAX_ASSIGNED:  # bounded: the oldest are forgotten
            self._assigned.pop(next(iter(self._assigned)))

    def _write_record(
        self,
        endpoint: str,
        variant: str,
        name: str,
        version: str | None,
        latency_ms: float,
        image: DecodedImage,
        **extra: Any,
    ) -> None:
        from artflow.monitor.features import describe_image
        from artflow.monitor.records import PredictionRecord

        try:
            record = PredictionRecord(
                endpoint=endpoint,
                variant=variant,
                model_name=name,
                model_version=version or "",
                latency_ms=round(latency_ms, 2),
                image_format=image.format,
                image_mode=image.mode,
                features=describe_image(image.rgb),
                **{k: v for k, v in extra.items() if v is not None},
            )
            self.predictions.write(record)
        except Exception:  # the log must never fail a prediction that succeeded
            log.exception("artflow: writing the prediction log failed")
        self.trimmer.served()
