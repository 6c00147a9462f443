"""The best classifier of each model family, as recorded by the gate.

The web page lets a user pick "custom CNN" or "ResNet50" instead of the A/B router. The version
that answers is the family's best that passed the gate's absolute thresholds (accuracy,
macro-F1, latency, size: the checks that do not depend on the champion), by test accuracy.
The gate calls `record` for every classifier candidate it judges; the alias
`best-<family>` (e.g. `best-cnn`) points at the winner and the version carries the accuracy
it was judged on (tag `artflow.gate_accuracy`), so the choice is reproducible from the
registry alone and the service can show which version answered.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from artflow import families

log = logging.getLogger(__name__)

ABSOLUTE = ("accuracy", "macro_f1", "latency_ms", "model_size_mb")
ACCURACY_TAG = "artflow.gate_accuracy"


def alias(family: str) -> str:
    return f"best-{family}"


def record(name: str, version: str, checks: Iterable[Any], accuracy: float) -> str | None:
    """After a gate decision on `version`: move `best-<family>` to it when it passed every
    absolute check and is at least as accurate as the family's current best.

    `checks` are the gate's Check objects (name, passed). Returns the alias moved, or None.
    """
    from artflow.registry import tracking

    absolute = [c for c in checks if c.name in ABSOLUTE]
    if len(absolute) < len(ABSOLUTE) or not all(c.passed for c in absolute):
        return None
    client = tracking.client()
    mv = client.get_model_version(name, version)
    family = (mv.tags or {}).get("family")
    if family not in families.names("classifier"):  # declared in artflow.families
        return None
    client.set_model_version_tag(name, version, ACCURACY_TAG, f"{accuracy:.6f}")
    with tracking.registry_lock(name) as lock:  # compare and move as one step
        current = tracking.alias_version(name, alias(family))
        if current is not None and str(current.version) != str(version):
            best = float((current.tags or {}).get(ACCURACY_TAG, "-inf"))
            if best > accuracy:
                return None
        lock.set_alias(alias(family), version)
    log.info("%s: %s -> v%s (test accuracy %.4f)", name, alias(family), version, accuracy)
    return alias(family)


def best_version(name: str, family: str) -> Any | None:
    """The registered version behind `best-<family>`, or None."""
    from artflow.registry import tracking

    known = families.names("classifier")
    if family not in known:
        raise ValueError(f"unknown family {family!r}: choose one of {', '.join(known)}")
    return tracking.alias_version(name, alias(family))
