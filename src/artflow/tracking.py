"""MLflow: tracking URI, experiments, lineage tags, model logging and the registry.

Every run is traceable (docs/conventions.md): tags carry the git commit, the data hash and the
profile; a registered model version points to its run. Heavy imports stay inside functions.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from artflow.config import PROJECT_ROOT, Settings
from artflow.errors import ModelError

if TYPE_CHECKING:
    import mlflow

# Registered model names (docs/conventions.md).
CLASSIFIER = "artflow-artist-classifier"
STYLIZER = "artflow-style-transfer"
CYCLEGAN = "artflow-monet-cyclegan"
CHAMPION, CHALLENGER = "champion", "challenger"

# Requirements recorded with logged models; passing them skips MLflow's slow inference
# (docs/stack-notes.md).
PIP_REQUIREMENTS = ["tensorflow-cpu==2.21.0", "keras==3.15.1", "pillow", "numpy"]


def tracking_uri() -> str:
    """MLFLOW_TRACKING_URI, else a sqlite store in the project directory (absolute path)."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{PROJECT_ROOT / 'mlflow.db'}"


def artifact_root() -> str:
    """Where new experiments keep artifacts when the store is local (not cwd-relative)."""
    return os.environ.get("ARTFLOW_ARTIFACT_ROOT") or (PROJECT_ROOT / "mlartifacts").as_uri()


def client() -> mlflow.MlflowClient:
    import mlflow

    mlflow.set_tracking_uri(tracking_uri())
    return mlflow.MlflowClient(tracking_uri())


def experiment(name: str) -> str:
    """Select (creating if needed) the experiment `name` and return its id."""
    import mlflow

    mlflow.set_tracking_uri(tracking_uri())
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


def env_tags() -> dict[str, str]:
    """Tags for every run of this process and its child processes: a JSON object in
    ARTFLOW_RUN_TAGS. `artflow drift --act` sets it so that each run of the retrain pipeline
    it starts records why (artflow.trigger=drift and the drift report's location)."""
    raw = os.environ.get(RUN_TAGS_ENV, "").strip()
    try:
        tags = json.loads(raw) if raw else {}
    except json.JSONDecodeError:
        return {}
    return {str(k): str(v) for k, v in tags.items()} if isinstance(tags, dict) else {}


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


def alias_version(model_name: str, alias: str) -> Any | None:
    """The ModelVersion behind `alias`, or None when the alias is not set."""
    from mlflow.exceptions import MlflowException

    try:
        return client().get_model_version_by_alias(model_name, alias)
    except MlflowException:
        return None


def mark_challenger(model_name: str, version: str | int) -> None:
    """New versions arrive as `challenger`; only the gate moves `champion`."""
    set_alias(model_name, CHALLENGER, version)


def model_uri(model_name: str, ref: str) -> str:
    """`models:/name@alias` for an alias, `models:/name/3` for a version number."""
    return f"models:/{model_name}/{ref}" if ref.isdigit() else f"models:/{model_name}@{ref}"


def load_keras_model(uri: str) -> Any:
    """Load a logged Keras model back natively; a clear error when the URI resolves to nothing."""
    import mlflow.tensorflow
    from mlflow.exceptions import MlflowException

    mlflow.set_tracking_uri(tracking_uri())
    try:
        return mlflow.tensorflow.load_model(uri)
    except MlflowException as exc:
        raise ModelError(
            f"cannot load {uri}: {exc.message.splitlines()[0]}",
            "check `artflow models list` for registered names, versions and aliases",
        ) from None


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
