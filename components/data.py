"""Data components: ingest, validate, sample."""

from kfp.dsl import HTML, Dataset, Input, Metrics, Output

from components.common import cpu_component


@cpu_component
def ingest_op(
    source: str,
    workdir: str,
    profile: str,
    mlflow_uri: str,
    force: bool,
    enabled: bool,
    manifest: Output[Dataset],
    metrics: Output[Metrics],
):
    """Copy the data source (Kaggle layout folder or zip) into the workdir with manifests."""
    from artflow import stages

    ctx = dict(profile=profile, mlflow_uri=mlflow_uri)
    result = stages.ingest(source if enabled else "", workdir, force=force, **ctx)
    settings, wd = stages.context(workdir, **ctx)
    stages.publish(result, metrics=metrics)
    stages.publish_dataset(wd, manifest, [wd.manifest, wd.monet_manifest, wd.ingest_report])


@cpu_component
def validate_op(
    workdir: str,
    profile: str,
    mlflow_uri: str,
    force: bool,
    summary: Output[Metrics],
    report: Output[HTML],
):
    """Great Expectations suites on the ingested data; quarantine list and HTML report."""
    from artflow import stages

    result = stages.validate(workdir, profile, mlflow_uri, force)
    settings, wd = stages.context(workdir, profile, mlflow_uri)
    stages.publish(result, metrics=summary)
    stages.publish_html(report, "validation", source=str(wd.validation_report))


@cpu_component
def sample_op(
    workdir: str,
    profile: str,
    mlflow_uri: str,
    force: bool,
    validation: Input[Metrics],
    splits: Output[Dataset],
    metrics: Output[Metrics],
):
    """Stratified train/val split, frozen test split by content hash, style splits."""
    from artflow import stages

    result = stages.sample(workdir, profile, mlflow_uri, force)
    settings, wd = stages.context(workdir, profile, mlflow_uri)
    stages.publish(result, metrics=metrics)
    files = stages.split_files(wd) + stages.style_files(wd)[:2] + [wd.class_weights]
    stages.publish_dataset(wd, splits, files)
