"""The scheduled retrain: drift check -> (if it says so) ingest the current data -> validate
-> train -> evaluate -> gate -> novelty.

The drift step's output (retrain or not) is a real `dsl.If` condition: kfp 2.17's local
runner runs the branch only when it holds, as a cluster does (docs/stack-notes.md). `source` and
`mlflow_uri` are parameters, so the drift job can submit it with its own configuration.
"""

from kfp import dsl

from artflow.config import Settings
from components.drift import drift_check_op
from pipelines.steps import Common, classifier_training


def build(settings: Settings, local: bool = False) -> dsl.base_component.BaseComponent:
    @dsl.pipeline(name="artflow-retrain", description="Retrain on drift (or always) and gate.")
    def retrain_pipeline(
        source: str,
        source_key: str = "",
        policy: str = "drift",
        prediction_log: str = "",
        trigger_report: str = "",
        profile: str = "",
        mlflow_uri: str = "",
        tune: bool = False,
        train_resnet: bool = False,
    ):
        common = Common(settings, local, profile, mlflow_uri)
        drift = drift_check_op(
            policy=policy,
            prediction_log=prediction_log,
            trigger_report=trigger_report,
            **common.params(),
        )
        common.add(drift, "drift")
        with dsl.If(drift.outputs["Output"] == True, name="retrain"):  # noqa: E712 (kfp's DSL)
            classifier_training(common, source, source_key, tune, train_resnet)

    return retrain_pipeline
