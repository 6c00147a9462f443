"""Evaluate component: compare the new classifier versions on validation, pick the challenger."""

from kfp.dsl import HTML, Input, Metrics, Model, Output

from components.common import cpu_component


@cpu_component
def evaluate_op(
    workdir: str,
    profile: str,
    mlflow_uri: str,
    force: bool,
    cnn_version: str,
    resnet_version: str,
    cnn: Input[Model],
    resnet: Input[Model],
    candidate: Output[Model],
    metrics: Output[Metrics],
    comparison: Output[HTML],
) -> str:
    """Best validation macro-F1 becomes `challenger`; the registry comparison is the report."""
    from artflow import stages

    result = stages.select_candidate(
        workdir, [cnn_version, resnet_version], profile, mlflow_uri, force
    )
    stages.publish(result, metrics=metrics, model=candidate)
    report = result.get("comparison") or result.get("reason", "")
    stages.publish_html(comparison, "classifier versions", report)
    return str(result["version"])
