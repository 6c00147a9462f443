"""`mlflow server --app-name artflow`: MLflow's basic-auth app plus the registry lock and the
rules its per-model permissions cannot express (docs/deploy.md, "Identities").

MLflow's permissions are per registered model (READ < EDIT < MANAGE) and the creator of a
model gets MANAGE on it: "may register versions and set `challenger`" and "may set
`champion`" are the same permission there. This app adds, in front of MLflow's handlers:

- the lock and fenced-write routes (`/api/2.0/artflow/...`, artflow.registry.locks), run
  next to the database so that the champion moves as a compare-and-swap;
- MLflow's own alias endpoints refuse every non-admin (403): aliases are written only
  through the fenced route, so no writer can skip the lock;
- `champion` (set or delete) and the champion's history tags only for the identities in
  `champion_writers`; the lock only for those in `lock_holders`; other aliases and tags need
  EDIT on the model in MLflow's permission store.

The identities come from the `[artflow]` section of the auth config file
(MLFLOW_AUTH_CONFIG_PATH, the same file as MLflow's `[mlflow]` section); admins pass every
check, as in MLflow. Only the pinned mlflow (3.17) is known to expose the hooks used here.
"""

from __future__ import annotations

import configparser
import os
from collections.abc import Callable
from typing import Any

from artflow.registry.locks import LockConflict, LockStore

PREFIX = "/api/2.0/artflow"
ROUTES = {
    "acquire": f"{PREFIX}/locks/acquire",
    "renew": f"{PREFIX}/locks/renew",
    "release": f"{PREFIX}/locks/release",
    "alias": f"{PREFIX}/registry/alias",
    "tag": f"{PREFIX}/registry/tag",
}
CHAMPION = "champion"
# artflow.promote's HISTORY_TAG and LOG_TAG: what `rollback` restores from
PROTECTED_TAGS = frozenset({"champion_history", "champion_log"})


def identities() -> dict[str, frozenset[str]]:
    """`champion_writers` and `lock_holders` of the auth config's [artflow] section."""
    parser = configparser.ConfigParser()
    path = os.environ.get("MLFLOW_AUTH_CONFIG_PATH")
    if path:
        parser.read(path)
    section = parser["artflow"] if parser.has_section("artflow") else {}

    def names(key: str) -> frozenset[str]:
        return frozenset(n.strip() for n in section.get(key, "").split(",") if n.strip())

    return {"champion_writers": names("champion_writers"), "lock_holders": names("lock_holders")}


def create_app(app: Any = None) -> Any:
    """MLflow's basic-auth app (its users, permission store and checks) with artflow's
    routes and rules; the factory `mlflow server --app-name artflow` calls."""
    from mlflow.server import app as flask_app
    from mlflow.server import auth

    flask_app = app or flask_app
    _add_routes(flask_app)
    _add_rules(auth)
    return auth.create_app(flask_app)


# --------------------------------------------------------------------------- rules
def _user() -> str:
    from mlflow.server.auth import authenticate_request

    return authenticate_request().username


def _body() -> dict[str, Any]:
    from flask import request

    body = request.get_json(silent=True)
    return body if isinstance(body, dict) else {}


def _in(role: str) -> bool:
    return _user() in identities()[role]


def _may_edit(name: str) -> bool:
    from mlflow.server.auth import _get_registered_model_permission

    return bool(name) and _get_registered_model_permission(name).can_update


def _lock_validator() -> bool:
    return _in("lock_holders")


def _alias_validator() -> bool:
    body = _body()
    if body.get("alias") == CHAMPION:
        return _in("champion_writers")
    return _in("lock_holders") and _may_edit(str(body.get("name") or ""))


def _tag_validator() -> bool:
    body = _body()
    if body.get("key") in PROTECTED_TAGS:
        return _in("champion_writers")
    return _in("lock_holders") and _may_edit(str(body.get("name") or ""))


def _guard_tags(existing: Callable[[], bool]) -> Callable[[], bool]:
    """MLflow's check of a registered-model tag write, plus: the champion's history tags
    only for champion writers."""

    def validator() -> bool:
        from mlflow.server.auth import _get_request_param

        try:
            key = _get_request_param("key")
        except Exception:  # no key: MLflow's own handler answers 400
            key = None
        if key in PROTECTED_TAGS and not _in("champion_writers"):
            return False
        return existing()

    return validator


def _refuse() -> bool:
    return False  # aliases go through the fenced route; admins never reach a validator


def _add_rules(auth: Any) -> None:
    from mlflow.protos.model_registry_pb2 import (
        DeleteRegisteredModelAlias,
        DeleteRegisteredModelTag,
        SetRegisteredModelAlias,
        SetRegisteredModelTag,
    )
    from mlflow.server.handlers import get_endpoints

    validators = auth.BEFORE_REQUEST_VALIDATORS
    for path, cls, methods in get_endpoints(lambda cls: cls):
        for method in methods:
            key = (path, method)
            if cls in (SetRegisteredModelAlias, DeleteRegisteredModelAlias):
                validators[key] = _refuse
            elif (
                cls in (SetRegisteredModelTag, DeleteRegisteredModelTag)
                and key in validators
                and not getattr(validators[key], "artflow", False)  # wrapped once
            ):
                validators[key] = _guard_tags(validators[key])
                validators[key].artflow = True  # type: ignore[attr-defined]
    for route in ("acquire", "renew", "release"):
        validators[(ROUTES[route], "POST")] = _lock_validator
    validators[(ROUTES["alias"], "POST")] = _alias_validator
    validators[(ROUTES["tag"], "POST")] = _tag_validator


# --------------------------------------------------------------------------- routes
def _locks() -> LockStore:
    from mlflow.server.handlers import _get_model_registry_store

    return LockStore(_get_model_registry_store())


def _error(status: int, code: str, message: str, **detail: Any) -> Any:
    from flask import jsonify

    response = jsonify({"error_code": code, "message": message, **detail})
    response.status_code = status
    return response


def _handle(fn: Callable[[dict[str, Any]], dict[str, Any]]) -> Callable[[], Any]:
    def view() -> Any:
        from flask import jsonify
        from mlflow.exceptions import MlflowException

        body = _body()
        try:
            return jsonify(fn(body))
        except LockConflict as exc:
            return _error(409, exc.code, exc.message, **exc.detail)
        except (KeyError, TypeError, ValueError) as exc:
            return _error(400, "INVALID_PARAMETER_VALUE", f"bad request: {exc}")
        except MlflowException as exc:
            return _error(exc.get_http_status_code(), exc.error_code, exc.message)

    view.__name__ = f"artflow_{fn.__name__}"
    return view


def _acquire(body: dict[str, Any]) -> dict[str, Any]:
    holder = f"{_user()} ({str(body.get('holder', ''))[:200]})"
    return _locks().acquire(str(body["name"]), holder, body.get("lease_s", 30))


def _renew(body: dict[str, Any]) -> dict[str, Any]:
    return {"lease_s": _locks().renew(str(body["name"]), str(body["token"]), body["lease_s"])}


def _release(body: dict[str, Any]) -> dict[str, Any]:
    return {"released": _locks().release(str(body["name"]), str(body["token"]))}


def _alias(body: dict[str, Any]) -> dict[str, Any]:
    version = body.get("version")
    _locks().set_alias(
        str(body["name"]),
        str(body["token"]),
        str(body["alias"]),
        None if version is None else str(version),
        expect=body.get("expect"),
        check=bool(body.get("check", False)),
    )
    return {}


def _tag(body: dict[str, Any]) -> dict[str, Any]:
    _locks().set_tag(str(body["name"]), str(body["token"]), str(body["key"]), str(body["value"]))
    return {}


def _add_routes(app: Any) -> None:
    handlers = {
        "acquire": _acquire,
        "renew": _renew,
        "release": _release,
        "alias": _alias,
        "tag": _tag,
    }
    for route, fn in handlers.items():
        if ROUTES[route] not in {r.rule for r in app.url_map.iter_rules()}:
            app.add_url_rule(ROUTES[route], view_func=_handle(fn), methods=["POST"])
