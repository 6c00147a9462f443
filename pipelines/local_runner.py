"""Run a pipeline on this machine with Kubeflow's local runner (subprocesses, no Docker).

Each step runs `python -m kfp...executor` under this interpreter (use_venv=False), where
artflow is installed. Outputs of the runner go under `<workdir>/pipeline/kfp_local/`; the
content-hash stamps in `<workdir>/pipeline/stamps/` make an unchanged re-run skip work.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from artflow.data.layout import Workdir
from artflow.errors import ArtflowError
from pipelines import load

log = logging.getLogger("artflow.pipelines.local_runner")


def run_local(
    name: str, workdir: str | Path, profile: str = "", verbose: bool = False, **arguments: Any
) -> dict[str, Any]:
    """Run pipeline `name` to completion; returns seconds, the stamps and the gate decisions.

    The steps' whole output goes to `<workdir>/pipeline/logs/<name>-<time>.log`; the terminal
    gets the useful part of it (everything with `verbose`).
    """
    from kfp import local

    from artflow import tracking
    from pipelines.local_log import quiet_steps

    wd = Workdir.at(workdir)
    from artflow.stages import is_overlay_file

    if profile and not is_overlay_file(profile):
        os.environ["ARTFLOW_PROFILE"] = profile  # steps inherit the environment
    uri = tracking.tracking_uri()
    os.environ["MLFLOW_TRACKING_URI"] = uri
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(wd.root / "pipeline" / "kfp_local"),
    )
    prune_stale_stamps(wd)
    start = time.perf_counter()
    log_path = wd.root / "pipeline" / "logs" / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.log"
    pipeline = load(name)
    try:
        with quiet_steps(log_path, verbose):
            pipeline(workdir=str(wd.root), profile=profile, mlflow_uri=uri, **arguments)
    except RuntimeError as exc:  # kfp.local raises RuntimeError for a failed task
        raise ArtflowError(
            f"pipeline {name} failed: {str(exc).splitlines()[0]}",
            f"the failing step's own error is printed above; its whole output: {log_path}",
        ) from None
    seconds = time.perf_counter() - start
    return {
        "pipeline": name,
        "seconds": round(seconds, 1),
        "log": str(log_path),
        **summary(wd, gated_models(pipeline)),
    }


def prune_stale_stamps(wd: Workdir) -> list[str]:
    """Forget stamps whose model version is gone (a fresh or different MLflow store).

    Checked once here, in the parent process, so that the steps' own skip stays import-free.
    """
    from artflow import tracking

    pruned: list[str] = []
    for path in sorted((wd.root / "pipeline" / "stamps").glob("*.json")):
        result = json.loads(path.read_text()).get("result", {})
        name = result.get("model_name") or result.get("model")
        version = str(result.get("version") or result.get("candidate") or "")
        if not (name and version):
            continue
        if tracking.model_version(name, version) is None:  # an unreachable registry raises
            path.unlink()
            pruned.append(path.stem)
            log.info("%s: %s v%s is not in the registry: will re-run", path.stem, name, version)
    return pruned


def gated_models(pipeline: Any) -> set[str]:
    """The registered models a compiled pipeline gates (its tasks' constant `model_name`s)."""
    spec = pipeline.pipeline_spec
    dags = [spec.root.dag] + [c.dag for c in spec.components.values() if c.HasField("dag")]
    names = set()
    for dag in dags:
        for task in dag.tasks.values():
            param = task.inputs.parameters.get("model_name")
            if param is not None and param.HasField("runtime_value"):
                names.add(param.runtime_value.constant.string_value)
    return names


def summary(wd: Workdir, models: set[str] | None = None) -> dict[str, Any]:
    """What the workdir's pipeline state says: each stage's last run and the last gate
    decision for each of `models` (default: every model gated in this workdir)."""
    stamps, gates = {}, {}
    for path in sorted((wd.root / "pipeline" / "stamps").glob("*.json")):
        record = json.loads(path.read_text())
        stamps[path.stem] = {"finished": record["finished"], "seconds": record["seconds"]}
        result = record.get("result", {})
        wanted = models is None or result.get("model") in models
        if path.stem.startswith("gate_") and result.get("candidate") and wanted:
            keep = ("model", "candidate", "champion", "passed", "promoted", "reason", "reports")
            gates[f"{result['model']}-v{result['candidate']}"] = {k: result.get(k) for k in keep}
    return {"stamps": stamps, "gates": gates, "root": str(Path(wd.root))}
