"""The identities of the MLflow server and what each may do (docs/deploy.md, "Identities").

MLflow's basic-auth app keeps users and per-model permissions in its own database; the
artflow app (artflow.registry.server) adds who may move `champion` and take the registry
lock from the `[artflow]` section of the same config file. `bootstrap` creates the users
and grants as the admin, idempotently: run it once after the server's first start and
again after adding a model family.

    python -m artflow.registry.identities http://mlflow:5000 /var/run/secrets/mlflow-identities

(one file per identity in that folder, named after it, holding its password; the admin's
own credentials in MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD(_FILE)).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from artflow import families
from artflow.registry import tracking

log = logging.getLogger(__name__)

# identity -> what it is for; the permissions below and in auth_config() make it so
ROLES = {
    "pipeline": "create runs, register versions, set `challenger` and `best-<family>`",
    "gate": "what pipeline may, and move `champion` and its history (the only one)",
    "serving": "read models and runs",
    "drift": "read models; log its own drift runs; take the retrain lock",
}
EDITORS = ("pipeline", "gate")  # EDIT on every registered model of artflow
CHAMPION_WRITERS = ("gate",)
LOCK_HOLDERS = ("pipeline", "gate", "drift")
MODELS = (
    families.CLASSIFIER,
    families.STYLIZER,
    families.CYCLEGAN,
    families.GATYS_SETTINGS,
)


def auth_config(database_uri: str, cache_s: int = 60) -> str:
    """The server's MLFLOW_AUTH_CONFIG_PATH file: MLflow's section and artflow's.

    READ by default: serving and drift read everything and write no model. The credential
    cache spares a PBKDF2 hash per request (hundreds per pipeline run); a changed password
    reaches the other workers within `cache_s`."""
    return (
        "[mlflow]\n"
        "default_permission = READ\n"
        f"database_uri = {database_uri}\n"
        "admin_username = admin\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        f"auth_cache_ttl_seconds = {cache_s}\n"
        "\n[artflow]\n"
        f"champion_writers = {', '.join(CHAMPION_WRITERS)}\n"
        f"lock_holders = {', '.join(LOCK_HOLDERS)}\n"
    )


def bootstrap(uri: str, passwords: dict[str, str], models: tuple[str, ...] = MODELS) -> None:
    """Create the users in `passwords` and grant the editors EDIT on `models`, as the admin
    this process is (MLFLOW_TRACKING_USERNAME); what exists already is left as it is."""
    from mlflow.exceptions import MlflowException
    from mlflow.server.auth.client import AuthServiceClient

    tracking.use_credentials()
    auth = AuthServiceClient(uri)

    def once(what: str, fn) -> None:  # noqa: ANN001 - a call of the auth client
        try:
            fn()
            log.info("created %s", what)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            log.info("%s exists", what)

    for user, password in passwords.items():
        try:
            auth.get_user(user)
            log.info("user %s exists", user)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
            once(f"user {user}", lambda u=user, p=password: auth.create_user(u, p))
    for user in (u for u in EDITORS if u in passwords):
        for model in models:
            once(
                f"EDIT on {model} for {user}",
                lambda u=user, m=model: auth.grant_user_permission(
                    u, "registered_model", m, "EDIT"
                ),
            )


def main(argv: list[str]) -> int:
    uri, folder = argv
    passwords = {
        name: (Path(folder) / name).read_text().strip()
        for name in ROLES
        if (Path(folder) / name).is_file()
    }
    bootstrap(uri, passwords)
    log.info("identities: %s at %s", ", ".join(sorted(passwords)), tracking.redacted(uri))
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    sys.exit(main(sys.argv[1:]))
