"""Training components: one per model family (artflow.families), all alike: `data` + `splits`
in, a registered version out as a `Model` (+ `Metrics`, the validation confusion matrix)."""

from kfp.dsl import ClassificationMetrics, Dataset, Input, Metrics, Model, Output

from components.common import component


@component
def train_op(
    family: str,
    tune: bool,
    enabled: bool,
    profile: str,
    mlflow_uri: str,
    cache_dir: str,
    force: bool,
    data: Input[Dataset],
    splits: Input[Dataset],
    model: Output[Model],
    metrics: Output[Metrics],
    confusion: Output[ClassificationMetrics],
) -> str:
    """Train (after the family's search when `tune`) and register one family as challenger;
    returns the registered version ('' when disabled)."""
    from artflow import stages

    settings = stages.begin(profile, mlflow_uri)
    outputs = {"model": model, "metrics": metrics, "confusion": confusion}
    if not enabled or stages.is_skipped(splits):
        stages.skip_outputs(outputs, f"{family}: not trained (disabled)")
        return ""
    name = f"train_{family}"

    def work() -> dict:
        wd = stages.scratch(name, data, splits)
        result = stages.train(settings, wd, family, tune)
        stages.publish_model(result, model)
        stages.log_metrics(result, metrics)
        stages.log_confusion(result, confusion, "val")
        return result

    inputs = {"data": data, "splits": splits}
    key = stages.cache_key(name, settings, inputs, {"tune": tune}, tune=tune)
    result = stages.cached(name, key, cache_dir, outputs, work, force)
    return str(result.get("version") or "")


@component
def gatys_search_op(
    profile: str,
    mlflow_uri: str,
    cache_dir: str,
    force: bool,
    data: Input[Dataset],
    splits: Input[Dataset],
    metrics: Output[Metrics],
) -> str:
    """Search Gatys settings for VGG19 and ResNet50 on held-out images and register each
    backbone's best (artflow-gatys-settings); returns the versions as JSON."""
    import json

    from artflow import stages

    settings = stages.begin(profile, mlflow_uri)
    if stages.is_skipped(splits):
        stages.skip_outputs({"metrics": metrics}, "gatys search: no data")
        return "{}"

    def work() -> dict:
        result = stages.gatys_search(settings, stages.scratch("gatys_search", data, splits))
        stages.log_metrics(result, metrics)
        return result

    key = stages.cache_key("gatys_search", settings, {"data": data, "splits": splits}, {})
    result = stages.cached("gatys_search", key, cache_dir, {"metrics": metrics}, work, force)
    return json.dumps(result.get("versions") or {})
