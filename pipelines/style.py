"""The style pipeline: validate -> sample -> AdaIN stylizer and CycleGAN in parallel -> gates."""

from kfp import dsl

from artflow.tracking import CYCLEGAN, STYLIZER
from components.common import resources
from components.data import sample_op, validate_op
from components.gate import gate_op
from components.train import train_cyclegan_op, train_stylizer_op


@dsl.pipeline(name="artflow-style", description="Train the stylizer and the CycleGAN; gate each.")
def style_pipeline(workdir: str, profile: str = "", mlflow_uri: str = "", force: bool = False):
    ctx = dict(workdir=workdir, profile=profile, mlflow_uri=mlflow_uri, force=force)
    validated = resources(validate_op(**ctx))
    validated.set_caching_options(False)
    sampled = resources(sample_op(validation=validated.outputs["summary"], **ctx))
    sampled.set_caching_options(False)
    splits = sampled.outputs["splits"]
    for train_op, name in ((train_stylizer_op, STYLIZER), (train_cyclegan_op, CYCLEGAN)):
        trained = resources(train_op(splits=splits, **ctx), gpu=True)
        gated = gate_op(
            model_name=name,
            candidate_version=trained.outputs["Output"],
            candidate=trained.outputs["model"],
            **ctx,
        )
        resources(gated).set_caching_options(False)
