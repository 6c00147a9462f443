"""Pieces the pipelines share: the data steps, a family's training + gate, the classifiers.

A pipeline's own function declares its parameters (kfp reads them from its signature) and
composes these pieces; the logic lives here once.

Every task gets its image, resources and Kubernetes settings from `configure`, and Kubeflow's
caching from the step's declaration (`artflow.stages.step`).
"""

from dataclasses import dataclass, fields
from typing import Any

from artflow import stages
from artflow.config import PipelineCfg
from artflow.families import CLASSIFIER
from components.common import configure
from components.data import ingest_op, sample_op, validate_op
from components.evaluate import evaluate_op
from components.gate import gate_op
from components.train import train_op


@dataclass
class Common:
    """What every step receives: the pipeline's own parameters and the cluster settings."""

    cfg: PipelineCfg
    profile: Any
    mlflow_uri: Any
    cache_dir: Any
    force: Any

    def params(self) -> dict[str, Any]:
        """The parameters every component takes (all fields but the cluster settings)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "cfg"}

    def kfp_cache(self, name: str) -> bool:
        return stages.step(name).kfp_cache

    def add(self, task: Any, name: str, gpu: bool = False) -> Any:
        return configure(task, self.cfg, gpu=gpu, cache=self.kfp_cache(name))


def data_steps(common: Common, source: Any, enabled: Any) -> tuple[Any, Any]:
    """ingest -> validate -> sample; returns the `data` and `splits` artifacts."""
    ingested = common.add(ingest_op(source=source, enabled=enabled, **common.params()), "ingest")
    data = ingested.outputs["data"]
    validated = common.add(validate_op(data=data, **common.params()), "validate")
    validation = validated.outputs["validation"]
    sampled = common.add(sample_op(data=data, validation=validation, **common.params()), "sample")
    return data, sampled.outputs["splits"]


def train(common: Common, family: str, data: Any, splits: Any, tune: Any, enabled: Any) -> Any:
    task = train_op(
        family=family, tune=tune, enabled=enabled, data=data, splits=splits, **common.params()
    )
    task.set_display_name(f"train-{family}")
    return common.add(task, f"train_{family}", gpu=True)


def gate(common: Common, model_name: str, data: Any, splits: Any, candidate: Any) -> Any:
    task = gate_op(
        model_name=model_name, data=data, splits=splits, candidate=candidate, **common.params()
    )
    task.set_display_name(f"gate-{model_name}")
    return common.add(task, "gate")


def train_and_gate(common: Common, family: str, data: Any, splits: Any, after: Any = None) -> Any:
    """One family trained (once the task `after` is done) and its version gated on its own
    (the style models); returns the gate task."""
    from artflow import families

    trained = train(common, family, data, splits, tune=False, enabled=True)
    if after is not None:
        trained.after(after)
    model_name = families.get(family).registry_name
    return gate(common, model_name, data, splits, trained.outputs["model"])


def classifier_steps(
    common: Common,
    data: Any,
    splits: Any,
    tune: Any,
    cnn_enabled: Any,
    resnet_enabled: Any,
    model_name: str,
) -> Any:
    """CNN and ResNet50 in parallel -> evaluate (the challenger) -> gate."""
    cnn = train(common, "cnn", data, splits, tune, cnn_enabled)
    resnet = train(common, "resnet50", data, splits, False, resnet_enabled)
    chosen = evaluate_op(
        cnn=cnn.outputs["model"], resnet=resnet.outputs["model"], **common.params()
    )
    common.add(chosen, "evaluate")
    return gate(common, model_name, data, splits, chosen.outputs["candidate"])


def classifier_training(
    common: Common, source: Any, enabled: Any, tune: Any, train_resnet: Any
) -> Any:
    """The data steps, then the classifiers trained, evaluated and gated: the whole training
    pipeline, and the retrain's after its drift check (`enabled` is the check's verdict)."""
    data, splits = data_steps(common, source, enabled=enabled)
    return classifier_steps(common, data, splits, tune, enabled, train_resnet, CLASSIFIER)
