"""The scheduled retrain: drift check -> ingest the current data -> validate -> train -> gate.

The drift step's `retrain` output switches the expensive steps on or off from the inside
(they receive it as `enabled`), because conditionals (dsl.If) do not run locally.
"""

from kfp import dsl

from artflow.tracking import CLASSIFIER
from components.common import resources
from components.data import ingest_op, sample_op, validate_op
from components.drift import drift_check_op
from components.evaluate import evaluate_op
from components.gate import gate_op
from components.train import train_cnn_op, train_resnet50_op


@dsl.pipeline(name="artflow-retrain", description="Retrain on drift (or always) and gate.")
def retrain_pipeline(
    workdir: str,
    source: str = "",
    policy: str = "drift",
    prediction_log: str = "",
    trigger_report: str = "",
    profile: str = "",
    mlflow_uri: str = "",
    force: bool = False,
    tune: bool = False,
    train_resnet: bool = False,
):
    ctx = dict(workdir=workdir, profile=profile, mlflow_uri=mlflow_uri, force=force)
    drift = resources(
        drift_check_op(
            workdir=workdir,
            profile=profile,
            mlflow_uri=mlflow_uri,
            policy=policy,
            prediction_log=prediction_log,
            trigger_report=trigger_report,
        )
    )
    drift.set_caching_options(False)  # traffic changes between runs
    retrain = drift.outputs["retrain"]
    ingested = resources(ingest_op(source=source, enabled=retrain, **ctx))
    validated = resources(validate_op(**ctx)).after(ingested)
    sampled = resources(sample_op(validation=validated.outputs["summary"], **ctx))
    splits = sampled.outputs["splits"]
    cnn = resources(train_cnn_op(splits=splits, tune=tune, enabled=retrain, **ctx), gpu=True)
    resnet = resources(train_resnet50_op(splits=splits, enabled=train_resnet, **ctx), gpu=True)
    chosen = resources(
        evaluate_op(
            cnn_version=cnn.outputs["Output"],
            resnet_version=resnet.outputs["Output"],
            cnn=cnn.outputs["model"],
            resnet=resnet.outputs["model"],
            **ctx,
        )
    )
    gated = gate_op(
        model_name=CLASSIFIER,
        candidate_version=chosen.outputs["Output"],
        candidate=chosen.outputs["candidate"],
        **ctx,
    )
    for task in (ingested, validated, sampled, resources(gated)):
        task.set_caching_options(False)
