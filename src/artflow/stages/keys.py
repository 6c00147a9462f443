"""What each step's cache key covers besides its parameters and inputs: its code and the
settings its answer depends on.

kfp's cache key (locally and on a cluster) is the component name, the image, the command,
the arguments and the environment. A lightweight component's command embeds its own
function's source but not the artflow code it calls, and the `profile` argument names the
settings without their content. So every task carries one environment variable, `STEP_KEY`
(`step_key`), a digest of

- the artflow package's version and the code the step runs: every module of the package
  (as its AST, so comments and formatting do not count), except the code that belongs to
  some model families only: a function named by one family alone in `artflow.families`
  (`fit_cnn`, `tune_cnn`, ...) and a family's own folder (`OWN_PACKAGES`) count only in that
  family's training step. Editing the CNN's fit re-runs `train_cnn` (and the steps after it,
  whose inputs then change); editing docs, tests or another family's code re-runs nothing;
- the settings sections the step declares (`STEPS`, and the family's for training), with the
  seed.

A training step's key covers the tuner's settings too (whether it tunes is a run parameter,
unknown when the pipeline is built).
"""

from __future__ import annotations

import ast
import hashlib
import importlib.metadata
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from artflow import families
from artflow.config import Settings

ENV = "ARTFLOW_STEP_KEY"


@dataclass(frozen=True)
class Step:
    """sections: the settings its answer depends on (seed always included).
    cluster_cache: whether Kubeflow may reuse a finished run with the same key on a cluster.
    local_cache: the same for kfp's local runner, which also checks what kfp's key cannot see
    (the source's content, whether a recorded gate decision still holds: pipelines/cache.py)."""

    sections: tuple[str, ...]
    cluster_cache: bool = True
    local_cache: bool = True


STEPS: dict[str, Step] = {
    # the source may change under the same name; locally its fingerprint is a parameter
    "ingest": Step(("data",), cluster_cache=False),
    "validate": Step(("validate",)),
    "sample": Step(("sample",)),
    "evaluate": Step(()),
    # the champion moves between runs; locally a decision is kept while it has not moved
    "gate": Step(("gate",), cluster_cache=False),
    "drift": Step(("drift",), cluster_cache=False, local_cache=False),  # traffic changes
    "novelty": Step(("novelty", "drift")),
    "gatys_search": Step(("nst",)),
}

# Folders whose code only these steps run (each family's own code, docs/architecture.md).
OWN_PACKAGES: dict[str, tuple[str, ...]] = {
    "artflow.style.adain": ("train_stylizer", "train_fast_stylizer"),
    "artflow.style.cyclegan": ("train_cyclegan",),
    "artflow.style.gatys": ("gatys_search",),
}


def step(name: str) -> Step:
    """The declaration of step `name`; `train_<family>` comes from the family's declaration."""
    if name.startswith("train_"):
        family = families.get(name.removeprefix("train_"))
        return Step(family.key_sections(tune=True))
    return STEPS[name]


def step_key(name: str, settings: Settings) -> str:
    """The value of `ENV` for step `name`: its code and its declared settings."""
    dumped = settings.model_dump(by_alias=True)
    payload = {
        "code": code_digest(name),
        "settings": {s: dumped[s] for s in step(name).sections},
        "seed": settings.seed,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def code_digest(name: str) -> str:
    """The package version, the shared code and the code that is step `name`'s own."""
    own_functions, _ = _owned()
    digest = hashlib.sha256(_version().encode())
    digest.update(_shared_digest(frozenset(_owned()[1])).encode())
    for module, function in sorted(own_functions.get(name, ())):
        node = _functions(module).get(function)
        digest.update(f"{module}:{function}\n{ast.dump(node) if node else ''}".encode())
    for package, steps in sorted(OWN_PACKAGES.items()):
        if name in steps:
            for module, tree in _package_modules(package):
                digest.update(f"{module}\n{ast.dump(tree)}".encode())
    return digest.hexdigest()


def _version() -> str:
    try:
        return importlib.metadata.version("artflow")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _owned() -> tuple[dict[str, set[tuple[str, str]]], set[tuple[str, str]]]:
    """(step -> its own functions, every function owned by some step): the functions in
    artflow named by one family only (train_classifier, shared by every classifier, is not)."""
    named: dict[tuple[str, str], set[str]] = {}
    for fam in families.names():
        declared = families.get(fam)
        for ref in (declared.fit, declared.train, declared.tune):
            if isinstance(ref, str) and ref.startswith("artflow."):
                module, _, function = ref.partition(":")
                named.setdefault((module, function), set()).add(f"train_{fam}")
    per_step: dict[str, set[tuple[str, str]]] = {}
    for ref, steps in named.items():
        if len(steps) == 1:
            per_step.setdefault(next(iter(steps)), set()).add(ref)
    return per_step, {ref for refs in per_step.values() for ref in refs}


@cache
def _shared_digest(owned: frozenset[tuple[str, str]]) -> str:
    """Every module outside OWN_PACKAGES, without the functions some step owns."""
    digest = hashlib.sha256()
    for module, tree in _modules():
        if any(module == p or module.startswith(p + ".") for p in OWN_PACKAGES):
            continue
        body = [
            node
            for node in tree.body
            if not (isinstance(node, ast.FunctionDef) and (module, node.name) in owned)
        ]
        digest.update(f"{module}\n{ast.dump(ast.Module(body=body, type_ignores=[]))}".encode())
    return digest.hexdigest()


def _package_modules(package: str) -> list[tuple[str, ast.Module]]:
    return [(m, t) for m, t in _modules() if m == package or m.startswith(package + ".")]


def _functions(module: str) -> dict[str, ast.FunctionDef]:
    trees = dict(_modules())
    tree = trees.get(module)
    return {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)} if tree else {}


def package_root() -> Path:
    """The artflow package the steps import: the one this process imports (the steps run
    under the same interpreter and environment, locally and in the image)."""
    import artflow

    return Path(artflow.__file__).parent


@cache
def _modules() -> tuple[tuple[str, ast.Module], ...]:
    """(module name, AST) of every module of the artflow package (`package_root`)."""
    root = package_root()
    out = []
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out.append((name, ast.parse(path.read_text(encoding="utf-8"), str(path))))
    return tuple(out)
