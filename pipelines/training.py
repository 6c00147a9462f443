"""The training pipeline: ingest -> validate -> sample -> CNN and ResNet50 -> evaluate -> gate
-> each new version's novelty model.

Every step reads only its input artifacts and parameters (docs/pipelines.md): the data source is
the ingest step's parameter, the images travel as the `data` Dataset, the splits as `splits`.
"""

from kfp import dsl

from artflow.config import Settings
from pipelines.steps import Common, classifier_training


def build(settings: Settings, local: bool = False) -> dsl.base_component.BaseComponent:
    """The pipeline, configured (images, resources, GPU pool, secret) from `settings`."""

    @dsl.pipeline(name="artflow-training", description="Train both classifiers and gate.")
    def training_pipeline(
        source: str,
        source_key: str = "",
        profile: str = "",
        mlflow_uri: str = "",
        tune: bool = False,
        train_resnet: bool = True,
    ):
        common = Common(settings, local, profile, mlflow_uri)
        classifier_training(common, source, source_key, tune, train_resnet)

    return training_pipeline
