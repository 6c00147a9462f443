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
    data: Input[Dataset],
    splits: Input[Dataset],
    model: Output[Model],
    metrics: Output[Metrics],
    confusion: Output[ClassificationMetrics],
    only: str = "",
) -> str:
    """Train (after the family's search when `tune`) and register one family as challenger;
    returns the registered version ('' when disabled, or when `only`, a comma-separated list
    of families, does not name it: the quality trigger retrains the degraded model alone):
    the evaluate step's input."""
    from artflow import stages

    def work(settings) -> dict:
        wd = stages.scratch(f"train_{family}", data, splits)
        result = stages.train(settings, wd, family, tune)
        stages.publish_model(result, model)
        stages.log_metrics(result, metrics)
        stages.log_confusion(result, confusion, "val")
        return result

    outputs = {"model": model, "metrics": metrics, "confusion": confusion}
    chosen = enabled and (not only or family in only.split(","))
    skipped = "" if chosen and not stages.is_skipped(splits) else "not trained (disabled)"
    result = stages.run(f"train_{family}", profile, mlflow_uri, outputs, work, skipped)
    return str(result.get("version") or "")


@component
def gatys_search_op(
    profile: str,
    mlflow_uri: str,
    data: Input[Dataset],
    splits: Input[Dataset],
    metrics: Output[Metrics],
    only: str = "",
) -> str:
    """Search Gatys settings for VGG19 and ResNet50 on held-out images and register each
    backbone's best (artflow-gatys-settings); returns the versions as JSON. Skipped when
    `only` (comma-separated step names) does not name `gatys_search`."""
    import json

    from artflow import stages

    def work(settings) -> dict:
        result = stages.gatys_search(settings, stages.scratch("gatys_search", data, splits))
        stages.log_metrics(result, metrics)
        return result

    skipped = "" if not only or "gatys_search" in only.split(",") else "not searched (only)"
    result = stages.run("gatys_search", profile, mlflow_uri, {"metrics": metrics}, work, skipped)
    return json.dumps(result.get("versions") or {})
