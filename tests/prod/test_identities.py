"""Who may do what on the rehearsal's MLflow server (`--app-name artflow` on PostgreSQL,
tests/prod/conftest.py; docs/deploy.md, "Identities"), and the registry lock where it lives
in production: in the server, next to PostgreSQL.

Each identity is this process with that identity's credentials, over HTTP; a refusal must
read "not allowed: <identity> may not <action>", never "not set" or "could not ask".
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from artflow import promote
from artflow.errors import NotAllowed
from artflow.registry import identities, tracking
from artflow.registry.locks import LOST, LockConflict

pytestmark = [pytest.mark.prod]


@pytest.fixture(scope="module")
def model(prod_env) -> str:
    """A registered model of its own (EDIT for pipeline and gate), with one version."""
    if not prod_env.mlflow.running:
        prod_env.mlflow.start()
    name = f"artflow-identities-{uuid.uuid4().hex[:6]}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_USERNAME", "admin")
        mp.setenv("MLFLOW_TRACKING_PASSWORD", "rehearsal-admin-password")
        # the users exist already (their passwords are kept); what is new is the grants
        editors = {k: prod_env.passwords[k] for k in identities.EDITORS}
        identities.bootstrap(prod_env.mlflow.url, editors, models=(name,))
    return name


@pytest.fixture
def as_identity(prod_env, monkeypatch) -> Iterator:
    def become(name: str | None) -> None:
        env = prod_env.identity(name) if name else {}
        for key in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
            monkeypatch.delenv(key, raising=False)
        monkeypatch.delenv("MLFLOW_TRACKING_PASSWORD_FILE", raising=False)
        for key, value in env.items():
            monkeypatch.setenv(key, value)

    yield become


def test_anonymous_requests_get_401(prod_env, as_identity):
    url = f"{prod_env.mlflow.url}/api/2.0/mlflow/registered-models/search"
    assert httpx.get(url, timeout=10).status_code == 401
    as_identity(None)
    with pytest.raises(NotAllowed, match="not allowed: anonymous may not read") as err:
        tracking.alias_version(tracking.CLASSIFIER, tracking.CHAMPION)
    assert err.value.exit_code == 4 and "could not be asked" not in str(err.value)


def test_each_identity_may_do_its_part_and_no_more(prod_env, model, as_identity, capsys):
    from mlflow.exceptions import MlflowException

    from artflow.cli import run as cli

    as_identity("pipeline")
    client = tracking.client()
    client.create_registered_model(model)
    version = str(client.create_model_version(model, "s3://artflow/identities/v1").version)
    tracking.mark_challenger(model, version)  # pipeline: register, set challenger
    with pytest.raises(NotAllowed, match=f"pipeline may not set alias champion of {model}"):
        tracking.set_alias(model, tracking.CHAMPION, version)
    for direct in (  # MLflow's own endpoints, around the lock: 403 as well
        lambda: client.set_registered_model_alias(model, tracking.CHAMPION, version),
        lambda: client.set_registered_model_tag(model, promote.HISTORY_TAG, f'["{version}"]'),
    ):
        with pytest.raises(MlflowException) as err:
            direct()
        assert err.value.error_code == "PERMISSION_DENIED"

    as_identity("serving")  # read only
    assert str(tracking.alias_version(model, tracking.CHALLENGER).version) == version
    # MLflow answers 403 for a model that does not exist: still "not set", not "not allowed"
    assert tracking.alias_version(f"{model}-none", tracking.CHAMPION) is None
    with pytest.raises(NotAllowed, match="serving may not take the registry lock"):
        tracking.set_alias(model, tracking.CHALLENGER, version)
    with pytest.raises(MlflowException) as err:
        tracking.client().set_registered_model_alias(model, "best-cnn", version)
    assert err.value.error_code == "PERMISSION_DENIED"
    capsys.readouterr()
    assert cli(["rollback", model]) == 4  # the command says so, in one line
    assert f"not allowed: serving may not take the registry lock {model}" in capsys.readouterr().err

    as_identity("drift")  # reads, and takes the retrain lock; moves nothing
    with tracking.registry_lock(f"{model}.retrain"):
        pass
    with pytest.raises(NotAllowed, match="drift may not set alias champion"):
        tracking.set_alias(model, tracking.CHAMPION, version)

    as_identity("gate")  # the only one that moves champion
    promote._move_champion(model, version, expected=None)
    assert prod_env.champion_in_db(model) == version
    assert promote.history(model) == [version]
    assert tracking.alias_version(model, tracking.CHALLENGER) is None  # it became champion


def test_the_lock_on_postgres_fences_a_holder_past_its_lease(prod_env, model, as_identity):
    as_identity("gate")
    backend = tracking.lock_backend()
    versions = [str(v.version) for v in tracking.search_versions(model)]
    stale = backend.acquire(model, "a gate that stalls", 0.5)  # never renewed: it stalls
    started = time.monotonic()
    with tracking.registry_lock(model, wait_s=10) as second:
        assert time.monotonic() - started <= 0.5 + 2 * tracking.LOCK_POLL_S  # the bound
        assert second.fence == stale["fence"] + 1
        with pytest.raises(LockConflict) as err:  # the stale holder's move: refused
            backend.set_alias(model, stale["token"], tracking.CHAMPION, "1", None, False)
        assert err.value.code == LOST
        assert backend.release(model, stale["token"]) is False  # and its release: a no-op
        rows = prod_env.postgres.query(
            "select fence, holder from artflow_registry_locks where name = %s", model
        )
        assert rows[0][0] == second.fence and rows[0][1].startswith("gate (gate@")
    assert prod_env.champion_in_db(model) == versions[-1]  # unchanged by the stale holder
