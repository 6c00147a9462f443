"""Load registered Keras models without trusting the artifact's pickles or code.

MLflow's own loaders (`mlflow.tensorflow.load_model`, `mlflow.keras.load_model`, pyfunc)
follow the artifact's MLmodel: they unpickle `custom_objects.cloudpickle` and put a shipped
`code/` folder on `sys.path` before Keras' safe mode is ever consulted. Anyone who can write
a model version and move an alias would run code wherever the model is loaded. So artflow
downloads the artifact's files, refuses any that carry pickles or code, and loads the
`.keras` file itself with `keras.saving.load_model(path, safe_mode=True)`, which in turn
refuses Lambda layers (marshalled Python bytecode). The custom layers artflow's own models
use are registered in artflow (`keras.saving.register_keras_serializable`), so no
`custom_objects` are ever needed.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from artflow import families
from artflow.errors import ModelError

log = logging.getLogger(__name__)

# File kinds that deserialise to arbitrary Python objects (pickle and its relatives).
PICKLE_SUFFIXES = frozenset({".pkl", ".pickle", ".cloudpickle", ".joblib", ".dill"})
HINT = (
    "re-register the model with artflow (artflow train ...): artflow logs plain .keras files; "
    "custom layers must be registered in artflow (keras.saving.register_keras_serializable)"
)


class UnsafeModelError(ModelError):
    """The artifact carries pickled objects or code: refused before anything is loaded."""


def register_custom_layers() -> None:
    """Import the modules that register the declared models' custom Keras layers (their
    `layers` in artflow.families), so that safe mode finds them."""
    for module in families.layer_modules():
        importlib.import_module(module)


@contextlib.contextmanager
def no_pickled_custom_objects() -> Iterator[None]:
    """While logging a model: MLflow's Keras flavour pickles Keras' global custom objects (the
    layers artflow registers) into `global_custom_objects.cloudpickle` of every artifact
    logged after they were imported. The loader refuses pickles and registers those layers
    itself, so artflow logs without them: the global dict is emptied meanwhile (saving uses
    the registered names, which stay)."""
    from keras.saving import get_custom_objects

    objects = get_custom_objects()
    saved = dict(objects)
    objects.clear()
    try:
        yield
    finally:
        objects.update(saved)


def unsafe_files(folder: Path) -> list[str]:
    """Paths (relative to `folder`) of pickles, shipped code and MLmodel code references."""
    found = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if path.is_dir() and path.name == "code":
            found.append(rel + "/")
        elif path.is_file() and path.suffix.lower() in {*PICKLE_SUFFIXES, ".py"}:
            found.append(rel)
    mlmodel = folder / "MLmodel"
    if mlmodel.is_file():
        meta = yaml.safe_load(mlmodel.read_text(encoding="utf-8")) or {}
        for flavor, conf in (meta.get("flavors") or {}).items():
            if isinstance(conf, dict) and conf.get("code"):
                found.append(f"MLmodel: flavor {flavor} ships code {conf['code']!r}")
    return found


def keras_file(folder: Path, what: str) -> Path:
    """The one `.keras` file inside a downloaded artifact."""
    files = sorted(folder.rglob("*.keras"))
    if len(files) != 1:
        raise ModelError(
            f"{what} holds {len(files)} .keras files (expected one): {[p.name for p in files]}",
            "register Keras 3 models with artflow (they are saved as model.keras)",
        )
    return files[0]


def load_keras_file(path: str | Path, what: str | None = None) -> Any:
    """`keras.saving.load_model(path, safe_mode=True)` with artflow's layers registered."""
    import keras

    path = Path(path)
    what = what or str(path)
    if not zipfile.is_zipfile(path):
        raise ModelError(f"{what}: {path.name} is not a Keras 3 .keras archive")
    register_custom_layers()
    try:
        return keras.saving.load_model(path, safe_mode=True, compile=False)
    except ValueError as exc:
        text = str(exc)
        if "safe_mode" in text or "Lambda" in text or "lambda" in text:
            raise UnsafeModelError(
                f"{what} carries code (a Lambda layer or a function): refused in safe mode", HINT
            ) from None
        raise ModelError(f"cannot load {what}: {text.splitlines()[0]}", HINT) from None
    except TypeError as exc:  # an unregistered custom class
        raise ModelError(f"cannot load {what}: {str(exc).splitlines()[0]}", HINT) from None


def download(uri: str, tracking_uri: str) -> Path:
    """The artifact's files, local (MLflow copies remote artifacts, local ones stay in place).

    ModelError when the registry says the model does not exist; RegistryUnavailable when it
    (or the artifact store) could not be asked."""
    import mlflow
    from mlflow.exceptions import MlflowException

    from artflow.registry import tracking

    tracking.use_mlflow()
    try:
        local = mlflow.artifacts.download_artifacts(artifact_uri=uri, tracking_uri=tracking_uri)
    except MlflowException as exc:
        if not tracking.is_not_found(exc):
            raise tracking.unavailable(uri, exc) from exc
        raise ModelError(
            f"cannot download {uri}: {str(exc).splitlines()[0]}",
            "check `artflow models list` for registered names, versions and aliases",
        ) from None
    except OSError as exc:
        raise ModelError(f"cannot download {uri}: {str(exc).splitlines()[0]}") from None
    return Path(local)


def checked_keras_file(folder: Path, what: str) -> Path:
    """The artifact's `.keras` file, after refusing pickles and code anywhere in it."""
    unsafe = unsafe_files(folder)
    if unsafe:
        log.error("refusing %s: it carries pickles or code: %s", what, unsafe)
        raise UnsafeModelError(
            f"{what} carries pickled objects or code ({', '.join(unsafe)}): refused", HINT
        )
    return keras_file(folder, what)


def load_registered(uri: str, tracking_uri: str) -> tuple[Any, Path]:
    """Download `uri`, refuse pickles/code, load its `.keras` file in safe mode."""
    folder = download(uri, tracking_uri)
    path = checked_keras_file(folder, uri)
    return load_keras_file(path, uri), path
