"""The scheduled retrain: drift check -> ingest the current data -> validate -> train -> gate.

The drift step's `retrain` output switches the later steps on or off from the inside
(`enabled`), because conditionals (dsl.If) do not run in kfp's local runner. `source` and
`mlflow_uri` are parameters, so the drift job can submit it with its own configuration.
"""

from kfp import dsl

from artflow.config import Settings
from components.common import configure
from components.drift import drift_check_op
from pipelines.steps import Common, classifier_training


def build(settings: Settings) -> dsl.base_component.BaseComponent:
    @dsl.pipeline(name="artflow-retrain", description="Retrain on drift (or always) and gate.")
    def retrain_pipeline(
        source: str,
        policy: str = "drift",
        prediction_log: str = "",
        trigger_report: str = "",
        profile: str = "",
        mlflow_uri: str = "",
        cache_dir: str = "",
        force: bool = False,
        tune: bool = False,
        train_resnet: bool = False,
    ):
        common = Common(settings.pipeline, profile, mlflow_uri, cache_dir, force)
        drift = drift_check_op(
            profile=profile,
            mlflow_uri=mlflow_uri,
            policy=policy,
            prediction_log=prediction_log,
            trigger_report=trigger_report,
        )
        configure(drift, settings.pipeline, cache=common.kfp_cache("drift"))
        classifier_training(common, source, drift.outputs["retrain"], tune, train_resnet)

    return retrain_pipeline
