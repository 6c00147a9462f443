"""Data components: ingest (source -> `data`), validate (-> `validation`), sample (-> `splits`)."""

from kfp.dsl import HTML, Dataset, Input, Metrics, Output

from components.common import component


@component
def ingest_op(
    source: str,
    source_key: str,
    profile: str,
    mlflow_uri: str,
    data: Output[Dataset],
    metrics: Output[Metrics],
):
    """The data source (folder, zip, kaggle://, dvc://REPO?path=P&rev=R) into `data`.
    `source_key` is only in the cache key: what identifies the source's content (the local
    runner fingerprints a local tree)."""
    from artflow import stages
    from artflow.data.layout import Workdir
    from artflow.errors import ConfigError

    if not source:
        raise ConfigError("the pipeline's `source` parameter is empty", "pass a folder or URL")

    def work(settings) -> dict:
        result = stages.ingest(settings, source, data, Workdir.at(data.path))
        stages.log_metrics(result, metrics)
        return result

    stages.run("ingest", profile, mlflow_uri, {"data": data, "metrics": metrics}, work)


@component
def validate_op(
    profile: str,
    mlflow_uri: str,
    data: Input[Dataset],
    validation: Output[Dataset],
    summary: Output[Metrics],
    report: Output[HTML],
):
    """Great Expectations suites on `data`: summary, quarantine list and the HTML report."""
    from artflow import stages
    from artflow.data.validate import validate

    def work(settings) -> dict:
        wd = stages.scratch("validate", data)
        result = validate(wd, settings)
        stages.export(wd, validation, ["validation"])
        stages.log_metrics(result, summary)
        stages.copy_report(report, wd.validation_report, "validation")
        return result

    outputs = {"validation": validation, "summary": summary, "report": report}
    stages.run("validate", profile, mlflow_uri, outputs, work)


@component
def sample_op(
    profile: str,
    mlflow_uri: str,
    data: Input[Dataset],
    validation: Input[Dataset],
    splits: Output[Dataset],
    metrics: Output[Metrics],
):
    """Stratified train/val split, frozen test split by content hash, style splits, label map
    and class weights, all in `splits`."""
    from artflow import stages
    from artflow.data.sample import sample

    def work(settings) -> dict:
        wd = stages.scratch("sample", data, validation)
        result = sample(wd, settings)
        stages.export(wd, splits, ["splits"])
        stages.log_metrics(result, metrics)
        return result

    stages.run("sample", profile, mlflow_uri, {"splits": splits, "metrics": metrics}, work)
