"""Typed settings loaded from params.yaml plus an optional profile overlay.

One source of truth (docs/conventions.md): the CLI loads a `Settings` once and passes it, or the
relevant section, into every stage function. Nothing deeper reads params.yaml.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from artflow.errors import ConfigError

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PARAMS = PROJECT_ROOT / "params.yaml"
PROFILES_DIR = PROJECT_ROOT / "profiles"

Fraction = Field(ge=0.0, le=1.0)


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DemoCfg(Section):
    scale: float = Field(0.1, gt=0.0, le=1.0)
    image_size: int = Field(96, ge=16, le=1024)
    monet_paintings: int = Field(30, ge=2)
    photos: int = Field(60, ge=2)


class ArchiveCfg(Section):
    """Limits on zip archives ingest extracts (a zip bomb stops at the first one hit)."""

    max_total_mb: float = Field(20480, gt=0)  # all members, uncompressed
    max_ratio: float = Field(100, gt=1)  # uncompressed / compressed, per member over 1 MiB
    max_members: int = Field(100_000, ge=1)


class DataCfg(Section):
    source: str = "data/demo_source"  # what `dvc repro` ingests (folder or zip, repo-relative)
    kaggle_artworks: str = "ikarus777/best-artworks-of-all-time"
    kaggle_monet: str = "gan-getting-started"
    demo: DemoCfg = DemoCfg()
    archive: ArchiveCfg = ArchiveCfg()


class ValidateCfg(Section):
    min_side: int = Field(32, ge=1)
    allowed_modes: list[str] = ["RGB", "L", "CMYK", "P", "RGBA", "LA", "I;16", "I"]
    max_quarantine_share: float = Fraction
    min_images_per_class: int = Field(200, ge=1)


class SampleCfg(Section):
    min_paintings: int = Field(200, ge=1)
    train_share: float = Field(0.8, gt=0.0, lt=1.0)
    test_share: float = Field(0.1, ge=0.0, lt=1.0)


class ImagesCfg(Section):
    size: int = Field(224, ge=16, le=1024)
    channels: Literal[3] = 3


class AugmentCfg(Section):
    rotation_deg: float = Field(45, ge=0, le=180)
    width_shift: float = Fraction
    height_shift: float = Fraction
    shear: float = Fraction
    zoom: float = Fraction
    horizontal_flip: bool = True


class CnnCfg(Section):
    batch_size: int = Field(32, ge=1)
    epochs: int = Field(30, ge=1)
    dense_units: int = Field(64, ge=1)
    dense_layers: int = Field(2, ge=1, le=8)  # the study's head: Dense 64 -> Dense 64
    dropout: float = Field(0.5, ge=0.0, lt=1.0)
    learning_rate: float = Field(1e-3, gt=0.0, le=1.0)
    early_stopping_patience: int = Field(3, ge=0)


class TunerCfg(Section):
    max_trials: int = Field(5, ge=1)
    executions_per_trial: int = Field(2, ge=1)
    epochs: int = Field(10, ge=1)
    # keras-tuner Int("dense_units", units_min, units_max, step=units_step): 64..512 by 64
    # reaches the study's best trial (384 units).
    units_min: int = Field(64, ge=1)
    units_max: int = Field(512, ge=1)
    units_step: int = Field(64, ge=1)
    learning_rates: list[float] = [1e-2, 1e-3, 1e-4]
    retrain: bool = True  # retrain the best configuration with cnn.epochs before registering

    @model_validator(mode="after")
    def _units(self) -> TunerCfg:
        if self.units_max < self.units_min:
            raise ValueError(f"units_max {self.units_max} is below units_min {self.units_min}")
        return self


class ResnetCfg(Section):
    weights: str = "imagenet"
    image_size: int = Field(224, ge=32, le=1024)
    batch_size: int = Field(32, ge=1)
    pooling: Literal["flatten", "avg"] = "flatten"
    phase1_epochs: int = Field(10, ge=0)
    phase1_learning_rate: float = Field(1e-4, gt=0.0, le=1.0)
    phase2_epochs: int = Field(10, ge=0)
    phase2_learning_rate: float = Field(1e-5, gt=0.0, le=1.0)
    unfreeze_top_layers: int = Field(50, ge=0)
    early_stopping_patience: int = Field(3, ge=0)

    @field_validator("weights")
    @classmethod
    def _weights(cls, v: str) -> str:
        return _check_weights(v)


class TrainingCfg(Section):
    mixed_precision: Literal["auto", "on", "off"] = "auto"
    distribute: Literal["auto", "none", "mirrored", "multiworker"] = "auto"
    xla: Literal["auto", "on", "off"] = "auto"  # custom training steps; auto = on with a GPU
    # More than one: the classifier trains on this many workers (MultiWorkerMirroredStrategy):
    # local processes, or one pod each of a TFJob on a cluster (artflow.classify.distributed).
    workers: int = Field(1, ge=1, le=64)


class TrainJobCfg(Section):
    """The Training Operator TFJob a cluster runs multi-worker training as (trainjob.py)."""

    namespace: str = "kubeflow"
    # Every worker pod and the step that launches them mount this claim (ReadWriteMany): the
    # data version is copied there, the workers read it and the chief writes its results.
    volume_claim: str = "artflow-train"
    mount_path: str = "/mnt/artflow"
    timeout_s: int = Field(6 * 3600, ge=60)  # the TFJob's activeDeadlineSeconds, and the wait
    poll_s: float = Field(15.0, gt=0)
    backoff_limit: int = Field(2, ge=0)  # restarts of a failed worker before the job fails
    gpus_per_worker: int = Field(0, ge=0)  # 0: CPU workers; >0: the GPU limit and node pool


class NstPreset(Section):
    """Per-backbone Gatys settings; a value left out falls back to the nst section's."""

    learning_rate: float | None = Field(None, gt=0.0)
    content_weight: float | None = Field(None, ge=0.0)
    style_weight: float | None = Field(None, ge=0.0)
    tv_weight: float | None = Field(None, ge=0.0)
    style_layer_weights: list[float] | None = None
    pixel_range: float | None = Field(None, gt=0.0)


class NstCfg(Section):
    backbone: Literal["vgg19", "resnet50"] = "vgg19"
    weights: str = "imagenet"
    image_size: int = Field(512, ge=32, le=2048)
    steps: int = Field(100, ge=1)
    learning_rate: float = Field(0.02, gt=0.0)
    content_weight: float = Field(1e4, ge=0.0)
    style_weight: float = Field(1e-2, ge=0.0)
    tv_weight: float = Field(30.0, ge=0.0)
    style_layer_weights: list[float] = [1.0] * 5
    # The optimised image lives in 0..pixel_range: 1 (the TF tutorial) or 255 (pixel units,
    # where the study's searched learning rates of ~2 mean a step of ~2 grey levels).
    pixel_range: float = Field(1.0, gt=0.0)
    search_trials: int = Field(10, ge=1)
    search_images: int = Field(2, ge=1)  # content/style pairs of the style test split per trial
    presets: dict[Literal["vgg19", "resnet50"], NstPreset] = {}

    def for_backbone(self, backbone: str | None = None) -> NstCfg:
        """This config with `backbone` selected and its preset applied (presets cleared)."""
        name = backbone or self.backbone
        preset = self.presets.get(name)  # type: ignore[call-overload]
        update: dict[str, Any] = {"backbone": name}
        if preset is not None:
            update.update(preset.model_dump(exclude_none=True))
        update["presets"] = {}  # applied: a second call keeps later explicit changes
        return self.model_copy(update=update)

    @field_validator("weights")
    @classmethod
    def _weights(cls, v: str) -> str:
        return _check_weights(v)


class StylizerCfg(Section):
    encoder: Literal["vgg19", "distilled"] = "vgg19"  # distilled: thin student of VGG19
    encoder_width: float = Field(0.25, gt=0.0, le=1.0)  # student filters x this (distilled)
    distill_weight: float = Field(1.0, ge=0.0)  # linear-embedding loss to VGG19's taps
    encoder_weights: str = "imagenet"
    image_size: int = Field(256, ge=32, le=2048)
    batch_size: int = Field(8, ge=1)
    steps: int = Field(20000, ge=1)
    learning_rate: float = Field(1e-4, gt=0.0)
    style_weight: float = Field(10.0, ge=0.0)
    strength: float = Fraction
    decoder_width: float = Field(1.0, gt=0.0, le=1.0)  # decoder filters x this (1 = paper)
    # Output-level distillation: |T(student output) - T(teacher output)|^2 per tap (relative),
    # x this x the content term; used when a teacher stylizer is given (the fast family).
    teacher_weight: float = Field(1.0, ge=0.0)
    color_weight: float = Field(0.0, ge=0.0)  # output's pixel mean/std vs the style image's
    init_from_teacher: bool = True  # start encoder/decoder as channel selections of the teacher's
    # The CPU-fast stylizer (family fast_stylizer): these keys override the ones above.
    fast: dict[str, Any] = Field(default_factory=dict)

    @field_validator("encoder_weights")
    @classmethod
    def _weights(cls, v: str) -> str:
        return _check_weights(v)

    @model_validator(mode="after")
    def _fast_valid(self) -> StylizerCfg:
        if "fast" in self.fast:
            raise ValueError("stylizer.fast cannot nest another fast block")
        if self.fast:
            self.fast_cfg()  # unknown keys or bad values fail here, when the settings load
        return self

    def fast_cfg(self) -> StylizerCfg:
        """The fast stylizer's settings: this section with `fast` applied."""
        return StylizerCfg.model_validate({**self.model_dump(exclude={"fast"}), **self.fast})


class CycleganCfg(Section):
    image_size: int = Field(256, ge=32, le=1024)
    res_blocks: int = Field(9, ge=1, le=16)
    filters: int = Field(64, ge=4)  # generator base width (discriminator too)
    epochs: int = Field(25, ge=1)
    steps_per_epoch: int = Field(0, ge=0)
    batch_size: int = Field(1, ge=1)
    learning_rate: float = Field(2e-4, gt=0.0)
    beta_1: float = Field(0.5, ge=0.0, lt=1.0)
    lambda_cycle: float = Field(10.0, ge=0.0)
    decay_start_epoch: int = Field(12, ge=0)
    checkpoint_every: int = Field(500, ge=1)


class GateCfg(Section):
    min_accuracy: float = Fraction
    min_macro_f1: float = Fraction
    max_latency_ms: float = Field(500.0, gt=0.0)
    max_model_size_mb: float = Field(500.0, gt=0.0)
    alpha: float = Field(0.05, gt=0.0, lt=1.0)
    require_significance: bool = True
    style_max_loss_ratio: float = Field(1.0, gt=0.0)
    # Slices (artflow.classify.slices): optional floors, and the rule against the champion.
    artist_min_f1: dict[str, float] = {}  # artist (or "*": every artist) -> F1 floor
    slice_min_accuracy: dict[str, float] = {}  # slice (or "*": every slice) -> accuracy floor
    max_slice_drop: float | None = Field(None, ge=0.0, le=1.0)  # below the champion's, any slice
    slice_min_images: int = Field(10, ge=1)  # a smaller slice is recorded, never decides

    @field_validator("artist_min_f1", "slice_min_accuracy")
    @classmethod
    def _floors(cls, v: dict[str, float]) -> dict[str, float]:
        bad = {k: f for k, f in v.items() if not 0.0 <= f <= 1.0}
        if bad:
            raise ValueError(f"floors must be between 0 and 1, got {bad}")
        return v


class ServeCfg(Section):
    host: str = "127.0.0.1"
    port: int = Field(3000, ge=1, le=65535)
    challenger_weight: float = Fraction
    top_k: int = Field(3, ge=1)
    max_body_mb: float = Field(10, gt=0)
    max_pixels: int = Field(40_000_000, ge=1)
    max_batch_size: int = Field(16, ge=1)
    max_latency_ms: int = Field(10000, ge=1)
    timeout_s: int = Field(60, ge=1)
    gatys_max_steps: int = Field(50, ge=1)  # the most a run may ask (a job may run that many)
    gatys_max_size: int = Field(256, ge=32)
    gatys_steps: int = Field(8, ge=1)  # a run's default: fits timeout_s on 2 cores at max size
    gatys_step_s: float = Field(5.0, gt=0)  # measured s/step at 256 px (benchmarks/bench_gatys.py)
    prediction_log: str = "data/serving/predictions"  # a folder: one sub-folder per pod
    log_rotate_mb: float = Field(50, gt=0)  # a new segment file at this size
    log_retention_days: float = Field(30, gt=0)  # all pods' segments older than this go
    log_max_total_mb: float = Field(2048, gt=0)  # then the oldest, until all fit in this
    log_embedding: bool = True
    batching: bool = True
    # TensorFlow's thread pools in the service (0 = TensorFlow's default, one per core)
    tf_intra_op_threads: int = Field(0, ge=0)
    tf_inter_op_threads: int = Field(0, ge=0)
    concurrent_batches: int = Field(1, ge=1)  # classifier batches run at once per variant
    max_aspect_ratio: float = Field(20, ge=1)
    max_decode_mb: float = Field(400, gt=0)
    large_decode_mb: float = Field(64, gt=0)
    large_decodes: int = Field(2, ge=1)
    max_output_side: int = Field(1024, ge=32)
    shutdown_grace_s: int = Field(20, ge=1)
    admin_max_failures: int = Field(10, ge=1)
    # The serving store (artflow.serve.store): "" = an SQLite file beside the prediction log
    store: str = ""
    store_migrate: bool = True  # upgrade the schema at start-up (a cluster runs a Job instead)
    store_retention_days: float = Field(90, gt=0)  # answers, feedback, jobs older than this go
    sync_interval_s: float = Field(2.0, gt=0)  # every pod reads the shared admin state this often
    gatys_jobs_per_deployment: int = Field(1, ge=1)  # Gatys runs at once per Deployment (role)
    job_stale_s: float = Field(120, gt=0)  # a running job not heard from this long is lost
    trusted_proxies: list[str] = []  # peers whose X-Forwarded-For names the caller (CIDRs)
    # Sampled quality scores of /stylize and /monet answers (artflow.serve.quality), 0 = off
    quality_sample: float = Field(0.05, ge=0, le=1)
    quality_queue: int = Field(8, ge=1)  # answers waiting to be scored; more are dropped
    # Freeze the scoring worker while requests run (artflow.serve.quality_pause): false where
    # the pod has cores to spare, so that sustained traffic is scored too.
    quality_pause: bool = True
    prediction_log_s3: str = ""  # s3://BUCKET/PREFIX: each pod ships its segments there
    log_upload_s: float = Field(60, gt=0)  # ... this often (artflow.serve.logship)
    explanations_at_once: int = Field(1, ge=1)  # /classify?explain=true runs at once per pod


class StyleQualityCfg(Section):
    """When served stylizations count as degraded (artflow.monitor.quality, docs/drift.md)."""

    min_scored: int = Field(30, ge=1)  # scored answers of a version before its scores count
    max_drop: float = Field(0.15, gt=0.0, lt=1.0)  # a measure this much worse than the gate's
    min_ratings: int = Field(20, ge=1)  # ratings of a version before its mean counts
    rating_floor: float = Field(2.5, gt=0.0)  # mean rating (1-5) under this: degraded
    lookback_h: float = Field(168.0, gt=0.0)  # how far back a count window (500) may reach


class DriftCfg(Section):
    window: str = "500"
    min_window: int = Field(30, ge=2)
    drift_share: float = Fraction
    embedding_components: int = Field(8, ge=1)
    reference_split: Literal["train", "val", "test"] = "train"
    reference_max_images: int = Field(2000, ge=10)
    retrain_cooldown_h: float = Field(24.0, ge=0.0)
    style_quality: StyleQualityCfg = StyleQualityCfg()

    @field_validator("window", mode="before")
    @classmethod
    def _window(cls, v: Any) -> str:
        text = str(v).strip()
        if not (text.isdigit() or (text[:-1].isdigit() and text[-1:] in {"h", "d"})):
            raise ValueError("must be a request count (e.g. 500) or a duration (e.g. 12h, 1d)")
        return text


class AbTestCfg(Section):
    """When the online A/B test may conclude (artflow.abtest)."""

    min_samples: int = Field(200, ge=1)  # labelled outcomes per variant before any verdict
    alpha: float = Field(0.05, gt=0.0, lt=1.0)  # two-sided significance of the difference
    confidence: float = Field(0.95, gt=0.0, lt=1.0)  # level of the per-variant intervals


class NoveltyCfg(Section):
    """ "This does not look like a painting": kNN distance to the training embeddings."""

    enabled: bool = True
    k: int = Field(5, ge=1)
    false_alarm_rate: float = Field(0.05, gt=0.0, lt=1.0)  # share of val paintings flagged
    max_reference: int = Field(2000, ge=10)  # training embeddings kept (seeded sample)


class PipelineCfg(Section):
    # Image repositories; every task runs `<repository>:<image_tag>` (or `@sha256:...`), an
    # immutable reference, so Kubeflow's cache follows the code (pipelines/images.py).
    base_image: str = "ghcr.io/artflow/artflow"
    gpu_image: str = "ghcr.io/artflow/artflow-gpu"
    image_tag: str = ""  # "" = the git commit being compiled; never "latest"
    # Steps that train on a GPU in this profile: only they request one.
    gpu_steps: list[str] = []
    timeout_s: int = Field(3600, gt=0)  # every step's deadline on a cluster
    train_timeout_s: int = Field(86400, gt=0)  # training and search steps'
    # Steps that call services (Kaggle/DVC, MLflow): retries after a failure, by step kind
    # (`train` for every training and search step), with exponential backoff.
    retries: dict[str, int] = {}
    retry_backoff_s: int = Field(30, ge=0)
    retry_backoff_factor: float = Field(2.0, ge=1.0)
    retry_backoff_max_s: int = Field(900, ge=0)
    cpu_request: str = "2"
    memory_request: str = "8Gi"
    gpu_limit: int = Field(1, ge=0)
    gpu_accelerator: str = "nvidia.com/gpu"
    # Training pods land on the GPU node pool: its node label, and the taint it carries.
    gpu_node_selector: dict[str, str] = {"nvidia.com/gpu.present": "true"}
    gpu_tolerations: list[dict[str, str]] = [
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    ]
    # Every step reads the MLflow URI and the object store's credentials from this Secret.
    mlflow_secret: str = "artflow-mlflow-client"
    mlflow_secret_keys: list[str] = [
        "MLFLOW_TRACKING_URI",
        "MLFLOW_S3_ENDPOINT_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    ]
    # Each step's MLflow identity (docs/deploy.md "Identities"): the gate step `gate` (the only
    # one that may move `champion`), every other step `pipeline`. Its Secret (one key,
    # `password`) is mounted as a file, never an env var; {} runs the steps without one.
    mlflow_identity_secrets: dict[str, str] = {
        "pipeline": "artflow-mlflow-pipeline",
        "gate": "artflow-mlflow-gate",
    }
    # Local runs (kfp's local runner): a folder with one password file per identity
    # (`pipeline`, `gate`) gives each step its identity as on a cluster; "" = the runner's own.
    local_identities: str = ""


class Settings(Section):
    seed: int = 42
    data: DataCfg = DataCfg()
    validate_: ValidateCfg = Field(ValidateCfg(max_quarantine_share=0.05), alias="validate")
    sample: SampleCfg = SampleCfg()
    images: ImagesCfg = ImagesCfg()
    augment: AugmentCfg = AugmentCfg(width_shift=0.2, height_shift=0.2, shear=0.2, zoom=0.2)
    cnn: CnnCfg = CnnCfg()
    tuner: TunerCfg = TunerCfg()
    resnet: ResnetCfg = ResnetCfg()
    training: TrainingCfg = TrainingCfg()
    nst: NstCfg = NstCfg()
    stylizer: StylizerCfg = StylizerCfg(strength=1.0)
    cyclegan: CycleganCfg = CycleganCfg()
    gate: GateCfg = GateCfg(min_accuracy=0.5, min_macro_f1=0.45)
    serve: ServeCfg = ServeCfg(challenger_weight=0.1)
    drift: DriftCfg = DriftCfg(drift_share=0.3)
    abtest: AbTestCfg = AbTestCfg()
    novelty: NoveltyCfg = NoveltyCfg()
    pipeline: PipelineCfg = PipelineCfg()
    trainjob: TrainJobCfg = TrainJobCfg()
    # Set by the loader, not by params.yaml: which profile overlay was applied.
    profile: str = "default"

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def as_flat_dict(self) -> dict[str, Any]:
        """`section.key` -> value, for MLflow params and DVC-style diffs."""
        return _flatten(self.model_dump(by_alias=True))


def _check_weights(v: str) -> str:
    if v in {"imagenet", "none"}:
        return v
    if not Path(v).expanduser().is_file():
        raise ValueError(f"weights file {v!r} does not exist (use imagenet, none or a file path)")
    return str(Path(v).expanduser())


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in d.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def _deep_merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(
            f"config file not found: {path}", "pass --params with an existing file"
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of sections, not {type(data).__name__}")
    return data


def profile_path(profile: str) -> Path:
    path = PROFILES_DIR / f"{profile}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in PROFILES_DIR.glob("*.yaml"))
        raise ConfigError(f"unknown profile {profile!r}", f"choose one of: {', '.join(known)}")
    return path


def load_settings(
    params: str | Path | None = None,
    profile: str | None = None,
    overrides: dict[str, Any] | None = None,
) -> Settings:
    """Load params.yaml, overlay profiles/<profile>.yaml, then `overrides`; validate all.

    The profile defaults to the ARTFLOW_PROFILE environment variable (so DVC stages and
    Kubeflow components inherit it), and to no overlay when that is unset.
    """
    raw = _read_yaml(Path(params) if params else DEFAULT_PARAMS)
    profile = profile or os.environ.get("ARTFLOW_PROFILE") or None
    if profile and profile != "default":
        raw = _deep_merge(raw, _read_yaml(profile_path(profile)))
    if overrides:
        raw = _deep_merge(raw, overrides)
    # A dump of loaded settings (what multi-worker training hands its workers) keeps its name.
    raw["profile"] = profile or raw.get("profile") or "default"
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe(exc), "edit params.yaml or the profile overlay") from None


def _describe(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]).replace("validate_", "validate")
        got = err.get("input")
        shown = "" if isinstance(got, dict) else f" (got {got!r})"
        lines.append(f"{key}: {err['msg']}{shown}")
    return "invalid config:\n  " + "\n  ".join(lines)
