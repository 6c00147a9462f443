"""Run a pipeline on this machine with Kubeflow's local runner (subprocesses, no Docker).

Each step runs `python -m kfp...executor` under this interpreter (use_venv=False), where
artflow is installed, in its own empty working directory: a step sees only its artifacts and
parameters, as in a pod. The local runner's home (`--workdir`, default data/) keeps:
  pipeline/kfp_local/   the artifacts of every run (kfp's pipeline root)
  pipeline/cache/       finished steps by content key (artflow.stages.cached): an unchanged
                        re-run restores them instead of working again
  pipeline/logs/        each run's whole step output (the terminal gets a log level's worth
                        of it: pipelines/local_log.py)
"""

from __future__ import annotations

import contextlib
import json
import logging
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from artflow import logs, stages
from artflow.config import Settings
from artflow.data.layout import default_source
from artflow.errors import ArtflowError
from pipelines import load

log = logging.getLogger("artflow.pipelines.local_runner")


def run_local(
    name: str,
    workdir: str | Path,
    profile: str = "",
    settings: Settings | None = None,
    log_level: logs.LogLevel | str | None = None,
    **arguments: Any,
) -> dict[str, Any]:
    """Run pipeline `name` to completion; returns seconds, where its outputs are, the gates.

    The steps log at `log_level` (default: the level the `artflow` logger is configured at);
    the terminal shows their artflow records, kfp's task statuses and tracebacks, and
    `<workdir>/pipeline/logs/<name>-<time>.log` keeps their whole output.
    """
    from kfp import local

    from artflow.registry import tracking
    from pipelines.local_log import step_environment, step_output

    logger = logs.ensure_configured()
    level = logs.resolve_level(log_level) if log_level else logger.getEffectiveLevel()

    home = Path(workdir).expanduser().resolve() / "pipeline"
    settings = settings or stages.settings_for(profile)
    uri = arguments.pop("mlflow_uri", "") or tracking.tracking_uri()
    cache_dir = str(home / "cache")
    prune_stale_cache(cache_dir)
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(home / "kfp_local"))
    start = time.perf_counter()
    log_path = home / "logs" / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.log"
    pipeline = load(name, settings)
    arguments = {"profile": profile, "mlflow_uri": uri, "cache_dir": cache_dir, **arguments}
    if not arguments.get("source") and (home.parent / "raw").is_dir():
        arguments["source"] = str(home.parent / "raw")  # the data version already ingested here
    arguments["source"] = default_source(settings, arguments.get("source"))
    try:
        with (
            step_output(log_path) as lines,
            steps_in_empty_dirs(lines, step_environment(level)),
        ):
            pipeline(**arguments)
    except RuntimeError as exc:  # kfp.local raises RuntimeError for a failed task
        raise ArtflowError(
            f"pipeline {name} failed: {str(exc).splitlines()[0]}",
            f"the failing step's own error is printed above; its whole output: {log_path}",
        ) from None
    run_dir = _output_folder(home / "kfp_local")
    return {
        "pipeline": name,
        "seconds": round(time.perf_counter() - start, 1),
        "log": str(log_path),
        "outputs": run_dir,
        "gates": gate_decisions(run_dir),
    }


@contextlib.contextmanager
def steps_in_empty_dirs(
    on_line: Callable[[str], Any] | None = None, env: dict[str, str] | None = None
) -> Iterator[None]:
    """Start every step in a fresh, empty working directory, so that a step reaching for a
    file another step wrote (rather than its artifacts) fails here as it would in a pod.
    Each line of its output goes to `on_line` (default: this stdout, as kfp prints it); `env`
    is the step's environment (default: this one's). Hand-written because kfp's
    SubprocessRunner has neither a working-directory nor an environment option."""
    from kfp.local import subprocess_task_handler as handler

    original = handler.run_local_subprocess

    def run_in_empty_dir(full_command: list[str]) -> int:
        cwd = tempfile.mkdtemp(prefix="artflow-step-")
        try:
            with subprocess.Popen(
                full_command,
                cwd=cwd,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                bufsize=1,
            ) as process:
                for line in iter(process.stdout.readline, ""):  # type: ignore[union-attr]
                    (on_line or _print_indented)(line)
                return process.wait()
        finally:
            shutil.rmtree(cwd, ignore_errors=True)

    handler.run_local_subprocess = run_in_empty_dir
    try:
        yield
    finally:
        handler.run_local_subprocess = original


def _print_indented(line: str) -> None:
    sys.stdout.write("    " + line)  # as kfp streams a step


def _output_folder(root: Path) -> str:
    """The run's artifact folder under kfp's pipeline root (the newest one)."""
    runs = [p for p in root.glob("*") if p.is_dir()]
    return str(max(runs, key=lambda p: p.stat().st_mtime)) if runs else ""


def gate_decisions(run_dir: str) -> dict[str, Any]:
    """Each gate's decision, as its Markdown report's metadata says (kfp.local returns only
    the pipeline's own outputs, so the tasks' are read from their executor_output.json)."""
    out: dict[str, Any] = {}
    for path in sorted(Path(run_dir).glob("gate-op*/executor_output.json")) if run_dir else []:
        artifacts = json.loads(path.read_text()).get("artifacts", {})
        for report in artifacts.get("report", {}).get("artifacts", []):
            meta = report.get("metadata", {})
            if meta.get("model"):
                out[f"{meta['model']}-v{meta.get('candidate')}"] = {**meta, "report": report["uri"]}
    return out


def prune_stale_cache(cache_dir: str | Path) -> list[str]:
    """Forget cached steps whose model version is gone (a fresh or different MLflow store).

    Checked once here, in the parent process, so that the steps' own check stays import-free.
    """
    from artflow.registry import tracking

    pruned: list[str] = []
    for entry, record in stages.cache_entries(cache_dir):
        result = record.get("result", {})
        name = result.get("model_name")
        version = str(result.get("version") or "")
        if not (name and version):
            continue
        if tracking.model_version(name, version) is None:  # an unreachable registry raises
            shutil.rmtree(entry, ignore_errors=True)
            pruned.append(entry.parent.name)
            log.info(
                "%s: %s v%s is not in the registry: will re-run", entry.parent.name, name, version
            )
    return pruned
