"""Every `artflow ...` and `make ...` that the workflows and the cluster jobs run must exist:
the artflow command path in the CLI (walked from the Typer app, options included) and the
target in the Makefile. A renamed command or flag then fails here, not in a 3 a.m. cron."""

from __future__ import annotations

import re
import shlex
import shutil
from collections.abc import Iterator
from typing import Any

import pytest
import typer

from tests.infra.conftest import ROOT, load_workflow, workflow_files

SEPARATORS = re.compile(r"&&|\|\||[;|]")


def script_commands(script: str) -> Iterator[list[str]]:
    """Shell words of each simple command in a script (continuations joined, heredocs and
    comments dropped); good enough for the plain scripts the workflows hold."""
    script = script.replace("\\\n", " ")
    heredoc_end = None
    for line in script.splitlines():
        if heredoc_end is not None:
            heredoc_end = None if line.strip() == heredoc_end else heredoc_end
            continue
        if m := re.search(r"<<-?\s*'?(\w+)'?", line):
            heredoc_end = m[1]
            line = line[: m.start()]
        for part in SEPARATORS.split(line):
            try:
                words = shlex.split(part, comments=True)
            except ValueError:
                continue
            while words and re.match(r"^\w+=", words[0]):  # VAR=value prefixes
                words.pop(0)
            if words:
                yield words


def workflow_scripts() -> Iterator[tuple[str, str]]:
    for path in workflow_files():
        for job_id, job in load_workflow(path)["jobs"].items():
            for step in job.get("steps", []):
                if "run" in step:
                    yield f"{path.name}/{job_id}", step["run"]


def manifest_commands(objects: list[dict[str, Any]]) -> Iterator[tuple[str, list[str]]]:
    """Container commands of the rendered manifests; `bash -c SCRIPT` is split like a step."""
    for obj in objects:
        spec = obj.get("spec", {})
        pod = spec.get("jobTemplate", {}).get("spec", spec).get("template", {}).get("spec", {})
        for c in pod.get("containers", []):
            cmd = [*c.get("command", []), *c.get("args", [])]
            where = f"{obj['kind']}/{obj['metadata']['name']}"
            if cmd[:1] in (["bash"], ["sh"]):
                for words in script_commands(cmd[-1]):
                    yield where, words
            elif cmd:
                yield where, cmd


def invocations(program: str, rendered: dict[str, list[dict[str, Any]]]):
    found = []
    for where, script in workflow_scripts():
        found += [(where, w) for w in script_commands(script) if w[0].split("/")[-1] == program]
    for objects in rendered.values():
        found += [(w, c) for w, c in manifest_commands(objects) if c[0] == program]
    return found


def resolve(root: Any, argv: list[str]) -> list[str]:
    """Problems with `artflow argv...`: unknown sub-commands, options or extra arguments.

    Duck-typed on click's command API: typer 0.29 vendors its own click (typer._click), so
    isinstance checks against the public click package would see no groups at all.
    """
    cmd, args = root, list(argv)
    while hasattr(cmd, "list_commands"):
        if getattr(cmd, "invoke_without_command", False) and (not args or args[0][0] == "-"):
            break  # a group with its own callback, e.g. `artflow drift --window 1d`
        if not args:
            return [f"`{cmd.name}` needs a sub-command"]
        sub = cmd.get_command(None, args[0])
        if sub is None:
            known = ", ".join(sorted(cmd.list_commands(None)))
            return [f"no command `{args[0]}` under `{cmd.name}` (has: {known or 'nothing'})"]
        cmd, args = sub, args[1:]
    opts = [p for p in cmd.params if p.param_type_name == "option"]
    options = {o for p in opts for o in (*p.opts, *p.secondary_opts)}
    flags = {o for p in opts if p.is_flag for o in (*p.opts, *p.secondary_opts)}
    positional = [p for p in cmd.params if p.param_type_name == "argument"]
    problems, free = [], []
    while args:
        word = args.pop(0)
        if word.startswith("-"):
            name = word.split("=", 1)[0]
            if name not in options:
                problems.append(f"`{cmd.name}` has no option {name}")
            elif "=" not in word and name not in flags and args:
                args.pop(0)  # the option's value
        else:
            free.append(word)
    if len(free) > sum(max(p.nargs, 1) if p.nargs != -1 else 99 for p in positional):
        problems.append(f"`{cmd.name}` takes {len(positional)} argument(s), got {free}")
    return problems


@pytest.fixture(scope="module")
def manifests(request: pytest.FixtureRequest) -> dict[str, list[dict[str, Any]]]:
    """The rendered overlays when kubectl is here; else the workflows are checked alone."""
    if shutil.which("kubectl") is None:
        return {}
    return request.getfixturevalue("rendered")


@pytest.fixture(scope="module")
def cli() -> Any:
    from artflow.cli import app

    return typer.main.get_command(app)


def test_artflow_commands_in_workflows_and_jobs_exist(cli: Any, manifests) -> None:
    calls = invocations("artflow", manifests)
    assert len(calls) >= 10, f"expected the workflows' artflow calls, found {calls}"
    problems = [
        f"{where}: artflow {' '.join(argv[1:])}: {p}"
        for where, argv in calls
        for p in resolve(cli, argv[1:])
    ]
    assert not problems, "\n".join(problems)


def test_make_targets_called_by_workflows_exist() -> None:
    targets = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), re.M))
    calls = invocations("make", {})
    assert {"install", "test"} <= {argv[1] for _, argv in calls}
    missing = [f"{where}: make {argv[1]}" for where, argv in calls if argv[1] not in targets]
    assert not missing, missing


def test_the_resolver_rejects_what_does_not_exist(cli: Any) -> None:
    """The checker itself: made-up commands and options must be reported."""
    assert resolve(cli, ["promote", "m", "--candidate", "challenger"]) == []
    assert resolve(cli, ["no-such-command"])
    assert resolve(cli, ["promote", "m", "--no-such-option"])
    assert resolve(cli, ["models"]) == ["`models` needs a sub-command"]
    words = list(script_commands("a=1 .venv/bin/artflow x \\\n  --y z && make test # c"))
    assert words == [[".venv/bin/artflow", "x", "--y", "z"], ["make", "test"]]


def test_kubectl_calls_target_what_the_manifests_define(rendered) -> None:
    """`kubectl set image/env`, `rollout`, `exec` in the workflows name real Deployments,
    containers and (for the version pin) an env variable the container already declares."""
    deployments = {
        o["metadata"]["name"]: o["spec"]["template"]["spec"]["containers"]
        for o in rendered["production"]
        if o["kind"] == "Deployment"
    }
    calls = invocations("kubectl", {})
    assert len(calls) >= 8, calls
    problems = []
    for where, argv in calls:
        args = [a for i, a in enumerate(argv[1:]) if a != "-n" and argv[i] != "-n"]
        targets = [a.split("/", 1)[1] for a in args if a.startswith("deployment/")]
        for name in targets:
            if name not in deployments:
                problems.append(f"{where}: no Deployment {name}")
                continue
            containers = {c["name"]: c for c in deployments[name]}
            assigned = [a.split("=", 1)[0] for a in args if "=" in a and not a.startswith("-")]
            if args[:2] == ["set", "image"]:
                problems += [
                    f"{where}: {name} has no container {c}" for c in assigned if c not in containers
                ]
            if args[:2] == ["set", "env"]:
                declared = {e["name"] for c in containers.values() for e in c.get("env", [])}
                problems += [
                    f"{where}: {name} declares no env {v}" for v in assigned if v not in declared
                ]
            if "-c" in args and args[args.index("-c") + 1] not in containers:
                problems.append(f"{where}: {name} has no container {args[args.index('-c') + 1]}")
    assert not problems, "\n".join(problems)
