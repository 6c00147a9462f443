"""The two model families tests/pipelines/test_families.py adds through the model table only,
declared the way a family kept outside artflow is: this module, named in
`ARTFLOW_FAMILY_MODULES`, declares them when imported, so every process that reads the table
(the test, the pipeline's steps, a `bentoml serve` and its workers) knows them.

- `dummy`: a classifier family, its network and fit here (`fit_tiny`);
- `tiny_style`: a style family and its served model `tiny`, its network, training and
  loaders in tests/pipelines/tiny_style.py (imported only when used: it imports Keras).

Nothing here imports TensorFlow, so naming it costs a process nothing until it trains or
serves."""

from __future__ import annotations

from typing import Any

from artflow import families

CLASSIFIER_FAMILY = "dummy"
STYLE_FAMILY = "tiny_style"
STYLE_MODEL = "artflow-tests-tiny-style"
_STYLE = "tests.pipelines.tiny_style"


def fit_tiny(settings: Any, wd: Any, data: dict[str, Any], n_classes: int, verbose: int) -> Any:
    """The dummy family's network: pooled colours -> softmax; one epoch."""
    import keras

    from artflow.classify.cnn import compile_classifier

    size = settings.images.size
    inputs = keras.Input((size, size, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(n_classes, activation="softmax")(x))
    compile_classifier(model, 0.01)
    history = model.fit(data["train"].dataset, validation_data=data["val"].dataset, epochs=1)
    return model, [history]


def declare() -> None:
    """The two table entries (and the style family's served model); replaces earlier ones."""
    # borrows the CNN's settings section (batch size)
    families.register(families.classifier(CLASSIFIER_FAMILY, "cnn", f"{__name__}:fit_tiny"))
    families.register(
        families.Family(
            name=STYLE_FAMILY,
            kind="style",
            registry_name=STYLE_MODEL,
            section="cyclegan",  # borrows the CycleGAN's settings section
            sections=("cyclegan",),
            train=f"{_STYLE}:train_tiny_style",
            style_data=True,
        )
    )
    families.declare(
        families.style_model(
            STYLE_MODEL,
            "tiny",
            f"{_STYLE}:load",
            f"{_STYLE}:load_file",
            layers=(_STYLE,),
            intended_use="Tint photos for the family-table test.",
            limitations=("Only a test.",),
        )
    )


def undeclare() -> None:
    families.unregister(CLASSIFIER_FAMILY)
    families.unregister(STYLE_FAMILY)
    families.undeclare(STYLE_MODEL)


declare()
