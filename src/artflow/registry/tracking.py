"""MLflow: tracking URI, experiments, lineage tags, model logging and the registry.

Every run is traceable (docs/conventions.md): tags carry the git commit, the data hash and the
profile; a registered model version points to its run. Heavy imports stay inside functions.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from artflow.config import PROJECT_ROOT, Settings
from artflow.errors import (
    AliasChanged,
    ConfigError,
    LockLost,
    ModelError,
    NotAllowed,
    RegistryUnavailable,
)
from artflow.families import CLASSIFIER, CYCLEGAN, STYLIZER  # noqa: F401 (re-exported)

if TYPE_CHECKING:
    import mlflow

log = logging.getLogger(__name__)
T = TypeVar("T")

# Registered model names are declared with the model families (artflow.families).
CHAMPION, CHALLENGER = "champion", "challenger"

# Requirements recorded with logged models; passing them skips MLflow's slow inference
# (docs/stack-notes.md).
PIP_REQUIREMENTS = ["tensorflow-cpu==2.21.0", "keras==3.15.1", "pillow", "numpy"]


_URI: dict[str, str] = {}  # set by use_tracking_uri: a pipeline step's `mlflow_uri` parameter


def use_tracking_uri(uri: str) -> None:
    """Point this process at `uri` (a step's parameter) without touching the environment."""
    if uri:
        _URI["uri"] = uri


def tracking_uri() -> str:
    """The step's `mlflow_uri`, else MLFLOW_TRACKING_URI, else the project's sqlite store."""
    return (
        _URI.get("uri")
        or os.environ.get("MLFLOW_TRACKING_URI")
        or f"sqlite:///{PROJECT_ROOT / 'mlflow.db'}"
    )


def artifact_root() -> str:
    """Where new experiments keep artifacts when the store is local (not cwd-relative)."""
    return os.environ.get("ARTFLOW_ARTIFACT_ROOT") or (PROJECT_ROOT / "mlartifacts").as_uri()


# MLflow's HTTP client retries 7 times with exponential back-off and waits 120 s per
# request by default: a dead server then takes minutes to notice. These defaults make it
# seconds (a refused connection ~3 s, a hung server ~30 s); an operator's own values win.
HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
}


def use_mlflow() -> str:
    """Point MLflow at `tracking_uri()` with short HTTP retries; returns the URI.

    MLflow reads its retry settings only from the environment, at each request, so they
    are set there (as defaults) and nowhere else."""
    import mlflow

    for key, value in HTTP_DEFAULTS.items():
        os.environ.setdefault(key, value)
    use_credentials()
    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    return uri


# --------------------------------------------------------------------------- identity
# The server knows each identity (docs/deploy.md, "Identities") by MLflow's own variables,
# which its client reads at every request. On a cluster they come from a mounted Secret:
# NAME_FILE names the file, read again each time (a rotated Secret is picked up).
CREDENTIAL_FILES = {
    "MLFLOW_TRACKING_USERNAME": "MLFLOW_TRACKING_USERNAME_FILE",
    "MLFLOW_TRACKING_PASSWORD": "MLFLOW_TRACKING_PASSWORD_FILE",
}


def use_credentials() -> None:
    """Set MLFLOW_TRACKING_USERNAME/PASSWORD from their *_FILE variants when given."""
    for var, file_var in CREDENTIAL_FILES.items():
        path = os.environ.get(file_var)
        if not path:
            continue
        try:
            os.environ[var] = Path(path).read_text().strip()
        except OSError as exc:
            raise ConfigError(
                f"{file_var}={path} cannot be read ({exc.strerror})",
                "mount the identity's Secret there or unset the variable",
            ) from exc


def identity() -> str:
    """Who this process is to the MLflow server (for messages): its username, or anonymous."""
    use_credentials()
    return os.environ.get("MLFLOW_TRACKING_USERNAME") or "anonymous"


DENIED_CODES = frozenset({"UNAUTHENTICATED", "PERMISSION_DENIED"})


def is_denied(exc: BaseException) -> bool:
    """True when the server answered 401/403: it was asked and said no."""
    return getattr(exc, "error_code", None) in DENIED_CODES


def is_refusal(exc: BaseException) -> bool:
    """A 401/403 from MLflow's client or from its artifact uploads (a requests HTTPError)."""
    status = getattr(getattr(exc, "response", None), "status_code", None)
    return is_denied(exc) or isinstance(exc, NotAllowed) or status in (401, 403)


def not_allowed(action: str) -> NotAllowed:
    who = identity()
    return NotAllowed(
        f"not allowed: {who} may not {action} (the MLflow server at {redacted_uri()} refused it)",
        "anonymous: set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD(_FILE)"
        if who == "anonymous"
        else "run this as the identity that may (docs/deploy.md, Identities)",
    )


def refused(exc: BaseException) -> NotAllowed:
    """NotAllowed for a 401/403 that MLflow raised on its own, naming the endpoint asked."""
    found = re.search(r"endpoint (\S+)", str(exc))
    return not_allowed(f"call {found.group(1)}" if found else "do this")


def client() -> mlflow.MlflowClient:
    import mlflow

    return mlflow.MlflowClient(use_mlflow())


def experiment(name: str) -> str:
    """Select (creating if needed) the experiment `name` and return its id."""
    import mlflow

    use_mlflow()
    exp = mlflow.get_experiment_by_name(name)
    if exp is None:
        location = None if tracking_uri().startswith(("http", "databricks")) else artifact_root()
        exp_id = _retry(lambda: mlflow.create_experiment(name, artifact_location=location))
    else:
        exp_id = exp.experiment_id
    mlflow.set_experiment(experiment_id=exp_id)
    return exp_id


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=5,
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def data_hash(paths: Sequence[str | Path]) -> str:
    """md5 over the given files (DVC's file hash is the same md5 of the content)."""
    digest = hashlib.md5()
    for path in sorted(Path(p) for p in paths):
        if path.is_file():
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def lineage_tags(settings: Settings, data_files: Sequence[str | Path] = ()) -> dict[str, str]:
    return {
        "artflow.git_commit": git_commit(),
        "artflow.data_hash": data_hash(data_files) if data_files else "none",
        "artflow.profile": settings.profile,
        **env_tags(),
        # who opened the run on an authenticated server (audit: a pipeline step `pipeline`,
        # the gate `gate`); never inherited through ARTFLOW_RUN_TAGS
        IDENTITY_TAG: identity(),
    }


IDENTITY_TAG = "artflow.identity"


RUN_TAGS_ENV = "ARTFLOW_RUN_TAGS"
# The Kubeflow run a pipeline step belongs to (components.common sets it on every step).
PIPELINE_RUN_ENV, PIPELINE_RUN_TAG = "ARTFLOW_PIPELINE_RUN", "artflow.pipeline_run"


def env_tags() -> dict[str, str]:
    """Tags for every run of this process and its child processes: a JSON object in
    ARTFLOW_RUN_TAGS. `artflow drift --act` sets it so that each run of the retrain pipeline
    it starts records why (artflow.trigger=drift and the drift report's location);
    retrain.yml sets artflow.retrain_run. On Kubeflow, ARTFLOW_PIPELINE_RUN adds the run id."""
    raw = os.environ.get(RUN_TAGS_ENV, "").strip()
    try:
        tags = json.loads(raw) if raw else {}
    except json.JSONDecodeError:
        tags = {}
    tags = {str(k): str(v) for k, v in tags.items()} if isinstance(tags, dict) else {}
    if pipeline_run := os.environ.get(PIPELINE_RUN_ENV, "").strip():
        tags[PIPELINE_RUN_TAG] = pipeline_run
    return tags


@contextlib.contextmanager
def start_run(
    experiment_name: str,
    run_name: str,
    settings: Settings,
    params: dict[str, Any] | None = None,
    data_files: Sequence[str | Path] = (),
    nested: bool = False,
    tags: dict[str, str] | None = None,
) -> Iterator[mlflow.ActiveRun]:
    """An MLflow run with lineage tags, the given params and the full settings as JSON."""
    import mlflow

    if not nested:
        experiment(experiment_name)
    all_tags = {**lineage_tags(settings, data_files), **(tags or {})}
    with mlflow.start_run(run_name=run_name, nested=nested, tags=all_tags) as run:
        if params:
            mlflow.log_params({k: _param(v) for k, v in params.items()})
        if not nested:
            mlflow.log_dict(settings.model_dump(by_alias=True), "settings.json")
        yield run


def _param(value: Any) -> str:
    return json.dumps(value) if isinstance(value, list | dict) else str(value)


def log_keras_model(
    model: Any,
    registered_name: str | None,
    input_example: Any = None,
    name: str = "model",
) -> Any:
    """Log a Keras 3 model (saved as model.keras) and register it when a name is given.

    Returns MLflow's ModelInfo; `registered_model_version` is set when registered.
    """
    import mlflow.tensorflow

    from artflow.registry.safe_load import no_pickled_custom_objects

    with no_pickled_custom_objects():  # loaders refuse artifacts that carry pickles
        info = _retry(
            lambda: mlflow.tensorflow.log_model(
                model,
                name=name,
                input_example=input_example,
                registered_model_name=registered_name,
                pip_requirements=PIP_REQUIREMENTS,
            )
        )
    return info


# --------------------------------------------------------------------------- registry reads
# MLflow raises the same MlflowException for "no such alias/version/run" and for "could not
# ask" (refused connection, timeout, 5xx after retries, 401/403, a locked sqlite database);
# only its error code tells them apart. Every registry read goes through `ask`, so that only
# a real "not set" can ever mean "no champion".
NOT_FOUND_CODES = frozenset({"RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"})


def is_not_found(exc: BaseException) -> bool:
    """True when MLflow answered "this does not exist" (as opposed to not answering)."""
    return getattr(exc, "error_code", None) in NOT_FOUND_CODES


def redacted(text: str) -> str:
    """`text` without the passwords of the URLs in it (it goes into errors and logs)."""
    return re.sub(r"//([^:/@\s]+):[^@/\s]+@", r"//\1:***@", text)


def redacted_uri(uri: str | None = None) -> str:
    return redacted(uri or tracking_uri())


def unavailable(what: str, exc: BaseException) -> RegistryUnavailable:
    first = (getattr(exc, "message", None) or str(exc) or type(exc).__name__).splitlines()[0]
    code = getattr(exc, "error_code", None) or type(exc).__name__
    return RegistryUnavailable(
        f"the MLflow registry at {redacted_uri()} could not be asked for {what} "
        f"({code}: {redacted(first)[:300]})",
        "nothing was decided or changed; check that the server is up and reachable "
        "(MLFLOW_TRACKING_URI, credentials) and run again",
    )


def ask(what: str, fn: Callable[[], T], model: str | None = None) -> T | None:
    """Call the registry: the answer, None when `what` is not set, RegistryUnavailable when
    the registry could not answer, NotAllowed when it refused.

    MLflow's auth answers 403, not 404, to a non-admin asking for an alias or version of a
    registered model that does not exist (so as not to tell what exists): with `model`
    given, a 403 is "not set" when that model itself is not found."""
    from mlflow.exceptions import MlflowException

    try:
        return fn()
    except MlflowException as exc:
        if is_not_found(exc):
            return None
        if is_denied(exc):
            if model is not None and _missing(model):
                return None
            raise not_allowed(f"read {what}") from exc
        raise unavailable(what, exc) from exc
    except (ModelError, RegistryUnavailable):
        raise
    except Exception as exc:  # requests/urllib3/SQLAlchemy errors that MLflow did not wrap
        raise unavailable(what, exc) from exc


def _missing(model_name: str) -> bool:
    """True only when the registry says there is no registered model `model_name`."""
    from mlflow.exceptions import MlflowException

    try:
        client().get_registered_model(model_name)
    except MlflowException as exc:
        return is_not_found(exc)
    except Exception:
        return False
    return False


def alias_version(model_name: str, alias: str) -> Any | None:
    """The ModelVersion behind `alias`, None when the alias is not set; RegistryUnavailable
    when the registry could not be asked."""
    return ask(
        f"alias {alias!r} of {model_name}",
        lambda: client().get_model_version_by_alias(model_name, alias),
        model_name,
    )


def model_version(model_name: str, version: str | int) -> Any | None:
    """The ModelVersion `version` of `model_name`, None when there is no such version."""
    return ask(
        f"version {version} of {model_name}",
        lambda: client().get_model_version(model_name, str(version)),
        model_name,
    )


def registered(model_name: str) -> Any | None:
    """The RegisteredModel `model_name`, None when nothing is registered under that name."""
    return ask(f"registered model {model_name}", lambda: client().get_registered_model(model_name))


def get_run(run_id: str) -> Any | None:
    """The run `run_id`, None when it does not exist (deleted)."""
    return ask(f"run {run_id}", lambda: client().get_run(run_id))


def search_versions(model_name: str) -> list[Any]:
    """Every version of `model_name` (empty when none or no such model)."""
    found = ask(
        f"the versions of {model_name}",
        lambda: client().search_model_versions(f"name='{model_name}'"),
        model_name,
    )
    return list(found or [])


def write(what: str, fn: Callable[[], T]) -> T:
    """A registry write: brief retries on a locked sqlite store, RegistryUnavailable when the
    registry cannot be reached (a missing model or version stays MLflow's own error)."""
    from mlflow.exceptions import MlflowException

    try:
        return _retry(fn)
    except MlflowException as exc:
        if is_not_found(exc):
            raise
        if is_denied(exc):
            raise not_allowed(f"write {what}") from exc
        raise unavailable(what, exc) from exc
    except (ModelError, RegistryUnavailable):
        raise
    except Exception as exc:
        raise unavailable(what, exc) from exc


# --------------------------------------------------------------------------- registry lock
# The lock lives next to the registry's database (artflow.registry.locks): in the MLflow
# server (`--app-name artflow`, reached over HTTP with this identity's credentials) or, for
# a local store (the embedded SQLite default), in this process. A holder renews its lease
# every LOCK_RENEW_S from a background thread; one that crashed or stalls loses the lock
# after LOCK_LEASE_S, and every write it then tries is refused by the store (fencing).
LOCK_LEASE_S = float(os.environ.get("ARTFLOW_LOCK_LEASE_S", "30"))
LOCK_POLL_S = 0.25


class RegistryLock:
    """A held registry lock: its token, its heartbeat and the fenced writes of the model
    it is named after (aliases, registered-model tags)."""

    def __init__(self, backend: Any, name: str, grant: dict[str, Any], lease_s: float) -> None:
        self.backend, self.name = backend, name
        self.token, self.fence = str(grant["token"]), int(grant["fence"])
        self.lease_s = float(grant.get("lease_s", lease_s))
        self.lost: str | None = None
        self._stop = threading.Event()
        self._beat = threading.Thread(target=self._heartbeat, name=f"lock:{name}", daemon=True)
        self._beat.start()

    def _heartbeat(self) -> None:
        from artflow.registry.locks import LockConflict

        while not self._stop.wait(self.lease_s / 3):  # renewed twice before it can run out
            try:
                self.backend.renew(self.name, self.token, self.lease_s)
            except LockConflict as exc:
                self.lost = exc.message
                log.warning("lost the registry lock %s: %s", self.name, exc.message)
                return
            except Exception as exc:  # an outage: the lease runs out unless a renewal gets through
                log.warning("could not renew the registry lock %s: %s", self.name, exc)

    def set_alias(self, alias: str, version: str | int, expect: Any = ...) -> None:
        """Point `alias` at `version` while this lock is held; with `expect` (a version or
        None for "not set"), only if the alias still points there (compare-and-swap)."""
        self._write(alias, str(version), expect)

    def delete_alias(self, alias: str, expect: Any = ...) -> None:
        self._write(alias, None, expect)

    def _write(self, alias: str, version: str | None, expect: Any) -> None:
        what = (
            f"set alias {alias} of {self.name}"
            if version
            else f"delete alias {alias} of {self.name}"
        )
        check = expect is not ...
        self._fenced(
            what,
            lambda: self.backend.set_alias(
                self.name,
                self.token,
                alias,
                version,
                expect=None if expect in (..., None) else str(expect),
                check=check,
            ),
        )

    def set_tag(self, key: str, value: str) -> None:
        self._fenced(
            f"set tag {key} of {self.name}",
            lambda: self.backend.set_tag(self.name, self.token, key, value),
        )

    def _fenced(self, what: str, fn: Callable[[], Any]) -> None:
        from artflow.registry.locks import CHANGED, LockConflict

        try:
            fn()
        except LockConflict as exc:
            if exc.code == CHANGED:
                raise AliasChanged(exc.message, exc.detail.get("now")) from exc
            raise LockLost(
                f"{what} refused: {exc.message}; nothing was changed by this holder",
                "another holder took the lock after this one stalled past its lease; run again",
            ) from exc

    def release(self) -> bool:
        """Stop renewing and free the lock if this holder still has it (never another's)."""
        self._stop.set()
        try:
            return bool(self.backend.release(self.name, self.token))
        except Exception as exc:  # the lease runs out by itself
            log.warning(
                "could not release %s (%s); it expires within %.0f s", self.name, exc, self.lease_s
            )
            return False


@contextlib.contextmanager
def registry_lock(
    model_name: str, wait_s: float = 60.0, lease_s: float | None = None
) -> Iterator[RegistryLock]:
    """Hold the registry lock `model_name` (the writes of its aliases and champion tags);
    wait up to `wait_s` for another holder, whose lease runs out at most LOCK_LEASE_S after
    it stopped renewing."""
    from artflow.registry.locks import LockConflict

    lease_s = lease_s or LOCK_LEASE_S
    backend = lock_backend()
    deadline = time.monotonic() + wait_s
    holder = f"{identity()}@{socket.gethostname()}:{os.getpid()}"
    while True:
        try:
            grant = backend.acquire(model_name, holder, lease_s)
            break
        except LockConflict as exc:
            if time.monotonic() > deadline:
                raise RegistryUnavailable(
                    f"the registry lock {model_name} has been held for more than {wait_s:g} s "
                    f"({exc.message})",
                    "wait for the other gate, rollback or pipeline to finish; a crashed holder "
                    f"loses it after {lease_s:g} s",
                ) from exc
        time.sleep(LOCK_POLL_S)
    held = RegistryLock(backend, model_name, grant, lease_s)
    try:
        yield held
    finally:
        held.release()


def lock_backend() -> Any:
    """Where the lock lives: the MLflow server for an http(s) URI, else this process."""
    uri = tracking_uri()
    use_mlflow()
    if uri.startswith(("http://", "https://")):
        return HttpLocks(uri)
    from mlflow.tracking._model_registry.utils import _get_store

    from artflow.registry.locks import LockStore

    store = _get_store(uri)
    if not hasattr(store, "engine"):
        raise RegistryUnavailable(
            f"the registry at {redacted_uri(uri)} has no database to hold the registry lock",
            "use a database store (sqlite:////abs/path/mlflow.db, postgresql://...) or an "
            "MLflow server started with --app-name artflow",
        )
    return LockStore(store)


class HttpLocks:
    """The lock routes of `mlflow server --app-name artflow` (artflow.registry.server)."""

    def __init__(self, uri: str) -> None:
        from mlflow.utils.credentials import get_default_host_creds

        self.creds = get_default_host_creds(uri)

    def _post(self, route: str, what: str, body: dict[str, Any]) -> dict[str, Any]:
        from mlflow.utils.rest_utils import http_request

        from artflow.registry.server import ROUTES

        try:
            response = http_request(self.creds, ROUTES[route], "POST", json=body)
        except Exception as exc:
            raise unavailable(what, exc) from exc
        try:
            payload = response.json()
        except ValueError:
            payload = {}
        if response.status_code == 200:
            return payload
        if response.status_code == 409:
            from artflow.registry.locks import LockConflict

            detail = {k: v for k, v in payload.items() if k not in ("error_code", "message")}
            raise LockConflict(
                str(payload.get("error_code")), str(payload.get("message")), **detail
            )
        if response.status_code in (401, 403):
            raise not_allowed(what)
        if response.status_code == 404 and not payload:
            raise RegistryUnavailable(
                f"the MLflow server at {redacted_uri()} has no registry lock routes",
                "start it with `mlflow server --app-name artflow` (docs/deploy.md)",
            )
        raise unavailable(what, RuntimeError(f"HTTP {response.status_code}: {response.text[:200]}"))

    def acquire(self, name: str, holder: str, lease_s: float) -> dict[str, Any]:
        return self._post(
            "acquire",
            f"take the registry lock {name}",
            {"name": name, "holder": holder, "lease_s": lease_s},
        )

    def renew(self, name: str, token: str, lease_s: float) -> dict[str, Any]:
        return self._post(
            "renew",
            f"renew the registry lock {name}",
            {"name": name, "token": token, "lease_s": lease_s},
        )

    def release(self, name: str, token: str) -> bool:
        body = {"name": name, "token": token}
        return bool(self._post("release", f"release the registry lock {name}", body)["released"])

    def set_alias(
        self, name: str, token: str, alias: str, version: str | None, expect: Any, check: bool
    ) -> None:
        verb = f"set alias {alias} of {name}" if version else f"delete alias {alias} of {name}"
        body = {
            "name": name,
            "token": token,
            "alias": alias,
            "version": version,
            "expect": expect,
            "check": check,
        }
        self._post("alias", verb, body)

    def set_tag(self, name: str, token: str, key: str, value: str) -> None:
        body = {"name": name, "token": token, "key": key, "value": value}
        self._post("tag", f"set tag {key} of {name}", body)


def set_alias(model_name: str, alias: str, version: str | int) -> None:
    """Point `alias` at `version` under the registry lock (every alias write takes it)."""
    with registry_lock(model_name) as lock:
        lock.set_alias(alias, version)


# Stores from before the lock table held the lock as a registered model of this name.
LEGACY_LOCK_SUFFIX = ".champion-lock"


def is_lock_name(name: str) -> bool:
    return name.endswith(LEGACY_LOCK_SUFFIX)


def mark_challenger(model_name: str, version: str | int) -> None:
    """New versions arrive as `challenger`; only the gate moves `champion`."""
    set_alias(model_name, CHALLENGER, version)


def model_uri(model_name: str, ref: str) -> str:
    """`models:/name@alias` for an alias, `models:/name/3` for a version number."""
    return f"models:/{model_name}/{ref}" if ref.isdigit() else f"models:/{model_name}@{ref}"


def load_keras_model(uri: str) -> Any:
    """Load a logged Keras model in safe mode, refusing artifacts that carry pickles or code
    (see artflow.registry.safe_load); a clear error when the URI resolves to nothing."""
    from artflow.registry.safe_load import load_registered

    return load_registered(uri, tracking_uri())[0]


def _retry(fn: Any, attempts: int = 5, delay: float = 0.5) -> Any:
    """sqlite locks under concurrent writers (docs/stack-notes.md): retry briefly."""
    from mlflow.exceptions import MlflowException

    for attempt in range(attempts):
        try:
            return fn()
        except MlflowException as exc:
            if "locked" not in str(exc).lower() or attempt == attempts - 1:
                raise
            time.sleep(delay * (attempt + 1))
    return None
