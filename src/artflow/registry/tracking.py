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
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from artflow.config import PROJECT_ROOT, Settings
from artflow.errors import ModelError, RegistryUnavailable
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
    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    return uri


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
    }


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


def set_alias(model_name: str, alias: str, version: str | int) -> None:
    _retry(lambda: client().set_registered_model_alias(model_name, alias, str(version)))


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


def ask(what: str, fn: Callable[[], T]) -> T | None:
    """Call the registry: the answer, None when `what` is not set, RegistryUnavailable when
    the registry could not answer."""
    from mlflow.exceptions import MlflowException

    try:
        return fn()
    except MlflowException as exc:
        if is_not_found(exc):
            return None
        raise unavailable(what, exc) from exc
    except (ModelError, RegistryUnavailable):
        raise
    except Exception as exc:  # requests/urllib3/SQLAlchemy errors that MLflow did not wrap
        raise unavailable(what, exc) from exc


def alias_version(model_name: str, alias: str) -> Any | None:
    """The ModelVersion behind `alias`, None when the alias is not set; RegistryUnavailable
    when the registry could not be asked."""
    return ask(
        f"alias {alias!r} of {model_name}",
        lambda: client().get_model_version_by_alias(model_name, alias),
    )


def model_version(model_name: str, version: str | int) -> Any | None:
    """The ModelVersion `version` of `model_name`, None when there is no such version."""
    return ask(
        f"version {version} of {model_name}",
        lambda: client().get_model_version(model_name, str(version)),
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
        raise unavailable(what, exc) from exc
    except (ModelError, RegistryUnavailable):
        raise
    except Exception as exc:
        raise unavailable(what, exc) from exc


# --------------------------------------------------------------------------- registry lock
# MLflow has no compare-and-swap on aliases. A registered model's name is unique in the
# backend store (sqlite or PostgreSQL), so creating a model named LOCK_SUFFIX after the
# guarded one is an atomic "take the lock" that every process and pod sees; deleting it
# releases it. A holder that crashed leaves the lock behind: it is broken after LOCK_TTL_S.
LOCK_SUFFIX = ".champion-lock"
LOCK_TTL_S = 300.0


def is_lock_name(name: str) -> bool:
    return name.endswith(LOCK_SUFFIX)


@contextlib.contextmanager
def registry_lock(model_name: str, wait_s: float = 60.0) -> Iterator[str]:
    """Hold the registry-wide lock of `model_name` (moves of its `champion`)."""
    lock, holder = f"{model_name}{LOCK_SUFFIX}", uuid.uuid4().hex
    deadline = time.monotonic() + wait_s
    while not _try_lock(lock, holder):
        if time.monotonic() > deadline:
            raise RegistryUnavailable(
                f"{lock} has been held by another gate or rollback for more than {wait_s:g} s",
                f"wait for it to finish, or delete the registered model {lock} if it crashed",
            )
        time.sleep(0.25)
    try:
        yield holder
    finally:
        try:
            client().delete_registered_model(lock)
        except Exception:  # the lock expires after LOCK_TTL_S anyway
            log.warning("could not release %s; it expires in %.0f s", lock, LOCK_TTL_S)


def _try_lock(lock: str, holder: str) -> bool:
    from mlflow.exceptions import MlflowException

    try:
        _retry(lambda: client().create_registered_model(lock, {"holder": holder}))
        return True
    except MlflowException as exc:  # held (or released while MLflow looked it up): wait
        if exc.error_code not in {"RESOURCE_ALREADY_EXISTS", "RESOURCE_DOES_NOT_EXIST"}:
            raise unavailable(f"the lock {lock}", exc) from exc
    except Exception as exc:
        raise unavailable(f"the lock {lock}", exc) from exc
    held = registered(lock)
    if held is not None and time.time() - held.creation_timestamp / 1000 > LOCK_TTL_S:
        log.warning("breaking %s: held for over %.0f s", lock, LOCK_TTL_S)
        ask(f"the lock {lock}", lambda: client().delete_registered_model(lock))
    return False


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
