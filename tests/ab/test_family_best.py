"""The gate records each family's best version that met the absolute thresholds."""

from __future__ import annotations

from dataclasses import dataclass

import pytest


@dataclass
class Check:
    name: str
    passed: bool


def _checks(fail: str | None = None, champion_fail: bool = True) -> list[Check]:
    checks = [Check(n, n != fail) for n in ("accuracy", "macro_f1", "latency_ms", "model_size_mb")]
    return [*checks, Check("accuracy_vs_champion", not champion_fail)]


def test_best_of_each_family_moves_only_on_absolute_passes_and_better_accuracy() -> None:
    from artflow.classify import best as family_best
    from artflow.registry import tracking

    client = tracking.client()
    name = "test-families-classifier"
    client.create_registered_model(name)
    versions = {}
    for key, family in (("c1", "cnn"), ("c2", "cnn"), ("c3", "cnn"), ("r1", "resnet50")):
        mv = client.create_model_version(name, "file:///nonexistent", tags={"family": family})
        versions[key] = str(mv.version)

    # passes the absolute checks (though not the champion comparison): recorded
    assert family_best.record(name, versions["c1"], _checks(), 0.60) == "best-cnn"
    # a failed absolute check: never recorded, whatever its accuracy
    assert family_best.record(name, versions["c2"], _checks(fail="latency_ms"), 0.90) is None
    # less accurate than the current best: not recorded
    assert family_best.record(name, versions["c3"], _checks(), 0.55) is None
    assert str(family_best.best_version(name, "cnn").version) == versions["c1"]
    assert family_best.record(name, versions["c3"], _checks(), 0.61) == "best-cnn"
    assert str(family_best.best_version(name, "cnn").version) == versions["c3"]
    assert family_best.best_version(name, "resnet50") is None
    family_best.record(name, versions["r1"], _checks(), 0.1)
    assert str(family_best.best_version(name, "resnet50").version) == versions["r1"]
    with pytest.raises(ValueError, match="unknown family"):
        family_best.best_version(name, "vit")
