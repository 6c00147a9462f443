"""The serving store on its own: URL resolution (a Secret file), migrations, retention."""

from __future__ import annotations

import time

import pytest

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


def style_round_trip(url: str) -> None:
    """The style answers' interface on one store: answer, score, rate, window;
    shared by the SQLite test here and the PostgreSQL one in tests/prod/test_store_postgres.py."""
    assert migrate(url) == store.HEAD
    db = ServingStore(url, "pod-a", "single", auto_migrate=False)
    other = ServingStore(url, "pod-b", "single", auto_migrate=False)  # another pod
    start = time.time() - 1
    db.style_answer("s" * 32, "stylize", "artflow-style-transfer", "3", "fast")
    db.style_answer("m" * 32, "monet", "artflow-monet-cyclegan", "1", "cyclegan")
    with pytest.raises(store.Duplicate):
        db.style_answer("s" * 32, "stylize", "artflow-style-transfer", "3", "fast")
    other.style_score("s" * 32, {"content_loss": 1.5, "style_loss": 0.25, "ssim": 0.5})
    rated = other.style_rating("m" * 32, 4)
    assert rated["rating"] == 4 and rated["model_version"] == "1"
    with pytest.raises(store.Duplicate):
        db.style_rating("m" * 32, 2)  # one rating per answer, from any pod
    with pytest.raises(ValueError, match="from 1 to 5"):
        db.style_rating("s" * 32, 6)
    with pytest.raises(store.UnknownAnswer):
        db.style_rating("u" * 32, 3)
    row = dict(variant="champion", model_name="c", model_version="1", family="cnn", artist="X")
    db.add_answer({**row, "id": "c" * 32})
    with pytest.raises(store.NotStyleAnswer, match="/feedback"):
        db.style_rating("c" * 32, 3)
    window = other.style_window(start)
    assert [r["answer_id"] for r in window] == ["s" * 32, "m" * 32]
    first, second = window
    assert first["scores"] == {"content_loss": 1.5, "style_loss": 0.25, "ssim": 0.5}
    assert first["rating"] is None and second["scores"] is None and second["rating"] == 4
    assert set(first) == {
        "answer_id",
        "at",
        "endpoint",
        "model_name",
        "model_version",
        "method",
        "scores",
        "rating",
    }
    only = db.style_window(start, model_name="artflow-monet-cyclegan")
    assert [r["endpoint"] for r in only] == ["monet"]
    assert db.style_window(time.time() + 60) == []
    counts = db.style_rating_counts()
    assert [(c["model_version"], c["n"], c["total"]) for c in counts] == [("1", 1, 4)]


def test_style_answers_scores_and_ratings_are_shared_by_pods(tmp_path):
    style_round_trip(f"sqlite:///{tmp_path / 's.db'}")


def test_style_answers_go_with_retention(tmp_path):
    url = f"sqlite:///{tmp_path / 's.db'}"
    migrate(url)
    db = ServingStore(url, "pod", "single", auto_migrate=False)
    db.style_answer("a" * 32, "stylize", "m", "1", "fast")
    db.style_answer("b" * 32, "stylize", "m", "1", "fast")
    old = time.time() - 3 * 86400
    db._run(
        lambda c: c.execute(
            store.style_answers.update()
            .where(store.style_answers.c.answer_id == "a" * 32)
            .values(at=old)
        )
    )
    assert db.prune(max_age_days=2)["style_answers"] == 1
    assert [r["answer_id"] for r in db.style_window(0)] == ["b" * 32]


def test_a_store_down_raises_unavailable_for_style_answers():
    down = ServingStore("postgresql://nobody@127.0.0.1:1/none", "p", "single")
    with pytest.raises(store.StoreUnavailable):
        down.style_answer("a" * 32, "stylize", "m", "1", "fast")
    with pytest.raises(store.StoreUnavailable):
        down.style_rating("a" * 32, 3)
