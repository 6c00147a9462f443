"""The models the service holds: from the Bento it was built into, or from the MLflow registry.

Two sources, named in /status (`model_source`) and in the log at start-up:
- "bento": a Bento built by `artflow bento build` carries the promoted versions in its own
  model store (aliases `classifier-champion`, `classifier-challenger`, `stylizer`, `monet`;
  see artflow.serve.bento). What a container serves is fixed when the Bento is built, and
  it starts without reaching MLflow.
- "registry" (the local default, `artflow serve`): the service resolves the registry's
  aliases at start-up and on POST /admin/reload.
Either way the `.keras` file is loaded in Keras' safe mode and artifacts carrying pickles or
code are refused (artflow.registry.safe_load).

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
from pathlib import Path
from typing import Any

import numpy as np

from artflow import families
from artflow.config import Settings
from artflow.errors import ModelError, RegistryUnavailable
from artflow.registry import tracking
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


def _runner(loaded: Any) -> Any:
    from artflow.serve.inference import ClassifierRunner

    runner = ClassifierRunner(loaded)
    runner.run([np.zeros((runner.size, runner.size, 3), np.float32)])  # warm up the graph
    return runner


def _load_classifier(version: str) -> Any:
    return _registry_loader(families.by_short("classifier"))(version)


def _registry_loader(declared: families.Model) -> Any:
    """version -> what a slot holds: the declared `load` of the models:/ URI (classifiers
    wrapped in a warmed-up runner)."""

    def load(version: str) -> Any:
        loaded = families.resolve(declared.load)(tracking.model_uri(declared.name, version))
        return _runner(loaded) if declared.kind == "classifier" else loaded

    return load


def _file_loader(declared: families.Model) -> Any:
    """(path, Bento metadata) -> what a slot holds, from the declared `load_file`."""

    def load(path: Path, meta: dict[str, Any]) -> Any:
        loaded = families.resolve(declared.load_file)(path, meta)
        return _runner(loaded) if declared.kind == "classifier" else loaded

    return load


def _slots() -> dict[str, tuple[families.Model, tuple[str, ...]]]:
    """slot key -> (declared model, aliases to try in order), from artflow.families: an A/B
    tested classifier has a slot per alias (`classifier:champion`), a style model one slot
    named by its short name that takes the first alias set."""
    out: dict[str, tuple[families.Model, tuple[str, ...]]] = {}
    for declared in families.models():
        if declared.kind == "classifier":
            out.update({f"{declared.short}:{a}": (declared, (a,)) for a in declared.aliases})
        elif declared.kind == "style":
            out[declared.short] = (declared, declared.aliases)
    return out


def specs() -> dict[str, tuple[str, tuple[str, ...], Any]]:
    """slot key -> (registered name, aliases to try in order, loader of a version)."""
    return {k: (d.name, aliases, _registry_loader(d)) for k, (d, aliases) in _slots().items()}


def bento_loaders() -> dict[str, Any]:
    """slot key -> loader of a .keras file from the Bento's model store (path, metadata)."""
    return {key: _file_loader(d) for key, (d, _) in _slots().items()}


def short_names() -> dict[str, str]:
    """registered name -> its short name (Bento labels, rollback, the CLI)."""
    return {d.name: d.short for d in families.models()}


def rollback_target(short: str) -> tuple[str, str]:
    """(registered name, slot key whose loader checks the version) of a served model."""
    declared = families.by_short(short)
    key = f"{short}:{CHAMPION}" if declared.kind == "classifier" else short
    return declared.name, key


REGISTRY, BENTO = "registry", "bento"


def bento_alias(key: str) -> str:
    """The Bento's model alias of a slot: `classifier:champion` -> `classifier-champion`."""
    return key.replace(":", "-")


def bento_models() -> dict[str, Any]:
    """slot key -> BentoML Model for the models the running Bento carries ({} outside one).

    BentoML resolves a Bento's model aliases (`models:` of its build file) only inside a
    served Bento, so a plain `artflow serve` from the source tree always gets {}.
    """
    try:
        import bentoml
        from bentoml.exceptions import NotFound
    except ImportError:
        return {}
    found = {}
    for key in specs():
        try:
            found[key] = bentoml.models.get(bento_alias(key))
        except (NotFound, ValueError):
            continue
    return found


class ModelSet:
    """Thread-safe registry view: `refresh()` loads what the aliases point at now."""

    def __init__(self, settings: Settings, bento: dict[str, Any] | None = None) -> None:
        self.settings = settings
        self.bento = bento_models() if bento is None else bento
        self.source = BENTO if self.bento else REGISTRY
        self.specs = specs()
        self.slots = {key: Slot(key=key, name=spec[0]) for key, spec in self.specs.items()}
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
            "model_source": self.source,
            "tracking_uri": tracking.tracking_uri() if self.source == REGISTRY else None,
            "models": {key: slot.describe() for key, slot in self.slots.items()},
        }

    # ------------------------------------------------------------------ loading
    def start_background_load(self) -> threading.Thread:
        thread = threading.Thread(target=self._first_load, name="artflow-model-load", daemon=True)
        thread.start()
        return thread

    def _first_load(self) -> None:
        # WARNING so that it shows in a BentoML worker's output, which prints only warnings
        # of loggers outside BentoML's own: where the models come from is what an operator
        # needs to see first.
        log.warning(
            "artflow models from %s%s",
            self.source,
            f" ({', '.join(str(m.tag) for m in self.bento.values())})"
            if self.bento
            else f" ({tracking.tracking_uri()})",
        )
        # TensorFlow and MLflow's Keras flavour take seconds to import: do it before asking
        # the registry, so a model promoted while the server starts loads without that wait.
        with self.registry_lock:
            try:
                _set_tf_threads(self.settings.serve)

                if self.source == REGISTRY:
                    import mlflow  # noqa: F401

                import artflow.classify.io  # noqa: F401
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
            for key, (name, aliases, loader) in self.specs.items():
                change = self._refresh_slot(self.slots[key], name, aliases, loader)
                if change:
                    changes[key] = change
            self.state = "ready" if self.ready else "failed"
            log.info("artflow models: %s; changes %s", self.state, changes or "none")
            return {"state": self.state, "changes": changes, **self.status()}

    def _refresh_slot(self, slot: Slot, name: str, aliases: tuple[str, ...], loader: Any):
        try:
            if self.source == BENTO:
                found = _resolve_bento(slot, self.bento)
                loader = _bento_loader(slot.key, self.bento)
            else:
                found = _resolve(slot, name, aliases)
        except RegistryUnavailable as exc:  # could not ask (not "no alias"): keep what we have
            kept = f"v{slot.version} kept" if slot.loaded else "nothing loaded"
            slot.error = f"registry lookup failed ({kept}): {exc.message}"
            log.warning("artflow: %s: %s", slot.key, slot.error)
            return {"error": slot.error}
        except Exception as exc:  # e.g. a pin the Bento cannot satisfy: keep what we have
            slot.error = f"registry lookup failed: {exc}"
            return {"error": slot.error}
        if not found:
            if slot.loaded:
                log.info("%s: alias %s removed; unloading v%s", slot.key, aliases, slot.version)
            change = {"from": slot.version, "to": None} if slot.version else None
            slot.model, slot.version, slot.alias = None, None, None
            slot.error = (
                f"not in this Bento (built without {name} {' or '.join(aliases)})"
                if self.source == BENTO
                else f"no version of {name} has alias {' or '.join(aliases)}"
            )
            return change
        alias, mv = found[0]
        version = str(mv.version)
        if slot.loaded and slot.version == version:
            slot.alias, slot.error = alias, None
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
        mv = tracking.model_version(name, pinned)
        if mv is None:
            raise ModelError(f"{PIN_ENV}={pinned} but {name} has no version {pinned}")
        return [(f"v{pinned} ({PIN_ENV})", mv)]
    return [(a, mv) for a in aliases if (mv := tracking.alias_version(name, a))]


@dataclass(frozen=True)
class BentoVersion:
    """What `_refresh_slot` needs of a version carried by the Bento (like a ModelVersion)."""

    version: str
    model: Any  # bentoml Model


def _resolve_bento(slot: Slot, carried: dict[str, Any]) -> list[tuple[str, Any]]:
    """The Bento's model for a slot; a pinned version picks among the carried classifiers."""
    pinned = os.environ.get(PIN_ENV, "").strip()
    if pinned and slot.key.startswith("classifier:"):
        if slot.key != f"classifier:{CHAMPION}":
            return []
        for key in (f"classifier:{CHAMPION}", f"classifier:{CHALLENGER}"):
            model = carried.get(key)
            if model is not None and model.info.labels.get("registry_version") == pinned:
                return [(f"v{pinned} ({PIN_ENV}, bento)", BentoVersion(pinned, model))]
        raise ModelError(
            f"{PIN_ENV}={pinned} but this Bento carries no classifier v{pinned}",
            "build a Bento with that version (artflow bento build) or unset the pin",
        )
    model = carried.get(slot.key)
    if model is None:
        return []
    version = model.info.labels.get("registry_version", str(model.tag.version))
    alias = f"{model.info.labels.get('registry_alias', 'bento')} (bento)"
    return [(alias, BentoVersion(version, model))]


def _bento_loader(key: str, carried: dict[str, Any]) -> Any:
    def load(version: str) -> Any:
        model = carried[key]
        if key.startswith("classifier:") and os.environ.get(PIN_ENV, "").strip():
            model = next(
                m
                for k, m in carried.items()
                if k.startswith("classifier:") and m.info.labels.get("registry_version") == version
            )
        meta = dict(model.info.metadata)
        return bento_loaders()[key](Path(model.path_of(meta.get("file", "model.keras"))), meta)

    return load


def _set_tf_threads(serve: Any) -> None:
    """TensorFlow's intra-/inter-op pools as serve.tf_*_threads say (0 = TensorFlow's default);
    only possible before TensorFlow runs its first operation, hence here, at start-up."""
    import tensorflow as tf

    if serve.tf_intra_op_threads:
        tf.config.threading.set_intra_op_parallelism_threads(serve.tf_intra_op_threads)
    if serve.tf_inter_op_threads:
        tf.config.threading.set_inter_op_parallelism_threads(serve.tf_inter_op_threads)
