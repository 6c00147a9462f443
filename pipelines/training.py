"""The training pipeline: validate -> sample -> CNN and ResNet50 in parallel -> evaluate -> gate.

The data must already be ingested into `workdir` (`artflow data ingest`, or the retrain
pipeline). Every step reads and writes that data version; the typed artifacts between the
steps carry the small outputs (split files, model URIs, metrics, reports) and the order.
"""

from kfp import dsl

from artflow.tracking import CLASSIFIER
from components.common import resources
from components.data import sample_op, validate_op
from components.evaluate import evaluate_op
from components.gate import gate_op
from components.train import train_cnn_op, train_resnet50_op


@dsl.pipeline(name="artflow-training", description="Train both classifier families and gate.")
def training_pipeline(
    workdir: str,
    profile: str = "",
    mlflow_uri: str = "",
    force: bool = False,
    tune: bool = False,
    train_resnet: bool = True,
):
    ctx = dict(workdir=workdir, profile=profile, mlflow_uri=mlflow_uri, force=force)
    validated = resources(validate_op(**ctx))
    validated.set_caching_options(False)  # reads the mutable workdir; the stamps skip instead
    sampled = resources(sample_op(validation=validated.outputs["summary"], **ctx))
    sampled.set_caching_options(False)
    splits = sampled.outputs["splits"]
    cnn = resources(train_cnn_op(splits=splits, tune=tune, enabled=True, **ctx), gpu=True)
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
    resources(
        gate_op(
            model_name=CLASSIFIER,
            candidate_version=chosen.outputs["Output"],
            candidate=chosen.outputs["candidate"],
            **ctx,
        )
    ).set_caching_options(False)  # the champion may have moved since: always decide afresh
