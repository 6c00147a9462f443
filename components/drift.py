"""Drift component: decides whether the scheduled retrain goes ahead (an output, not a branch)."""

from typing import NamedTuple

from kfp.dsl import HTML, Metrics, Output

from components.common import cpu_component


@cpu_component
def drift_check_op(
    workdir: str,
    profile: str,
    mlflow_uri: str,
    policy: str,
    prediction_log: str,
    trigger_report: str,
    verdict: Output[Metrics],
    report: Output[HTML],
) -> NamedTuple("DriftOutputs", [("retrain", bool), ("reason", str)]):
    """Evidently drift of recent predictions vs the reference; `retrain` for the next steps."""
    from collections import namedtuple

    from artflow import stages

    result = stages.drift_check(
        workdir, policy, prediction_log, "champion", profile, mlflow_uri, trigger_report
    )
    stages.publish(result, metrics=verdict)
    stages.publish_html(report, "drift", result["reason"], source=result["report_html"])
    return namedtuple("DriftOutputs", ["retrain", "reason"])(result["retrain"], result["reason"])
