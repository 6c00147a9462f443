"""GitHub Actions workflows: actionlint (with shellcheck when installed), pinned actions,
least privilege, secrets only through env, concurrency, timeouts, and the cross-workflow
wiring (retrain -> promote, drift -> retrain). Breaking a workflow on purpose must fail."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.infra.conftest import ROOT, WORKFLOWS, load_workflow, run, tool, workflow_files

# `uses: owner/repo[/path]@<40 hex> # vX.Y.Z`: a full commit SHA, with the release it is.
PINNED = re.compile(
    r"^\s*(?:-\s+)?uses:\s+(?P<action>[\w.-]+/[\w./-]+)@(?P<sha>[0-9a-f]{40})"
    r"\s+#\s+(?P<version>v\d+(?:\.\d+){0,2})\s*$"
)
USES = re.compile(r"^\s*(?:-\s+)?uses:\s+(?P<ref>\S+)")
WRITE_SCOPES_ALLOWED = {"packages", "actions"}


def actionlint(folder: Path) -> Any:
    """actionlint over every workflow under folder/.github/workflows; shellcheck on the run:
    scripts when it is installed (apt's shellcheck), explicitly off otherwise."""
    shellcheck = shutil.which("shellcheck") or ""
    files = sorted((folder / ".github" / "workflows").glob("*.y*ml"))
    return run(
        [
            tool("actionlint"),
            "-no-color",
            "-oneline",
            f"-shellcheck={shellcheck}",
            *map(str, files),
        ],
        cwd=folder,
    )


def tag_view(text: str) -> str:
    """The workflow with each SHA pin replaced by its major version tag (from the comment).

    actionlint knows the inputs of popular actions by tag only, so this is how an unknown
    `with:` input of a pinned action gets caught.
    """
    out = []
    for line in text.splitlines():
        m = PINNED.match(line)
        if m:
            major = m["version"].split(".")[0]
            line = line.replace(f"@{m['sha']}", f"@{major}").split(" #")[0]
        out.append(line)
    return "\n".join(out) + "\n"


def copy_workflows(dst: Path, mutate: dict[str, Any] | None = None, tags: bool = True) -> Path:
    folder = dst / ".github" / "workflows"
    folder.mkdir(parents=True)
    for path in workflow_files():
        text = path.read_text()
        if mutate and path.name in mutate:
            text = mutate[path.name](text)
        (folder / path.name).write_text(tag_view(text) if tags else text)
    return dst


def steps(doc: dict[str, Any]):
    for job_id, job in doc["jobs"].items():
        for step in job.get("steps", []):
            yield job_id, step


# ---------------------------------------------------------------- actionlint


def test_actionlint_passes_on_every_workflow(tmp_path: Path) -> None:
    proc = actionlint(ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # Again with the pins read as tags, so that every action input is checked too.
    proc = actionlint(copy_workflows(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _replace(old: str, new: str, count: int = 1):
    def mutate(text: str) -> str:
        assert old in text, f"mutation target {old!r} vanished: update this test"
        return text.replace(old, new, count)

    return mutate


BREAKAGES = {
    "unknown action input": (  # a typo of checkout's fetch-depth
        "ci.yml",
        _replace(
            "persist-credentials: false", "persist-credentials: false\n          fetch-dept: 1"
        ),
        'input "fetch-dept" is not defined',
    ),
    "undefined context in a secret expression": (
        "retrain.yml",
        _replace("${{ secrets.KFP_HOST }}", "${{ secret.KFP_HOST }}"),
        'undefined variable "secret"',
    ),
    "undefined dispatch input": (
        "retrain.yml",
        _replace("inputs.profile ||", "inputs.profil ||"),
        'property "profil" is not defined',
    ),
    "broken expression syntax": (
        "promote.yml",
        _replace("${{ inputs.candidate || 'challenger' }}", "${{ inputs.candidate || }}"),
        "unexpected end of input",
    ),
    "needs an unknown job": (
        "promote.yml",
        _replace("needs: [gate, build-image, canary]", "needs: [gate, build-img, canary]"),
        'needs job "build-img" which does not exist',
    ),
    "output of an unknown step": (
        "promote.yml",
        _replace("steps.gate.outputs.passed }}", "steps.gates.outputs.passed }}"),
        'property "gates" is not defined',
    ),
}


@pytest.mark.parametrize("case", sorted(BREAKAGES))
def test_actionlint_catches_a_broken_workflow(case: str, tmp_path: Path) -> None:
    name, mutate, message = BREAKAGES[case]
    proc = actionlint(copy_workflows(tmp_path, {name: mutate}))
    assert proc.returncode != 0, f"actionlint accepted a workflow with {case}"
    assert name in proc.stdout and message in proc.stdout, proc.stdout


@pytest.mark.skipif(not shutil.which("shellcheck"), reason="shellcheck not installed (apt)")
def test_shellcheck_runs_inside_actionlint(tmp_path: Path) -> None:
    broken = _replace("printf '%s' \"$KUBECONFIG_DATA\"", "printf '%s' $KUBECONFIG_DATA")
    proc = actionlint(copy_workflows(tmp_path, {"drift.yml": broken}))
    assert proc.returncode != 0 and "SC2086" in proc.stdout, proc.stdout


# ---------------------------------------------------------------- supply chain and privileges


def test_every_action_is_pinned_to_a_commit_with_its_version() -> None:
    pins: dict[str, set[str]] = {}
    for path in workflow_files():
        for n, line in enumerate(path.read_text().splitlines(), 1):
            m = USES.match(line)
            if not m or m["ref"].startswith("./"):
                continue
            pinned = PINNED.match(line)
            assert pinned, f"{path.name}:{n}: pin {m['ref']} to a full commit SHA + '# vX.Y.Z'"
            pins.setdefault(pinned["action"], set()).add(f"{pinned['sha']} {pinned['version']}")
    assert pins, "no actions found"
    mixed = {a: v for a, v in pins.items() if len(v) > 1}
    assert not mixed, f"one action, several pins: {mixed}"


def test_permissions_are_least_privilege(workflows: dict[str, Any]) -> None:
    for name, doc in workflows.items():
        top = doc.get("permissions")
        assert isinstance(top, dict), f"{name}: set top-level `permissions` explicitly"
        assert all(v in ("read", "none") for v in top.values()), f"{name}: top level is read-only"
        for job_id, job in doc["jobs"].items():
            perms = job.get("permissions")
            assert isinstance(perms, dict), f"{name}/{job_id}: give each job its own permissions"
            assert perms != "write-all", f"{name}/{job_id}: write-all"
            writes = {k for k, v in perms.items() if v == "write"}
            assert writes <= WRITE_SCOPES_ALLOWED, f"{name}/{job_id}: writes {writes}"


def test_secrets_reach_scripts_only_through_env(workflows: dict[str, Any]) -> None:
    for name, doc in workflows.items():
        for job_id, step in steps(doc):
            script = step.get("run", "")
            assert "secrets." not in script, f"{name}/{job_id}: a secret interpolated into run:"
            assert "${{" not in script, (
                f"{name}/{job_id}: expressions in run: scripts are injection-prone; use env"
            )


def test_jobs_have_timeouts_and_workflows_concurrency(workflows: dict[str, Any]) -> None:
    for name, doc in workflows.items():
        assert "concurrency" in doc, f"{name}: no concurrency group"
        for job_id, job in doc["jobs"].items():
            assert 0 < job.get("timeout-minutes", 0) <= 360, f"{name}/{job_id}: timeout-minutes"


def test_promotions_never_race(workflows: dict[str, Any]) -> None:
    group = workflows["promote.yml"]["concurrency"]
    # A fixed group (no run id, no ref) queues every promotion and rollback behind the
    # running one; cancelling one half-way would leave the route weights in between.
    assert "${{" not in group["group"] and group["cancel-in-progress"] is False
    assert workflows["retrain.yml"]["concurrency"]["cancel-in-progress"] is False


# ---------------------------------------------------------------- how the workflows fit together


def test_ci_runs_the_readme_test_command(workflows: dict[str, Any]) -> None:
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme
    scripts = [s.get("run", "") for _, s in steps(workflows["ci.yml"])]
    assert "make test" in scripts
    assert set(load_workflow(WORKFLOWS / "ci.yml")["on"]) >= {"pull_request", "push"}


def test_promote_follows_retrain(workflows: dict[str, Any]) -> None:
    trigger = workflows["promote.yml"]["on"]["workflow_run"]
    assert trigger["workflows"] == [workflows["retrain.yml"]["name"]]
    assert trigger["types"] == ["completed"]
    retrain_on = workflows["retrain.yml"]["on"]
    assert "schedule" in retrain_on and "workflow_dispatch" in retrain_on


def test_drift_dispatches_an_existing_retrain_input(workflows: dict[str, Any]) -> None:
    scripts = "\n".join(s.get("run", "") for _, s in steps(workflows["drift.yml"]))
    m = re.search(r"gh workflow run (\S+)(?:.|\n)*?-f (\w+)=", scripts)
    assert m, "drift.yml must dispatch retraining"
    target = workflows[m[1]]
    assert m[2] in target["on"]["workflow_dispatch"]["inputs"]


def test_full_traffic_waits_for_approval_and_only_a_passed_gate_deploys(
    workflows: dict[str, Any],
) -> None:
    jobs = workflows["promote.yml"]["jobs"]
    assert jobs["build-image"]["if"] == "needs.gate.outputs.passed == 'true'"
    assert "build-image" in jobs["canary"]["needs"]
    assert jobs["full-traffic"]["environment"]["name"] == "production"
    assert "canary" in jobs["full-traffic"]["needs"]
    # the rollback job must run when the approval is rejected, i.e. after a failure
    assert jobs["rollback"]["if"].startswith("always()")
    assert {"canary", "full-traffic"} <= set(jobs["rollback"]["needs"])


# ---------------------------------------------------------------- untrusted values


def test_no_environment_file_is_written(workflows: dict[str, Any]) -> None:
    """GITHUB_ENV / GITHUB_PATH change every later step's environment: a value that reaches
    them from an input, an artifact or a decision file is code execution. Outputs instead."""
    for name, doc in workflows.items():
        for job_id, step in steps(doc):
            script = step.get("run", "")
            assert "GITHUB_ENV" not in script and "GITHUB_PATH" not in script, f"{name}/{job_id}"


def test_promote_runs_only_for_trusted_retrain_runs(workflows: dict[str, Any]) -> None:
    trigger = workflows["promote.yml"]["on"]["workflow_run"]
    assert trigger["branches"] == ["main"]
    gate = workflows["promote.yml"]["jobs"]["gate"]
    for condition in (
        "github.event.workflow_run.head_branch == 'main'",
        "github.event.workflow_run.head_repository.full_name == github.repository",
        "github.event.workflow_run.conclusion == 'success'",
    ):
        assert condition in gate["if"], condition
    scripts = "\n".join(s.get("run", "") for s in gate["steps"])
    # the decision must be the triggering run's own, by id
    assert '"$own" != "$RETRAIN_RUN"' in scripts
    assert gate["env"]["RETRAIN_RUN"] == "${{ github.event.workflow_run.id }}"


def test_dispatch_inputs_are_validated_before_use(workflows: dict[str, Any]) -> None:
    """Every free-text dispatch input is matched against a pattern in the job's first step."""
    checked = 0
    for name in ("promote.yml", "retrain.yml", "drift.yml"):
        doc = workflows[name]
        inputs = doc["on"]["workflow_dispatch"].get("inputs", {})
        free = [k for k, v in inputs.items() if v.get("type") in ("string", "number")]
        for job_id, job in doc["jobs"].items():
            env = job.get("env", {})
            used = {k: v for k in free for v, expr in env.items() if f"inputs.{k}" in str(expr)}
            if not used:
                continue
            first = next(s for s in job["steps"] if "run" in s)
            assert first["name"] == "Validate the inputs", f"{name}/{job_id}"
            for key, var in used.items():
                assert f'"${var}" =~' in first["run"], f"{name}/{job_id}: {key} unchecked"
                checked += 1
    assert checked >= 5, checked


def test_retrain_is_scheduled_once_and_the_decision_found_by_run(workflows, rendered) -> None:
    """retrain.yml is the one scheduler: no recurring run is registered from the cluster,
    and the decision it hands on is looked up by the run's id, not by recency."""
    for objects in rendered.values():
        for obj in objects:
            assert "pipeline schedule" not in " ".join(
                str(c.get("command", "")) + str(c.get("args", "")) for c in _containers(obj)
            ) and "schedule, retrain" not in str(obj), obj["metadata"]["name"]
    job = workflows["retrain.yml"]["jobs"]["retrain"]
    fetch = next(s for s in job["steps"] if s.get("id") == "decision")
    assert "--tag" in fetch["run"] and "--retrain-run" in fetch["run"]
    local = next(s for s in job["steps"] if "--local" in s.get("run", ""))
    assert "artflow.retrain_run" in local["env"]["ARTFLOW_RUN_TAGS"]


def _containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    spec = obj.get("spec", {})
    pod = spec.get("jobTemplate", {}).get("spec", spec).get("template", {}).get("spec", {})
    return pod.get("containers", [])


# The MLflow identity each job acts as (docs/deploy.md, "Identities"): its GitHub environment
# holds that identity's MLFLOW_TRACKING_USERNAME/PASSWORD; the repository-level pair is the
# read-only `serving` one (build-image only reads the versions it packages).
IDENTITY_ENVIRONMENTS = {
    ("retrain.yml", "retrain"): "retrain",  # pipeline
    ("promote.yml", "gate"): "gate",  # gate
    ("promote.yml", "rollback"): "canary",  # gate (artflow rollback)
    ("drift.yml", "drift"): "drift",  # drift
    ("promote.yml", "build-image"): None,  # serving (read only)
}


def test_each_mlflow_client_job_takes_its_identity_from_its_environment(workflows) -> None:
    users = {
        (name, job_id): job.get("environment", {}).get("name")
        for name, doc in workflows.items()
        for job_id, job in doc["jobs"].items()
        if "secrets.MLFLOW_TRACKING_PASSWORD" in str(job.get("env", {}))
    }
    assert users == IDENTITY_ENVIRONMENTS
