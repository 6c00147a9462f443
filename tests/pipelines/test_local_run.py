"""kfp's local runner as artflow uses it: every step in its own empty working directory.

The whole training pipeline runs locally (twice: then restored from the cache) in the
production rehearsal, tests/prod/test_rehearsal.py, from a DVC remote on S3 against the
MLflow server."""

import json
from pathlib import Path


def test_each_step_starts_in_its_own_empty_directory(tmp_path):
    """A step that looks for files outside its artifacts finds nothing (as in a pod)."""
    from kfp import dsl, local
    from kfp.dsl import Artifact, Output

    from pipelines.local_runner import steps_in_empty_dirs

    @dsl.component(base_image="python:3.11", install_kfp_package=False)
    def where(out: Output[Artifact]):
        import json
        import os

        with open(out.path, "w") as f:
            json.dump({"cwd": os.getcwd(), "files": os.listdir(".")}, f)

    local.init(local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "root"))
    with steps_in_empty_dirs():
        first, second = where(), where()
    seen = [json.loads(Path(t.outputs["out"].path).read_text()) for t in (first, second)]
    assert seen[0]["files"] == seen[1]["files"] == []
    assert seen[0]["cwd"] != seen[1]["cwd"] != str(Path.cwd())


def _new_run(root: Path, before: set[Path]) -> list[str]:
    """The tasks that ran in the one run folder kfp added under `root` ([] if none)."""
    from pipelines.local_runner import steps_ran

    new = [p for p in root.glob("*") if p.is_dir() and p not in before]
    return [p.name for p in steps_ran(str(new[0]))] if new else []


def test_dsl_if_runs_exactly_the_branch_its_condition_selects(tmp_path):
    """kfp 2.17's local runner evaluates a condition on a task's output (2.16 skipped every
    `dsl.If` and ran both branches of an If/Else): the retrain's condition relies on it."""
    from kfp import dsl, local

    @dsl.component(base_image="python:3.11", install_kfp_package=False)
    def decide(flag: bool) -> bool:
        return flag

    @dsl.component(base_image="python:3.11", install_kfp_package=False)
    def branch(which: str) -> str:
        return which

    @dsl.pipeline
    def conditional(flag: bool):
        decided = decide(flag=flag)
        with dsl.If(decided.output == True):  # noqa: E712 (kfp's DSL)
            branch(which="yes")
        with dsl.Else():
            branch(which="no")

    root = tmp_path / "root"
    local.init(local.SubprocessRunner(use_venv=False), pipeline_root=str(root))
    ran = {}
    for flag in (True, False):
        before = set(root.glob("*"))
        conditional(flag=flag)
        ran[flag] = sorted(_new_run(root, before))
    assert ran == {True: ["branch", "decide"], False: ["branch-2", "decide"]}


def test_kfps_cache_restores_a_step_until_its_code_key_changes(tmp_path):
    """kfp's local cache restores a task with the same key (no process starts) only when every
    output it recorded exists on disk, a Metrics output included (`stages.seal`); the task's
    `ARTFLOW_STEP_KEY` variable is part of the key, so a code change re-runs it."""
    from kfp import dsl, local
    from kfp.dsl import Metrics, Model, Output

    from artflow import stages

    @dsl.component(base_image="python:3.11", install_kfp_package=False)
    def step(model: Output[Model], metrics: Output[Metrics]) -> str:
        from pathlib import Path

        from artflow import stages

        Path(model.path).mkdir(parents=True)
        metrics.log_metric("accuracy", 0.5)
        stages.seal({"model": model, "metrics": metrics})
        return "trained"

    def pipeline_for(code: str):
        @dsl.pipeline
        def cached():
            step().set_env_variable(stages.ENV, code)

        return cached

    root = tmp_path / "root"
    local.init(
        local.SubprocessRunner(use_venv=False),
        pipeline_root=str(root),
        enable_caching=True,
        cache_root=str(tmp_path / "cache"),
    )
    ran = []
    for code in ("a", "a", "b", "b"):
        before = set(root.glob("*"))
        pipeline_for(code)()
        ran.append(_new_run(root, before))
    assert ran == [["step"], [], ["step"], []]


def test_the_retrain_runs_nothing_after_a_drift_check_that_says_no(tmp_path, fresh_store):
    """The real retrain pipeline, its condition false (no traffic logged: no evidence of
    drift): only the drift check runs. Its true branch runs in
    tests/monitor/test_trigger.py (the drift trigger's real local retrain)."""
    from pipelines.local_runner import run_local

    result = run_local(
        "retrain",
        tmp_path / "home",
        "smoke",
        source=str(tmp_path / "never-read"),
        policy="drift",
        prediction_log=str(tmp_path / "no-traffic.jsonl"),
    )
    assert result["ran"] == ["drift-check-op"] and result["restored"] == []
    assert result["gates"] == {}
