"""Kubeflow Pipelines on a cluster: compile to YAML (IR), submit a run, schedule a recurring run.

The same pipeline definitions run locally (local_runner.py). On a cluster every step is its own
pod: data travel as artifacts in the pipeline root's object store, and the steps reach MLflow
with the URI and credentials of the Secret named in params.yaml (docs/pipelines.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from artflow.config import Settings
from artflow.errors import ArtflowError, ConfigError
from pipelines import PIPELINES, load

HEALTHZ = "/apis/v2beta1/healthz"


def compile_pipeline(name: str, out_dir: str | Path, settings: Settings | None = None) -> Path:
    from kfp import compiler

    out = Path(out_dir) / f"{name}.yaml"
    out.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(load(name, settings), str(out))
    return out


def compile_all(out_dir: str | Path, settings: Settings | None = None) -> list[Path]:
    return [compile_pipeline(name, out_dir, settings) for name in PIPELINES]


def _check_reachable(host: str) -> None:
    """Fail fast with one clear message when nothing answers at `host`."""
    import requests

    if not host.startswith(("http://", "https://")):
        raise ConfigError(f"--host {host!r} is not a URL", "use e.g. http://localhost:8080")
    hint = (
        "check the URL, or port-forward the API: kubectl -n kubeflow port-forward "
        "svc/ml-pipeline-ui 8080:80"
    )
    try:
        response = requests.get(host.rstrip("/") + HEALTHZ, timeout=5)
    except requests.RequestException as exc:
        raise ArtflowError(
            f"cannot reach Kubeflow Pipelines at {host}: {type(exc).__name__}", hint
        ) from None
    if not response.ok:  # kfp.Client would retry this for ~25 s and then fail anyway
        raise ArtflowError(
            f"{host} answers, but not as Kubeflow Pipelines: GET {HEALTHZ} -> "
            f"{response.status_code}",
            hint,
        )


def _client(host: str) -> Any:
    import kfp

    _check_reachable(host)
    return _call(host, "connecting", lambda: kfp.Client(host=host))


def _call(host: str, what: str, fn: Any) -> Any:
    """Client calls: connection and API errors become one readable line."""
    try:
        return fn()
    except ArtflowError:
        raise
    except Exception as exc:  # kfp_server_api / urllib3 raise many types; all are fatal here
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ArtflowError(f"{what} on {host} failed: {first[:300]}") from None


def submit(
    name: str,
    host: str,
    arguments: dict[str, Any],
    experiment: str = "artflow",
    settings: Settings | None = None,
) -> str:
    """Start one run of pipeline `name`; returns the run id. Caching stays on (cluster)."""
    client = _client(host)
    run = _call(
        host,
        "submitting",
        lambda: client.create_run_from_pipeline_func(
            load(name, settings),
            arguments=arguments,
            experiment_name=experiment,
            enable_caching=True,
        ),
    )
    return str(run.run_id)


def kfp_cron(expr: str) -> str:
    """KFP wants six cron fields (seconds first); accept the usual five too."""
    fields = expr.split()
    if len(fields) == 5:
        return "0 " + expr.strip()
    if len(fields) == 6:
        return expr.strip()
    raise ConfigError(f"cron expression {expr!r} needs 5 or 6 fields", "e.g. '0 3 * * 1'")


def schedule(
    name: str,
    cron: str,
    host: str,
    arguments: dict[str, Any],
    out_dir: str | Path,
    experiment: str = "artflow",
    settings: Settings | None = None,
) -> str:
    """Create a recurring run of pipeline `name`; returns the recurring run's id."""
    cron6 = kfp_cron(cron)
    client = _client(host)
    package = compile_pipeline(name, out_dir, settings)
    exp = _call(host, "creating the experiment", lambda: client.create_experiment(experiment))
    job = _call(
        host,
        "scheduling",
        lambda: client.create_recurring_run(
            experiment_id=exp.experiment_id,
            job_name=f"artflow-{name}",
            cron_expression=cron6,
            params=arguments,
            pipeline_package_path=str(package),
            max_concurrency=1,
            no_catchup=True,
            enable_caching=True,
        ),
    )
    return str(getattr(job, "recurring_run_id", "") or getattr(job, "id", ""))
