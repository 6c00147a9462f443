"""/classify?family=cnn|resnet50: the family's best gated version, loaded lazily.

The A/B slots (artflow.serve.models) stay as they are; a family slot is resolved from the
registry alias `best-<family>` on first use and again after an admin reload, and loaded only
when its version changed.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from artflow import families
from artflow.classify import best as family_best
from artflow.registry import tracking
from artflow.serve.models import Slot

log = logging.getLogger(__name__)


class FamilyUnavailable(LookupError):
    """No version of the family can answer; `status` is the HTTP status to send."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class FamilyModels:
    def __init__(self, loader: Any) -> None:
        self._loader = loader  # version -> ClassifierRunner (artflow.serve.models)
        self._lock = threading.Lock()
        self._slots: dict[str, Slot] = {}
        self._resolved: set[str] = set()

    def get(self, family: str) -> Slot:
        """The loaded slot of `family`; raises FamilyUnavailable (404 none recorded, 503)."""
        with self._lock:
            # one slot per classifier family declared in artflow.families, made on first use
            slot = self._slots.setdefault(
                family, Slot(key=f"family:{family}", name=tracking.CLASSIFIER)
            )
            if family not in self._resolved:
                self._refresh(family, slot)
            if not slot.loaded:
                status = 503 if slot.error and "failed" in slot.error else 404
                raise FamilyUnavailable(status, slot.error or f"no {family} classifier")
            return slot

    def _refresh(self, family: str, slot: Slot) -> None:
        try:
            mv = family_best.best_version(tracking.CLASSIFIER, family)
        except Exception as exc:  # registry unreachable: keep what is loaded
            slot.error = f"registry lookup failed: {exc}"
            return
        if mv is None:
            slot.model, slot.version, slot.alias = None, None, None
            alias = family_best.alias(family)
            slot.error = f"no {family} classifier has passed the gate yet (alias {alias})"
            self._resolved.add(family)
            return
        version = str(mv.version)
        if not (slot.loaded and slot.version == version):
            try:
                model = self._loader(version)
            except Exception as exc:  # noqa: BLE001 - keep the old version rather than nothing
                slot.error = f"loading {family} v{version} failed: {exc}"
                log.exception("artflow: %s", slot.error)
                return
            slot.model, slot.version = model, version
        slot.alias, slot.error = family_best.alias(family), None
        self._resolved.add(family)

    def clear(self) -> None:
        """Re-resolve every family on its next request (admin reload)."""
        with self._lock:
            self._resolved.clear()

    def status(self) -> dict[str, Any]:
        """Every declared classifier family, loaded or not."""
        return {
            f: (self._slots.get(f) or Slot(key=f"family:{f}", name=tracking.CLASSIFIER)).describe()
            for f in families.names("classifier")
        }
