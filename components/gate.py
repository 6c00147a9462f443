"""Gate component: the promotion decision is an output (Metrics + Markdown).

The decision and the move of the `champion` alias stay one call (artflow.promote, under the
registry's lock), not a `dsl.If` branch: docs/stack-notes.md."""

from kfp.dsl import Dataset, Input, Markdown, Metrics, Model, Output

from components.common import component


@component
def gate_op(
    model_name: str,
    profile: str,
    mlflow_uri: str,
    data: Input[Dataset],
    splits: Input[Dataset],
    candidate: Input[Model],
    decision: Output[Metrics],
    report: Output[Markdown],
) -> bool:
    """Champion/challenger gate on the frozen test split; promotes on pass. Returns whether it
    passed. Not cached by Kubeflow (the champion moves between runs); the local runner keeps a
    decision only while the champion is still what it left behind (pipelines/cache.py)."""
    from artflow import stages

    version = str(stages.read_model(candidate).get("version") or "")

    def work(settings) -> dict:
        wd = stages.scratch(f"gate-{model_name}", data, splits)
        result = stages.gate(settings, wd, model_name, version)
        stages.gate_reports(result, decision, report, model_name, version)
        return result

    outputs = {"decision": decision, "report": report}
    return bool(stages.run("gate", profile, mlflow_uri, outputs, work).get("passed"))
