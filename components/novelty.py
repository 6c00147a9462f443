"""Novelty component: every classifier version the pipeline registers gets its novelty model
("this does not look like a painting"), so serving warns from the first run."""

from kfp.dsl import Dataset, Input, Metrics, Model, Output

from components.common import component


@component
def novelty_op(
    profile: str,
    mlflow_uri: str,
    data: Input[Dataset],
    splits: Input[Dataset],
    model: Input[Model],
    summary: Output[Metrics],
):
    """Fit the version's novelty score on its drift reference (built and logged first when
    missing), calibrate its threshold on the val split, log both to its run and tag it."""
    from artflow import stages

    def work(settings) -> dict:
        wd = stages.scratch("novelty", data, splits)
        result = stages.novelty(settings, wd, stages.read_model(model))
        stages.log_metrics(result, summary)
        return result

    skipped = "" if stages.read_model(model).get("version") else "no version was registered"
    stages.run("novelty", profile, mlflow_uri, {"summary": summary}, work, skipped)
