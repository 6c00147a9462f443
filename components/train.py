"""Training components: CNN (optionally tuned), ResNet50, AdaIN stylizer, CycleGAN."""

from kfp.dsl import Dataset, Input, Metrics, Model, Output

from components.common import gpu_component


@gpu_component
def train_cnn_op(
    workdir: str,
    profile: str,
    mlflow_uri: str,
    force: bool,
    tune: bool,
    enabled: bool,
    splits: Input[Dataset],
    model: Output[Model],
    metrics: Output[Metrics],
) -> str:
    """Train (after a Keras Tuner search when `tune`) and register the custom CNN."""
    from artflow import stages

    result = stages.train_classifier(
        workdir, "cnn", tune, profile, mlflow_uri, force, enabled=enabled
    )
    stages.publish(result, metrics=metrics, model=model)
    return str(result.get("version") or "")


@gpu_component
def train_resnet50_op(
    workdir: str,
    profile: str,
    mlflow_uri: str,
    force: bool,
    enabled: bool,
    splits: Input[Dataset],
    model: Output[Model],
    metrics: Output[Metrics],
) -> str:
    """Transfer-learn ResNet50 (frozen, then top layers unfrozen) and register it."""
    from artflow import stages

    result = stages.train_classifier(
        workdir, "resnet50", False, profile, mlflow_uri, force, enabled=enabled
    )
    stages.publish(result, metrics=metrics, model=model)
    return str(result.get("version") or "")


@gpu_component
def train_stylizer_op(
    workdir: str,
    profile: str,
    mlflow_uri: str,
    force: bool,
    splits: Input[Dataset],
    model: Output[Model],
    metrics: Output[Metrics],
) -> str:
    """Train the AdaIN feed-forward stylizer and register it as challenger."""
    from artflow import stages

    result = stages.train_stylizer(workdir, profile, mlflow_uri, force)
    stages.publish(result, metrics=metrics, model=model)
    return str(result.get("version") or "")


@gpu_component
def train_cyclegan_op(
    workdir: str,
    profile: str,
    mlflow_uri: str,
    force: bool,
    splits: Input[Dataset],
    model: Output[Model],
    metrics: Output[Metrics],
) -> str:
    """Train the photo -> Monet CycleGAN (checkpointing as it goes) and register it."""
    from artflow import stages

    result = stages.train_cyclegan(workdir, profile, mlflow_uri, force)
    stages.publish(result, metrics=metrics, model=model)
    return str(result.get("version") or "")
