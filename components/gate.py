"""Gate component: the promotion decision is an output (Metrics + HTML), never a branch."""

from kfp.dsl import HTML, Input, Metrics, Model, Output

from components.common import cpu_component


@cpu_component
def gate_op(
    workdir: str,
    profile: str,
    mlflow_uri: str,
    force: bool,
    model_name: str,
    candidate_version: str,
    candidate: Input[Model],
    decision: Output[Metrics],
    report: Output[HTML],
) -> bool:
    """Run the champion/challenger gate; promote on pass. Returns whether it passed."""
    from artflow import stages

    result = stages.gate(workdir, model_name, candidate_version, profile, mlflow_uri, force)
    stages.publish(result, metrics=decision)
    stages.publish_html(report, f"gate: {model_name}", result.get("markdown", result["reason"]))
    return bool(result.get("passed"))
