"""Pieces the pipelines share: the data steps, a family's training + gate, the classifiers
(every classifier family of the table).

A pipeline's own function declares its parameters (kfp reads them from its signature) and
composes these pieces; the logic lives here once.

Every task gets its image, resources, retries, deadline and Kubernetes settings from
`configure`, and its cache key's environment variable and caching from the step's declaration
(`artflow.stages.keys`).
"""

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from artflow import families, stages
from artflow.config import Settings
from artflow.families import CLASSIFIER
from components.common import IDENTITY_MOUNT, TaskSettings, configure
from components.data import ingest_op, sample_op, validate_op
from components.evaluate import evaluate_op
from components.gate import gate_op
from components.novelty import novelty_op
from components.train import train_op
from pipelines import images


@dataclass
class Common:
    """What every step receives: the pipeline's own parameters; and how its tasks are built
    (`local`: for kfp's local runner, else for a cluster)."""

    settings: Settings
    local: bool
    profile: Any
    mlflow_uri: Any

    @cached_property
    def image_tag(self) -> str:
        return images.image_tag(self.settings.pipeline, self.local)  # one `git` call per build

    def image_env(self, kind: str) -> dict[str, str]:
        """A training step with `training.workers` > 1 launches a TFJob whose pods run the
        step's own image tag (artflow.classify.trainjob)."""
        if kind != "train" or self.settings.training.workers < 2:
            return {}
        from artflow.classify.trainjob import IMAGE_TAG_ENV

        return {IMAGE_TAG_ENV: self.image_tag}

    def params(self) -> dict[str, Any]:
        """The parameters every component takes."""
        return {"profile": self.profile, "mlflow_uri": self.mlflow_uri}

    def add(self, task: Any, name: str) -> Any:
        """Configure `task`, the pipeline step `name` (`train_<family>`, `gate`, ...)."""
        cfg = self.settings.pipeline
        declared = stages.step(name)
        kind = "train" if name.startswith("train_") or name == "gatys_search" else name
        gpu = not self.local and name in cfg.gpu_steps and cfg.gpu_limit > 0
        how = TaskSettings(
            image=images.reference(cfg.gpu_image if gpu else cfg.base_image, self.image_tag),
            gpu=gpu,
            cache=declared.local_cache if self.local else declared.cluster_cache,
            env={
                stages.ENV: stages.step_key(name, self.settings),
                **self.image_env(kind),
                **families.modules_env(),  # families declared outside artflow
            },
            retries=0 if self.local else cfg.retries.get(kind, 0),
            timeout_s=cfg.train_timeout_s if kind == "train" else cfg.timeout_s,
            **self.identity("gate" if kind == "gate" else "pipeline"),
        )
        return configure(task, cfg, how)

    def identity(self, name: str) -> dict[str, str]:
        """The step's MLflow identity (the gate steps `gate`, the only one that may move
        champion; the others `pipeline`): on a cluster its Secret mounted as a file; locally a
        file of `pipeline.local_identities`, else none (the runner's own environment)."""
        cfg = self.settings.pipeline
        if self.local:
            if not cfg.local_identities:
                return {}
            return {"identity": name, "identity_file": str(Path(cfg.local_identities) / name)}
        if name not in cfg.mlflow_identity_secrets:
            return {}
        secret = cfg.mlflow_identity_secrets[name]
        return {
            "identity": name,
            "identity_file": f"{IDENTITY_MOUNT}/password",
            "identity_secret": secret,
        }


def data_steps(common: Common, source: Any, source_key: Any) -> tuple[Any, Any]:
    """ingest -> validate -> sample; returns the `data` and `splits` artifacts."""
    ingested = ingest_op(source=source, source_key=source_key, **common.params())
    data = common.add(ingested, "ingest").outputs["data"]
    validated = common.add(validate_op(data=data, **common.params()), "validate")
    validation = validated.outputs["validation"]
    sampled = common.add(sample_op(data=data, validation=validation, **common.params()), "sample")
    return data, sampled.outputs["splits"]


def train(
    common: Common, family: str, data: Any, splits: Any, tune: Any, enabled: Any, **more: Any
) -> Any:
    task = train_op(
        family=family,
        tune=tune,
        enabled=enabled,
        data=data,
        splits=splits,
        **more,
        **common.params(),
    )
    task.set_display_name(f"train-{family}")
    return common.add(task, f"train_{family}")


def gate(common: Common, model_name: str, data: Any, splits: Any, candidate: Any) -> Any:
    task = gate_op(
        model_name=model_name, data=data, splits=splits, candidate=candidate, **common.params()
    )
    task.set_display_name(f"gate-{model_name}")
    return common.add(task, "gate")


def novelty(common: Common, family: str, data: Any, splits: Any, trained: Any, gate: Any) -> Any:
    """The novelty model of the version `trained` registered, once the gate has decided."""
    task = novelty_op(data=data, splits=splits, model=trained.outputs["model"], **common.params())
    task.set_display_name(f"novelty-{family}").after(gate)
    return common.add(task, "novelty")


def train_and_gate(
    common: Common, family: str, data: Any, splits: Any, after: Any = None, only: Any = ""
) -> Any:
    """One family trained (once the task `after` is done; unless `only` names other families)
    and its version gated on its own (the style models); returns the gate task."""
    trained = train(common, family, data, splits, tune=False, enabled=True, only=only)
    if after is not None:
        trained.after(after)
    model_name = families.get(family).registry_name
    return gate(common, model_name, data, splits, trained.outputs["model"])


def classifier_steps(
    common: Common, data: Any, splits: Any, tune: Any, switches: dict[str, Any], model_name: str
) -> Any:
    """Every classifier family of the table (artflow.families) trained in parallel -> evaluate
    (the challenger, from every family's version) -> gate -> each new version's novelty
    model. `switches`: a family's on/off pipeline parameter (on when it has none); `tune`
    reaches the families that have a search."""
    trained = {}
    for family in families.names("classifier"):
        tuned = tune if families.get(family).tune else False
        enabled = switches.get(family, True)
        trained[family] = train(common, family, data, splits, tuned, enabled)
    versions = [task.outputs["Output"] for task in trained.values()]
    chosen = common.add(evaluate_op(versions=versions, **common.params()), "evaluate")
    gated = gate(common, model_name, data, splits, chosen.outputs["candidate"])
    for family, task in trained.items():
        novelty(common, family, data, splits, task, gated)
    return gated


def classifier_training(
    common: Common, source: Any, source_key: Any, tune: Any, train_resnet: Any
) -> Any:
    """The data steps, then the classifiers trained, evaluated, gated and given their novelty
    models: the whole training pipeline, and the retrain's when its drift check says so
    (`train_resnet` switches the ResNet50 family)."""
    data, splits = data_steps(common, source, source_key)
    switches = {"resnet50": train_resnet}
    return classifier_steps(common, data, splits, tune, switches, CLASSIFIER)
