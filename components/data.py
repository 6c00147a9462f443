"""Data components: ingest (source -> `data`), validate (-> `validation`), sample (-> `splits`)."""

from kfp.dsl import HTML, Dataset, Input, Metrics, Output

from components.common import component


@component
def ingest_op(
    source: str,
    profile: str,
    mlflow_uri: str,
    cache_dir: str,
    force: bool,
    enabled: bool,
    data: Output[Dataset],
    metrics: Output[Metrics],
):
    """The data source (folder, zip, kaggle://, dvc://REPO?path=P&rev=R) into `data`."""
    from artflow import stages
    from artflow.data.layout import Workdir
    from artflow.errors import ConfigError

    settings = stages.begin(profile, mlflow_uri)
    outputs = {"data": data, "metrics": metrics}
    if not enabled:
        stages.skip_outputs(outputs, "the retrain was not needed")
        return
    if not source:
        raise ConfigError("the pipeline's `source` parameter is empty", "pass a folder or URL")

    def work() -> dict:
        result = stages.ingest(settings, source, data, Workdir.at(data.path))
        stages.log_metrics(result, metrics)
        return result

    params = {"source": stages.source_key(source)}
    key = stages.cache_key("ingest", settings, {}, params)
    stages.cached("ingest", key, cache_dir, outputs, work, force)


@component
def validate_op(
    profile: str,
    mlflow_uri: str,
    cache_dir: str,
    force: bool,
    data: Input[Dataset],
    validation: Output[Dataset],
    summary: Output[Metrics],
    report: Output[HTML],
):
    """Great Expectations suites on `data`: summary, quarantine list and the HTML report."""
    from artflow import stages

    settings = stages.begin(profile, mlflow_uri)
    outputs = {"validation": validation, "summary": summary, "report": report}
    if stages.is_skipped(data):
        stages.skip_outputs(outputs, "no data (the retrain was not needed)")
        return

    def work() -> dict:
        wd = stages.scratch("validate", data)
        result = stages.validate(settings, wd)
        stages.export(wd, validation, ["validation"])
        stages.log_metrics(result, summary)
        stages.copy_report(report, wd.validation_report, "validation")
        return result

    key = stages.cache_key("validate", settings, {"data": data}, {})
    stages.cached("validate", key, cache_dir, outputs, work, force)


@component
def sample_op(
    profile: str,
    mlflow_uri: str,
    cache_dir: str,
    force: bool,
    data: Input[Dataset],
    validation: Input[Dataset],
    splits: Output[Dataset],
    metrics: Output[Metrics],
):
    """Stratified train/val split, frozen test split by content hash, style splits, label map
    and class weights, all in `splits`."""
    from artflow import stages

    settings = stages.begin(profile, mlflow_uri)
    outputs = {"splits": splits, "metrics": metrics}
    if stages.is_skipped(data):
        stages.skip_outputs(outputs, "no data (the retrain was not needed)")
        return

    def work() -> dict:
        wd = stages.scratch("sample", data, validation)
        result = stages.sample(settings, wd)
        stages.export(wd, splits, ["splits"])
        stages.log_metrics(result, metrics)
        return result

    key = stages.cache_key("sample", settings, {"data": data, "validation": validation}, {})
    stages.cached("sample", key, cache_dir, outputs, work, force)
