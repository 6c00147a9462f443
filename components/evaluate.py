"""Evaluate component: compare the new classifier versions on validation, pick the challenger."""

from kfp.dsl import ClassificationMetrics, Markdown, Metrics, Model, Output

from components.common import component


@component
def evaluate_op(
    profile: str,
    mlflow_uri: str,
    versions: list[str],
    candidate: Output[Model],
    metrics: Output[Metrics],
    confusion: Output[ClassificationMetrics],
    comparison: Output[Markdown],
) -> str:
    """Best validation macro-F1 among `versions` (every classifier family's training step's
    output, pipelines/steps.py; '' for one switched off) becomes `challenger` (the
    `candidate` Model); its confusion matrix and the registry's comparison table are the
    reports."""
    from artflow import stages

    def work(settings) -> dict:
        result = stages.select_candidate(stages.trained_versions(versions))
        stages.publish_model(result, candidate)
        stages.log_metrics(result, metrics)
        stages.log_confusion(result, confusion, "val")
        body = result.get("comparison") or result.get("reason", "")
        stages.write_markdown(comparison, "classifier versions", body)
        return result

    outputs = {"candidate": candidate, "metrics": metrics, "confusion": confusion}
    outputs["comparison"] = comparison
    return str(stages.run("evaluate", profile, mlflow_uri, outputs, work).get("version") or "")
