"""The gate for style models compares the style metrics logged on each version's run."""

from __future__ import annotations

import pytest

from artflow.errors import GateFailed
from artflow.promote import promote
from artflow.registry import tracking


def _register(settings, name: str, metrics: dict[str, float]) -> str:
    """A registered version whose run logged these style metrics (the style helper's names)."""
    import mlflow

    with tracking.start_run("artflow-gate-tests", name, settings) as run:
        mlflow.log_metrics(metrics)
    client = tracking.client()
    if not client.search_registered_models(f"name='{name}'"):
        client.create_registered_model(name)
    mv = client.create_model_version(name, run.info.artifact_uri, run_id=run.info.run_id)
    client.set_model_version_tag(name, mv.version, "family", "adain")
    return str(mv.version)


@pytest.mark.parametrize("name", [tracking.STYLIZER, tracking.CYCLEGAN])
def test_style_gate(fresh_store, smoke_settings, tmp_path, name):
    from artflow.data.layout import Workdir

    wd = Workdir.at(tmp_path)
    base = {"style_loss": 2.0, "content_loss": 1.0, "ssim": 0.5, "cycle_l1": 0.3}
    v1 = _register(smoke_settings, name, base)
    first = promote(smoke_settings, wd, name, v1)
    assert first.promoted and {c.name for c in first.checks} >= {"style_loss_finite"}

    worse = _register(smoke_settings, name, {**base, "style_loss": 2.5})
    with pytest.raises(GateFailed, match="style_loss_vs_champion"):
        promote(smoke_settings, wd, name, worse)
    assert str(tracking.alias_version(name, "champion").version) == v1

    blurry = _register(smoke_settings, name, {**base, "ssim": 0.4})  # higher SSIM is better
    with pytest.raises(GateFailed, match="ssim_vs_champion"):
        promote(smoke_settings, wd, name, blurry)

    better = _register(smoke_settings, name, {**base, "style_loss": 1.5, "ssim": 0.6})
    assert promote(smoke_settings, wd, name, better).promoted
    assert str(tracking.alias_version(name, "champion").version) == better


def test_style_version_without_metrics_is_refused(fresh_store, smoke_settings, tmp_path):
    from artflow.data.layout import Workdir

    version = _register(smoke_settings, tracking.STYLIZER, {"loss": 1.0})
    decision = promote(
        smoke_settings, Workdir.at(tmp_path), tracking.STYLIZER, version, strict=False
    )
    assert not decision.passed and not decision.promoted
    assert tracking.alias_version(tracking.STYLIZER, "champion") is None
