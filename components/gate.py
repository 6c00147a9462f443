"""Gate component: the promotion decision is an output (Metrics + Markdown), never a branch."""

from kfp.dsl import Dataset, Input, Markdown, Metrics, Model, Output

from components.common import component


@component
def gate_op(
    model_name: str,
    profile: str,
    mlflow_uri: str,
    cache_dir: str,
    force: bool,
    data: Input[Dataset],
    splits: Input[Dataset],
    candidate: Input[Model],
    decision: Output[Metrics],
    report: Output[Markdown],
) -> bool:
    """Champion/challenger gate on the frozen test split; promotes on pass. Returns whether it
    passed. Not cached by Kubeflow (the champion moves between runs); the local cache replays a
    decision only while the champion is still what it left behind."""
    from artflow import stages

    settings = stages.begin(profile, mlflow_uri)
    version = str(stages.read_model(candidate).get("version") or "")

    def work() -> dict:
        wd = stages.scratch(f"gate-{model_name}", data, splits)
        result = stages.gate(settings, wd, model_name, version)
        stages.log_metrics(result, decision)
        body = result.get("markdown", result["reason"])
        stages.write_markdown(report, f"gate: {model_name}", body)
        keep = ("passed", "promoted", "champion", "reason")
        report.metadata.update({"model": model_name, "candidate": version})
        report.metadata.update({k: result.get(k) for k in keep})
        return {**result, "model": model_name, "candidate": version}

    inputs = {"splits": splits, "candidate": candidate}
    key = stages.cache_key("gate", settings, inputs, {"model_name": model_name})
    outputs = {"decision": decision, "report": report}
    unmoved = stages.champion_unmoved(model_name)
    result = stages.cached("gate", key, cache_dir, outputs, work, force, still_valid=unmoved)
    return bool(result.get("passed"))
