"""Every model family, declared once: how it is trained, what its cache key covers, where it
is registered.

The pipeline stages (`artflow.stages`), their cache keys, classifier training
(`artflow.classify.train`), registration (`artflow.classify.io`) and the CLI read
this table; adding a family is one `Family(...)` passed to `register`. Training code is named
as `"module:function"` so that reading the table imports neither TensorFlow nor MLflow.

Beside the families, one `Model(...)` per registered model says how every other reader
treats it: serving and the Bento build (its short name, aliases and loaders), rollback,
model cards, safe loading (its custom-layer modules), the registry views and the gate (its
metric kind). A new served model is one `declare(Model(...))`.

The best version of each classifier family, as the gate records it, is in
`artflow.classify.best`.

A family kept outside artflow (and the tests' dummies) is a module that calls `register` /
`declare` when imported, named in `ARTFLOW_FAMILY_MODULES` (comma-separated): this table
imports those modules when it is first imported, so every process that reads it (the CLI, a
pipeline's steps, `bentoml serve` and its workers) knows the same families.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from artflow.config import Settings
from artflow.errors import ConfigError

CLASSIFIER = "artflow-artist-classifier"
STYLIZER = "artflow-style-transfer"
CYCLEGAN = "artflow-monet-cyclegan"
GATYS_SETTINGS = "artflow-gatys-settings"

# Settings every classifier's answer depends on, besides its own section.
CLASSIFIER_SHARED = ("images", "augment", "training")


@dataclass(frozen=True)
class Family:
    """One model family.

    name          the stage name (`train_<name>`), the `family` tag of its registered versions
    kind          "classifier" (trained by artflow.classify.train with `fit`) or "style"
    registry_name the registered model its versions go to
    section       its own settings section: hyperparameters, MLflow params (`<name>.<key>`)
    sections      every settings section its cache key covers (seed always included)
    (train, fit and tune may also be functions, e.g. a family declared in a test)
    train         "module:function"(settings, workdir[, family=name for classifiers]) -> result
                  with model_name and version
    fit           classifiers: "module:function"(settings, wd, data, n_classes, verbose)
                  -> (model, [keras History]); the family's network and its fit schedule
    tune          optional "module:function"(settings, workdir): a search that registers its best
    tune_sections the sections a tuned run's cache key covers in addition
    style_data    style families read the style splits instead of the classifier splits
    after         a family whose gate finishes before this one trains (its registered
                  version teaches this one: the fast stylizer learns from the VGG19 one)
    label         classifiers: its name on the web page's model choice (default: `name`)
    """

    name: str
    kind: str
    registry_name: str
    section: str
    sections: tuple[str, ...]
    train: str | Callable[..., Any]
    fit: str | Callable[..., Any] = ""
    tune: str | Callable[..., Any] = ""
    tune_sections: tuple[str, ...] = ()
    style_data: bool = False
    after: str = ""
    label: str = ""

    def settings_section(self, settings: Settings) -> Any:
        return getattr(settings, self.section)

    def image_size(self, settings: Settings) -> int:
        section = self.settings_section(settings)
        return int(getattr(section, "image_size", None) or settings.images.size)

    def batch_size(self, settings: Settings) -> int:
        return int(self.settings_section(settings).batch_size)

    def key_sections(self, tune: bool = False) -> tuple[str, ...]:
        return self.sections + (self.tune_sections if tune else ())

    def mlflow_params(self, settings: Settings) -> dict[str, Any]:
        """The family's hyperparameters as MLflow params, `<name>.<key>`."""
        return {
            f"{self.name}.{k}": v for k, v in self.settings_section(settings).model_dump().items()
        }

    def run_training(self, settings: Settings, wd: Any, tune: bool = False) -> dict[str, Any]:
        """Train (after the family's search, when `tune` and it has one) and register."""
        if tune and self.tune:
            return resolve(self.tune)(settings, wd)
        if self.kind == "classifier":
            return resolve(self.train)(settings, wd, family=self.name)
        return resolve(self.train)(settings, wd)

    def fitter(self) -> Callable[..., Any]:
        return resolve(self.fit)


def resolve(ref: str | Callable[..., Any]) -> Callable[..., Any]:
    """The function named `module:function` (imported only when a family is trained)."""
    if callable(ref):
        return ref
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


_TRAIN_CLASSIFIER = "artflow.classify.train:train_classifier"

_FAMILIES: dict[str, Family] = {}


def register(family: Family) -> Family:
    """Add (or replace) a family; returns it."""
    if family.kind not in ("classifier", "style"):
        raise ConfigError(f"family {family.name!r}: unknown kind {family.kind!r}")
    _FAMILIES[family.name] = family
    return family


def unregister(name: str) -> None:
    _FAMILIES.pop(name, None)


def get(name: str) -> Family:
    if name not in _FAMILIES:
        raise ConfigError(f"unknown model family {name!r}", f"use one of: {', '.join(_FAMILIES)}")
    return _FAMILIES[name]


def names(kind: str | None = None) -> tuple[str, ...]:
    return tuple(f.name for f in _FAMILIES.values() if kind in (None, f.kind))


def by_registry_name(registry_name: str) -> list[Family]:
    return [f for f in _FAMILIES.values() if f.registry_name == registry_name]


def registry_names() -> tuple[str, ...]:
    return tuple(dict.fromkeys(f.registry_name for f in _FAMILIES.values()))


def classifier(name: str, section: str, fit: str, **more: Any) -> Family:
    """A classifier family: trained by train_classifier, registered as CLASSIFIER, its cache key
    covering the shared classifier sections and its own `section`; `fit` is "module:function"."""
    return Family(
        name=name,
        kind="classifier",
        registry_name=CLASSIFIER,
        section=section,
        sections=(*CLASSIFIER_SHARED, section),
        train=_TRAIN_CLASSIFIER,
        fit=fit,
        **more,
    )


register(
    classifier(
        "cnn",
        "cnn",
        "artflow.classify.cnn:fit_cnn",
        tune="artflow.classify.tune:tune_cnn",
        tune_sections=("tuner",),
        label="custom CNN",
    )
)
register(classifier("resnet50", "resnet", "artflow.classify.resnet:fit_resnet", label="ResNet50"))


def stylizer(name: str, train: str, **more: Any) -> Family:
    """An AdaIN stylizer family: registered as STYLIZER, trained on the style data, its cache
    key covering the stylizer, Gatys (loss weights) and training-runtime sections."""
    return Family(
        name=name,
        kind="style",
        registry_name=STYLIZER,
        section="stylizer",
        sections=("stylizer", "nst", "training"),
        train=train,
        style_data=True,
        **more,
    )


register(stylizer("stylizer", "artflow.style.adain.train:train_stylizer"))
# stylizer.fast: a thin student trained from the VGG19 stylizer, after that one's gate
register(
    stylizer("fast_stylizer", "artflow.style.adain.train:train_fast_stylizer", after="stylizer")
)
register(
    Family(
        name="cyclegan",
        kind="style",
        registry_name=CYCLEGAN,
        section="cyclegan",
        sections=("cyclegan", "training"),
        train="artflow.style.cyclegan.train:train_cyclegan",
        style_data=True,
    )
)


@dataclass(frozen=True)
class Model:
    """One registered model, as every reader outside training sees it.

    name          the registered model (several families may share it: the classifiers)
    short         its name in serving, the Bento, rollback and the CLI (`classifier`, `monet`)
    kind          "classifier" (A/B tested: one serving slot per alias, `family=` picks a
                  family's best), "style" (one slot: the first alias that is set) or
                  "settings" (registered, not served: the Gatys settings)
    aliases       the aliases serving resolves, in order
    load          "module:function"(models:/ URI) -> what serving holds
    load_file     "module:function"(path of its .keras file, Bento metadata) -> the same
    layers        modules that register its custom Keras layers (imported before safe loading)
    metrics       the kind of metrics the gate and the registry views compare: "classifier"
                  or "style"
    intended_use  model-card texts
    limitations
    """

    name: str
    short: str
    kind: str
    aliases: tuple[str, ...] = ()
    load: str | Callable[..., Any] = ""
    load_file: str | Callable[..., Any] = ""
    layers: tuple[str, ...] = ()
    metrics: str = ""
    intended_use: str = ""
    limitations: tuple[str, ...] = ()

    @property
    def served(self) -> bool:
        return self.kind in ("classifier", "style")


_MODELS: dict[str, Model] = {}


def declare(model: Model) -> Model:
    """Add (or replace) a registered model; returns it."""
    if model.kind not in ("classifier", "style", "settings"):
        raise ConfigError(f"model {model.name!r}: unknown kind {model.kind!r}")
    _MODELS[model.name] = model
    return model


def undeclare(name: str) -> None:
    _MODELS.pop(name, None)


def model(name: str) -> Model | None:
    """The declaration of registered model `name` (None for a name artflow does not know)."""
    return _MODELS.get(name)


def models(kind: str | None = None) -> tuple[Model, ...]:
    return tuple(m for m in _MODELS.values() if kind in (None, m.kind))


def served_shorts() -> tuple[str, ...]:
    """The short names of the models serving loads (its slots, `/admin/rollback?model=`)."""
    return tuple(m.short for m in _MODELS.values() if m.served)


def by_short(short: str) -> Model:
    for m in _MODELS.values():
        if m.short == short:
            return m
    raise ConfigError(f"unknown model {short!r}", f"use one of: {', '.join(served_shorts())}")


def metric_kind(name: str) -> str:
    """ "style" or "classifier": what the gate and the views compare for `name`."""
    declared = model(name)
    return declared.metrics if declared and declared.metrics else "classifier"


def layer_modules() -> tuple[str, ...]:
    """Every module that registers custom Keras layers of a declared model."""
    return tuple(dict.fromkeys(m for d in _MODELS.values() for m in d.layers))


declare(
    Model(
        name=CLASSIFIER,
        short="classifier",
        kind="classifier",
        aliases=("champion", "challenger"),
        load="artflow.classify.io:load_classifier",
        load_file="artflow.classify.io:classifier_from_file",
        metrics="classifier",
        intended_use=(
            "Attribute a painting to one of the artists it was trained on (the artists with "
            "enough paintings in the data version below). For browsing, teaching and triage."
        ),
        limitations=(
            "Knows only the artists in its label list; any other painter is forced onto one "
            "of them.",
            "Not an authentication tool: never use it to decide provenance or value.",
            "Trained on web reproductions; photos of paintings, crops and frames shift its input.",
            "Accuracy is measured on a small frozen test split; per-artist recall varies.",
        ),
    )
)


def style_model(name: str, short: str, load: str, load_file: str, **more: Any) -> Model:
    """A served style model: one slot, its champion (else its challenger), compared on style
    metrics; `load` and `load_file` are "module:function"."""
    return Model(
        name=name,
        short=short,
        kind="style",
        aliases=("champion", "challenger"),
        load=load,
        load_file=load_file,
        metrics="style",
        **more,
    )


_INFERENCE = "artflow.style.inference"
declare(
    style_model(
        STYLIZER,
        "stylizer",
        f"{_INFERENCE}:load_stylizer",
        f"{_INFERENCE}:stylizer_from_file",
        layers=("artflow.style.adain.networks",),
        intended_use=(
            "Fast arbitrary style transfer (AdaIN): repaint a content image in the style of "
            "a given artwork, with a strength between 0 and 1. Creative use."
        ),
        limitations=(
            "Style and content losses are proxies for what people find pleasing.",
            "Large inputs are resized; fine detail is lost.",
        ),
    )
)
declare(
    style_model(
        CYCLEGAN,
        "monet",
        f"{_INFERENCE}:load_monet",
        f"{_INFERENCE}:monet_from_file",
        layers=("artflow.style.cyclegan.networks",),
        intended_use="Translate landscape photos into Monet-like paintings. Creative use.",
        limitations=(
            "Trained on landscapes; people, text and indoor scenes come out distorted.",
            "Unpaired training: colours and textures change, geometry may too.",
        ),
    )
)
declare(Model(name=GATYS_SETTINGS, short="gatys", kind="settings"))


MODULES_ENV = "ARTFLOW_FAMILY_MODULES"


def load_modules(names: str) -> tuple[str, ...]:
    """Import the modules named in `names` (comma-separated), each of which declares more
    families or models when imported; returns their names."""
    loaded = tuple(n.strip() for n in names.split(",") if n.strip())
    for name in loaded:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise ConfigError(
                f"{MODULES_ENV} names {name!r}, which cannot be imported ({exc})",
                "install the module or fix the name (comma-separated module names)",
            ) from exc
    return loaded


def modules_env() -> dict[str, str]:
    """`MODULES_ENV` as this process has it ({} when unset): what a pipeline's tasks carry, so
    a step on a cluster knows the same families as the pipeline that was built."""
    value = os.environ.get(MODULES_ENV, "")
    return {MODULES_ENV: value} if value else {}


# Last, once every built-in entry is in: a module named here imports this table back.
load_modules(os.environ.get(MODULES_ENV, ""))
