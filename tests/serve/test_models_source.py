"""Where the service's models come from: the registry (a reload while it cannot be asked keeps
what serves) or the Bento (see test_bento.py for a built Bento over HTTP)."""

from __future__ import annotations


def test_a_reload_while_the_registry_cannot_be_asked_keeps_the_models(
    serve_models, smoke_settings, monkeypatch
):
    from artflow.serve.models import REGISTRY, ModelSet

    models = ModelSet(smoke_settings, bento={})  # {}: not inside a Bento
    models.refresh()
    assert models.ready and models.source == REGISTRY
    assert models.status()["model_source"] == "registry"
    champion = models.classifier("champion")
    version = champion.version
    assert version == serve_models["v2"] and champion.error is None
    # A registry server that does not answer is "could not ask", not "no champion".
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    out = models.refresh()
    assert out["state"] == "ready" and models.ready
    assert champion.loaded and champion.version == version
    assert "registry lookup failed" in champion.error and f"v{version} kept" in champion.error
    monkeypatch.undo()
    models.refresh()
    assert champion.error is None and champion.version == version
