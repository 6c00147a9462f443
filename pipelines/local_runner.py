"""Run a pipeline on this machine with Kubeflow's local runner (subprocesses, no Docker).

Each step runs `python -m kfp...executor` under this interpreter (use_venv=False), where
artflow is installed, in its own empty working directory: a step sees only its artifacts and
parameters, as in a pod. The local runner's home (`--workdir`, default data/) keeps:
  pipeline/kfp_local/   the artifacts of every run (kfp's pipeline root)
  pipeline/cache/       kfp's local task cache: one entry per finished task, pointing at its
                        outputs under kfp_local/; an unchanged re-run restores them without
                        starting a process (pipelines/cache.py says what is checked on top)
  pipeline/logs/        each run's whole step output (the terminal gets a log level's worth
                        of it: pipelines/local_log.py)
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from artflow import logs, stages
from artflow.config import Settings
from artflow.data.layout import default_source
from artflow.data.sources import source_key
from artflow.errors import ArtflowError
from pipelines import cache, load

log = logging.getLogger("artflow.pipelines.local_runner")


def run_local(
    name: str,
    workdir: str | Path,
    profile: str = "",
    settings: Settings | None = None,
    log_level: logs.LogLevel | str | None = None,
    force: bool = False,
    **arguments: Any,
) -> dict[str, Any]:
    """Run pipeline `name` to completion; returns seconds, where its outputs are, the steps
    that ran (the others were restored from kfp's cache or not needed), the gates.

    `force` forgets the local cache first, so every step runs.

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
    cache_root = home / "cache"
    if force:  # every step runs, and its entry replaces the old one for later runs
        shutil.rmtree(cache_root, ignore_errors=True)
    cache.prune(cache_root)
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(home / "kfp_local"),
        enable_caching=True,
        cache_root=str(cache_root),
    )
    start = time.perf_counter()
    log_path = home / "logs" / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.log"
    pipeline = load(name, settings, local=True)
    arguments = {"profile": profile, "mlflow_uri": uri, **arguments}
    if not arguments.get("source") and (home.parent / "raw").is_dir():
        arguments["source"] = str(home.parent / "raw")  # the data version already ingested here
    arguments["source"] = default_source(settings, arguments.get("source"))
    arguments.setdefault("source_key", source_key(arguments["source"]))
    earlier = _run_folders(home / "kfp_local")
    try:
        with (
            step_output(log_path) as lines,
            steps_in_empty_dirs(lines, step_environment(level)),
            cache_hits() as restored,
        ):
            pipeline(**arguments)
    except RuntimeError as exc:  # kfp.local raises RuntimeError for a failed task
        raise ArtflowError(
            f"pipeline {name} failed: {str(exc).splitlines()[0]}",
            f"the failing step's own error is printed above; its whole output: {log_path}",
        ) from None
    new = sorted(_run_folders(home / "kfp_local") - earlier, key=lambda p: p.stat().st_mtime)
    run_dir = str(new[-1]) if new else ""  # none when every task was restored
    ran = [_task_outputs(p) for p in steps_ran(run_dir)]
    tasks = [*ran, *restored]
    return {
        "pipeline": name,
        "seconds": round(time.perf_counter() - start, 1),
        "log": str(log_path),
        "outputs": run_dir,
        "ran": sorted(t.name for t in ran),
        "restored": sorted(t.name for t in restored),
        "gates": gate_decisions(tasks),
    }


@contextlib.contextmanager
def steps_in_empty_dirs(
    on_line: Callable[[str], Any] | None = None, env: dict[str, str] | None = None
) -> Iterator[None]:
    """Start every step in a fresh, empty working directory, so that a step reaching for a
    file another step wrote (rather than its artifacts) fails here as it would in a pod.
    Each line of its output goes to `on_line` (default: this stdout, as kfp prints it); `env`
    is the step's environment (default: this one's), plus the task's own variables (its
    cache key's, artflow.stages.keys). Hand-written because kfp's SubprocessRunner has neither
    a working-directory nor an environment option."""
    from kfp.local import subprocess_task_handler as handler

    original = handler.run_local_subprocess

    def run_in_empty_dir(full_command: list[str], env_vars: dict[str, str] | None = None) -> int:
        cwd = tempfile.mkdtemp(prefix="artflow-step-")
        try:
            with subprocess.Popen(
                full_command,
                cwd=cwd,
                env={**(env if env is not None else os.environ), **(env_vars or {})},
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


def _run_folders(root: Path) -> set[Path]:
    return {p for p in root.glob("*") if p.is_dir()} if root.is_dir() else set()


@dataclass(frozen=True)
class TaskOutputs:
    """One task of a run: its name and its output artifacts' (uri, metadata) by output."""

    name: str
    artifacts: dict[str, tuple[str, dict[str, Any]]]


def steps_ran(run_dir: str) -> list[Path]:
    """The folders of the tasks that ran in this run: kfp writes a task's folder only when
    it runs it (a cache hit returns the recorded outputs, in the earlier run's folders)."""
    root = Path(run_dir) if run_dir else None
    if root is None or not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if (p / "executor_output.json").is_file())


def _task_outputs(folder: Path) -> TaskOutputs:
    artifacts = json.loads((folder / "executor_output.json").read_text()).get("artifacts", {})
    found = {
        key: (a["uri"], a.get("metadata", {}))
        for key, value in artifacts.items()
        for a in value.get("artifacts", [])[:1]
    }
    return TaskOutputs(folder.name, found)


@contextlib.contextmanager
def cache_hits() -> Iterator[list[TaskOutputs]]:
    """The tasks kfp restores from its local cache while this is open. kfp returns only a
    pipeline's own outputs and logs a hit at a level this runner's logging drops, so the
    lookup is watched here; a task's name is its artifacts' folder (kfp's layout)."""
    from kfp import dsl
    from kfp.local import cache as kfp_cache

    original = kfp_cache.LocalCache.get
    hits: list[TaskOutputs] = []

    def get(self: Any, key: str) -> dict[str, Any] | None:
        found = original(self, key)
        arts = {k: v for k, v in (found or {}).items() if isinstance(v, dsl.Artifact)}
        if arts:
            name = Path(next(iter(arts.values())).uri).parent.name
            hits.append(TaskOutputs(name, {k: (a.uri, dict(a.metadata)) for k, a in arts.items()}))
        return found

    kfp_cache.LocalCache.get = get
    try:
        yield hits
    finally:
        kfp_cache.LocalCache.get = original


def gate_decisions(tasks: list[TaskOutputs]) -> dict[str, Any]:
    """Each gate's decision, ran or restored, as its Markdown report's metadata says."""
    out: dict[str, Any] = {}
    for task in tasks:
        uri, meta = task.artifacts.get("report", ("", {}))
        if task.name.startswith("gate-op") and meta.get("model"):
            out[f"{meta['model']}-v{meta.get('candidate')}"] = {**meta, "report": uri}
    return dict(sorted(out.items()))
