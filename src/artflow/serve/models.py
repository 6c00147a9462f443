"""The models the service holds, resolved from the MLflow registry by alias.

Loading happens in a background thread so the HTTP server is up at once: /livez answers
while models load, and /readyz turns 200 only when the classifier champion is in memory
(the one model every deployment must have). Optional models (a challenger, the stylizer,
the Monet generator) may be absent: their endpoints answer 503 "model not loaded" and the
rest works. A failure never kills the worker (BentoML would restart it forever,
docs/stack-notes.md); it is recorded and shown by /status, and POST /admin/reload retries.

Style models have no A/B test: the service uses their `champion`, falling back to their
`challenger` while none has been promoted yet.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from artflow import tracking
from artflow.config import Settings
from artflow.serve.router import CHALLENGER, CHAMPION

log = logging.getLogger("artflow.serve")

CLASSIFY, STYLIZE, MONET = "classify", "stylize", "monet"


@dataclass
class Slot:
    """One loaded model version (or the reason it is not loaded)."""

    key: str  # "classifier:champion", "stylizer", "monet"
    name: str  # registered model name
    alias: str | None = None  # the alias it was resolved from
    version: str | None = None
    model: Any = None
    error: str | None = None
    loaded_at: float | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def loaded(self) -> bool:
        return self.model is not None

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "alias": self.alias,
            "version": self.version,
            "loaded": self.loaded,
            "error": self.error,
        }


def _load_classifier(version: str) -> Any:
    from artflow.models.classifier_io import load_classifier
    from artflow.serve.inference import ClassifierRunner

    runner = ClassifierRunner(load_classifier(tracking.model_uri(tracking.CLASSIFIER, version)))
    runner.run([np.zeros((runner.size, runner.size, 3), np.float32)])  # warm up the graph
    return runner


def _load_stylizer(version: str) -> Any:
    from artflow.style.inference import load_stylizer

    return load_stylizer(tracking.model_uri(tracking.STYLIZER, version))


def _load_monet(version: str) -> Any:
    from artflow.style.inference import load_monet

    return load_monet(tracking.model_uri(tracking.CYCLEGAN, version))


# slot key -> (registered name, aliases to try in order, loader)
SPECS: dict[str, tuple[str, tuple[str, ...], Any]] = {
    f"classifier:{CHAMPION}": (tracking.CLASSIFIER, (CHAMPION,), _load_classifier),
    f"classifier:{CHALLENGER}": (tracking.CLASSIFIER, (CHALLENGER,), _load_classifier),
    "stylizer": (tracking.STYLIZER, (CHAMPION, CHALLENGER), _load_stylizer),
    "monet": (tracking.CYCLEGAN, (CHAMPION, CHALLENGER), _load_monet),
}


class ModelSet:
    """Thread-safe registry view: `refresh()` loads what the aliases point at now."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.slots = {key: Slot(key=key, name=spec[0]) for key, spec in SPECS.items()}
        self.state = "starting"  # starting | loading | ready | failed
        # Re-entrant: held across imports and registry calls. Two threads importing mlflow at
        # once can trip Python's import deadlock detection (its modules import each other).
        self.registry_lock = threading.RLock()

    # ------------------------------------------------------------------ queries
    @property
    def ready(self) -> bool:
        return self.slots[f"classifier:{CHAMPION}"].loaded

    def classifier(self, variant: str) -> Slot:
        return self.slots[f"classifier:{variant}"]

    def slot(self, key: str) -> Slot:
        return self.slots[key]

    def challenger_available(self) -> bool:
        challenger = self.slots[f"classifier:{CHALLENGER}"]
        champion = self.slots[f"classifier:{CHAMPION}"]
        # A challenger that is the champion's own version is no experiment.
        return challenger.loaded and challenger.version != champion.version

    def status(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "ready": self.ready,
            "tracking_uri": tracking.tracking_uri(),
            "models": {key: slot.describe() for key, slot in self.slots.items()},
        }

    # ------------------------------------------------------------------ loading
    def start_background_load(self) -> threading.Thread:
        thread = threading.Thread(target=self._first_load, name="artflow-model-load", daemon=True)
        thread.start()
        return thread

    def _first_load(self) -> None:
        # TensorFlow and MLflow's Keras flavour take seconds to import: do it before asking
        # the registry, so a model promoted while the server starts loads without that wait.
        with self.registry_lock:
            try:
                import mlflow.tensorflow  # noqa: F401
                import tensorflow  # noqa: F401

                import artflow.models.classifier_io  # noqa: F401
                import artflow.promote  # noqa: F401
                import artflow.style.inference  # noqa: F401
            except Exception:  # a broken import shows again, per model, in refresh()
                log.exception("artflow: pre-import failed")
            self.refresh()

    def refresh(self) -> dict[str, Any]:
        """Re-resolve every alias; load versions that changed, drop aliases that vanished."""
        with self.registry_lock:
            self.state = "loading"
            changes: dict[str, Any] = {}
            for key, (name, aliases, loader) in SPECS.items():
                change = self._refresh_slot(self.slots[key], name, aliases, loader)
                if change:
                    changes[key] = change
            self.state = "ready" if self.ready else "failed"
            log.info("artflow models: %s; changes %s", self.state, changes or "none")
            return {"state": self.state, "changes": changes, **self.status()}

    def _refresh_slot(self, slot: Slot, name: str, aliases: tuple[str, ...], loader: Any):
        try:
            found = _resolve(slot, name, aliases)
        except Exception as exc:  # the registry itself is unreachable: keep what we have
            slot.error = f"registry lookup failed: {exc}"
            return {"error": slot.error}
        if not found:
            if slot.loaded:
                log.info("%s: alias %s removed; unloading v%s", slot.key, aliases, slot.version)
            change = {"from": slot.version, "to": None} if slot.version else None
            slot.model, slot.version, slot.alias = None, None, None
            slot.error = f"no version of {name} has alias {' or '.join(aliases)}"
            return change
        alias, mv = found[0]
        version = str(mv.version)
        if slot.loaded and slot.version == version:
            slot.alias = alias
            return None
        started = time.perf_counter()
        try:
            model = loader(version)
        except Exception as exc:  # keep serving the old version rather than nothing
            slot.error = f"loading {name} v{version} failed: {exc}"
            log.exception("artflow: %s", slot.error)
            return {"error": slot.error}
        with slot.lock:
            old = slot.version
            slot.model, slot.version, slot.alias = model, version, alias
            slot.error, slot.loaded_at = None, time.time()
        seconds = time.perf_counter() - started
        log.info("artflow: loaded %s v%s (%s) in %.1f s", name, version, alias, seconds)
        return {"from": old, "to": version, "seconds": round(seconds, 2)}


# On a cluster each Deployment (champion, challenger) pins the one classifier version it
# serves, so the gate moving an alias never changes what an autoscaled pod loads before the
# rollout is approved; the weighted route between Deployments does the A/B split.
PIN_ENV = "ARTFLOW_CLASSIFIER_VERSION"


def _resolve(slot: Slot, name: str, aliases: tuple[str, ...]) -> list[tuple[str, Any]]:
    pinned = os.environ.get(PIN_ENV, "").strip()
    if pinned and name == tracking.CLASSIFIER:
        if slot.key != f"classifier:{CHAMPION}":
            return []
        return [(f"v{pinned} ({PIN_ENV})", tracking.client().get_model_version(name, pinned))]
    return [(a, mv) for a in aliases if (mv := tracking.alias_version(name, a))]
