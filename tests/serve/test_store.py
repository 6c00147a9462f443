"""The serving store on its own: URL resolution (a Secret file), migrations, retention."""

from __future__ import annotations

import time

from artflow.serve import store
from artflow.serve.store import ServingStore, migrate, resolve_url


def test_the_url_comes_from_the_env_a_secret_file_or_beside_the_log(tmp_path, monkeypatch):
    monkeypatch.delenv(store.URL_ENV, raising=False)
    monkeypatch.delenv(store.URL_FILE_ENV, raising=False)
    assert resolve_url("", tmp_path / "preds") == f"sqlite:///{tmp_path / 'serving.db'}"
    secret = tmp_path / "url"
    secret.write_text("postgresql://u:secret@db:5432/s\n")
    monkeypatch.setenv(store.URL_FILE_ENV, str(secret))
    url = resolve_url("", tmp_path / "preds")
    assert url == "postgresql://u:secret@db:5432/s" and "secret" not in store.masked(url)
    monkeypatch.setenv(store.URL_ENV, "sqlite:////tmp/x.db")
    assert resolve_url("", tmp_path) == "sqlite:////tmp/x.db"


def test_migrations_are_idempotent_and_retention_deletes_by_age(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    assert migrate(url) == store.HEAD and migrate(url) == store.HEAD
    db = ServingStore(url, "pod", "single", auto_migrate=False)
    old, new = "a" * 32, "b" * 32
    row = dict(variant="champion", model_name="m", model_version="1", family=None, artist="X")
    db.add_answer({**row, "id": old, "created": time.time() - 3 * 86400})
    db.add_answer({**row, "id": new})
    deleted = db.prune(max_age_days=2)
    assert deleted["answers"] == 1
    assert db.answer(old) is None and db.answer(new) is not None
