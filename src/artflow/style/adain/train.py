"""Train the AdaIN stylizer and register the whole stylizer in MLflow.

Content images are photos and paintings, style images are Monet paintings and paintings
(from the workdir's splits). VGG19 to relu4_1 (frozen) is the loss network T; the stylizer's
encoder E is T itself (`encoder: vgg19`) or a thin student (`distilled`), and the decoder D
learns to invert AdaIN-renormalised features:
    t = AdaIN(E(c), E(s)), g = D(t), target = AdaIN(T(c), T(s))
    loss = |T(g) - target|^2 + style_weight * sum_l (|mu_l(T g) - mu_l(T s)|^2 + |sd_l ...|^2)
over relu1_1..relu4_1 (Huang & Belongie). A student also learns, jointly, to match T's taps
through 1x1 linear embeddings W_l (collaborative distillation, Wang et al. 2020):
    + distill_weight * |T(g) - target|^2 * mean_l |W_l E_l(x) - T_l(x)|^2 / |T_l(x)|^2
(scaled by the content term so the two stay balanced whatever the features' scale).
The fast stylizer (`stylizer.fast`, `train_fast_stylizer`) is such a student with a thin
decoder, taught by a registered VGG19 stylizer: its encoder is T, and its decoder's output
for the same pair is a target too (pixels and taps, relative, x teacher_weight x the content
term); the student starts as calibrated channel selections of the teacher's networks.
The loop runs under the configured runtime (artflow.runtime: tf.distribute strategy, mixed
precision with loss scaling, XLA); the registered model is float32 and takes 0..255 pixels.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from artflow.config import Settings, StylizerCfg
from artflow.data.layout import Workdir
from artflow.families import STYLIZER
from artflow.imageio import load_rgb, save_rgb

log = logging.getLogger(__name__)

EXPERIMENT = "artflow-style"
N_EVAL = 4  # held-out content/style pairs scored and shown in the sample grid


def _eval_pairs(wd: Workdir, size: int) -> list[tuple[np.ndarray, np.ndarray]]:
    from artflow.style.data import artworks, style_images

    photos = style_images(wd, "test", "photo") or style_images(wd, "train", "photo")
    styles = style_images(wd, "train", "monet") or artworks(wd, "test")
    return [
        (load_rgb(c, size), load_rgb(s, size))
        for c, s in zip(photos[:N_EVAL], styles[:N_EVAL], strict=False)
    ]


@dataclass
class Nets:
    """What the stylizer's training step updates and reads."""

    teacher: Any  # VGG19 to relu4_1: the loss network (and, when distilled, the teacher)
    encoder: Any  # the stylizer's encoder: the teacher itself (vgg19) or a thin student
    decoder: Any
    embeddings: list[Any]  # student -> teacher 1x1 convs per tap (distilled only)
    optimizer: Any
    reference: Any = None  # a teacher stylizer's decoder (its encoder is `teacher`), frozen

    @property
    def distilled(self) -> bool:
        return self.encoder is not self.teacher

    @property
    def trainable(self) -> list[Any]:
        extra = self.encoder.trainable_variables if self.distilled else []
        for emb in self.embeddings:
            extra = extra + emb.trainable_variables
        return self.decoder.trainable_variables + extra


def _networks(cfg: StylizerCfg, seed: int) -> tuple[Any, Any, Any]:
    """(teacher, encoder, decoder) under the current dtype policy."""
    from artflow.style.adain.networks import (
        build_decoder,
        build_encoder,
        build_student_encoder,
        feature_channels,
    )

    teacher = build_encoder(cfg.encoder_weights, seed)
    encoder = teacher if cfg.encoder == "vgg19" else build_student_encoder(cfg.encoder_width)
    return teacher, encoder, build_decoder(cfg.decoder_width, feature_channels(encoder))


def build_nets(
    cfg: StylizerCfg, seed: int, teacher_model: Any = None, batch: tuple[Any, Any] | None = None
) -> Nets:
    """The networks and optimizer (call under the strategy's scope).

    With `teacher_model` (a trained VGG19 stylizer) its encoder is the loss network, its
    decoder the output-level teacher, and (`init_from_teacher`, given a (content, style)
    `batch` to calibrate on) the stylizer's encoder and decoder start as channel selections
    of them instead of random weights.
    """
    import keras

    from artflow.style.adain.networks import build_embeddings

    teacher, encoder, decoder = _networks(cfg, seed)
    reference = None
    if teacher_model is not None:
        vgg, reference = teacher_model.get_layer("encoder"), teacher_model.get_layer("decoder")
        vgg.trainable = reference.trainable = False
        if encoder is teacher:
            encoder = vgg
        teacher = vgg
        if cfg.init_from_teacher and batch is not None:
            _init_from_teacher(teacher, reference, encoder, decoder, batch)
    embeddings = []
    if encoder is not teacher:
        embeddings = build_embeddings(encoder, teacher)
        for emb, tap in zip(embeddings, encoder.outputs, strict=True):
            emb.build(tap.shape)
    optimizer = keras.optimizers.Adam(cfg.learning_rate)
    if keras.mixed_precision.global_policy().name == "mixed_float16":
        # VGG-space losses are large (1e3-1e5): the default initial scale (2^15) would
        # overflow float16 gradients and skip the first ~15 steps; dynamic scaling still
        # grows the scale when gradients are small.
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer, initial_scale=1.0)
    return Nets(teacher, encoder, decoder, embeddings, optimizer, reference)


def _init_from_teacher(
    teacher: Any, reference: Any, encoder: Any, decoder: Any, batch: tuple[Any, Any]
) -> None:
    """Encoder and decoder as calibrated channel selections of the teacher stylizer's."""
    import tensorflow as tf

    from artflow.style.adain.networks import AdaIN, select_channels

    adain, content, style = AdaIN(), *(tf.cast(x, tf.float32) for x in batch)
    ones = tf.ones((tf.shape(content)[0], 1))
    both = tf.concat([content, style], 0)
    if encoder is teacher:
        keep, feats = None, teacher(both)[-1]
        t_feats = s_feats = feats
    else:
        keep, t_feats, s_feats = select_channels(teacher, encoder, both, both)
    n = content.shape[0]
    t_in = adain([t_feats[:n], t_feats[n:], ones])
    s_in = adain([s_feats[:n], s_feats[n:], ones])
    select_channels(reference, decoder, t_in, s_in, keep)


def _f32(features: list[Any]) -> list[Any]:
    import tensorflow as tf

    return [tf.cast(f, tf.float32) for f in features]


def _losses(nets: Nets, adain: Any, content: Any, style: Any, cfg: StylizerCfg) -> dict[str, Any]:
    """AdaIN loss in the teacher's (VGG19) feature space, plus the distillation loss.

    The target is AdaIN of the teacher's features, so a distilled stylizer learns what the
    VGG19 stylizer aims for; the student's own AdaIN output is what its decoder sees.
    """
    import tensorflow as tf

    from artflow.style.losses import mean_std

    t_c, t_s = _f32(nets.teacher(content)), _f32(nets.teacher(style))
    ones = tf.ones((tf.shape(content)[0], 1))
    target = tf.stop_gradient(adain([t_c[-1], t_s[-1], ones]))
    if nets.distilled:
        s_c, s_s = _f32(nets.encoder(content)), _f32(nets.encoder(style))
        t = adain([s_c[-1], s_s[-1], ones])
    else:
        s_c, s_s, t = [], [], target
    g = tf.cast(nets.decoder(t), tf.float32)
    g_feats = _f32(nets.teacher(g))
    lc = tf.reduce_mean(tf.square(g_feats[-1] - target))
    ls = tf.add_n(
        [
            tf.reduce_mean(tf.square(gm - sm)) + tf.reduce_mean(tf.square(gs - ss))
            for (gm, gs), (sm, ss) in zip(map(mean_std, g_feats), map(mean_std, t_s), strict=True)
        ]
    )
    losses = {"content": lc, "style": ls}
    loss = lc + cfg.style_weight * ls
    if cfg.color_weight:
        # The style's colours: per-channel pixel mean and spread of the output vs the style's.
        (gm, gs), (sm, ss) = mean_std(g), mean_std(tf.cast(style, tf.float32))
        color = tf.reduce_mean(tf.square(gm - sm)) + tf.reduce_mean(tf.square(gs - ss))
        losses["color"] = color
        loss = loss + cfg.color_weight * color
    if nets.reference is not None:
        # Output-level teacher: the teacher stylizer's (clipped) output for the same pair is
        # `reference(target)`; match its pixels and every tap, each relative to its energy.
        ref = tf.stop_gradient(
            tf.clip_by_value(tf.cast(nets.reference(target), tf.float32), 0.0, 255.0)
        )
        r_feats = _f32(nets.teacher(ref))
        terms = [
            tf.reduce_mean(tf.square(a - b)) / (tf.reduce_mean(tf.square(b)) + 1e-6)
            for a, b in zip([g, *g_feats], [ref, *r_feats], strict=True)
        ]
        teach = tf.add_n(terms) / float(len(terms))
        losses["teacher"] = teach
        loss = loss + cfg.teacher_weight * tf.stop_gradient(lc + 1e-6) * teach
    if nets.distilled:
        # Linear-embedding loss, each tap relative to the teacher's energy (scale-free).
        pairs = zip(nets.embeddings * 2, s_c + s_s, t_c + t_s, strict=True)
        terms = [
            tf.reduce_mean(tf.square(tf.cast(emb(f), tf.float32) - t))
            / tf.stop_gradient(tf.reduce_mean(tf.square(t)) + 1e-6)
            for emb, f, t in pairs
        ]
        distill = tf.add_n(terms) / float(len(terms))
        losses["distill"] = distill
        loss = loss + cfg.distill_weight * tf.stop_gradient(lc + 1e-6) * distill
    return {"loss": loss, **losses}


def _train_step_fn(nets: Nets, cfg: StylizerCfg, strategy: Any, xla: bool) -> Any:
    """One distributed step: per replica loss -> (scaled) gradients -> apply; mean losses."""
    import tensorflow as tf

    from artflow import runtime
    from artflow.style.adain.networks import AdaIN

    adain = AdaIN(dtype="float32")
    scaled = hasattr(nets.optimizer, "scale_loss")
    replicas = float(strategy.num_replicas_in_sync)

    def replica_step(content: Any, style: Any) -> dict[str, Any]:
        variables = nets.trainable
        with tf.GradientTape() as tape:
            losses = _losses(nets, adain, content, style, cfg)
            # Gradients are summed over replicas: each contributes its share of the mean.
            loss = losses["loss"] / replicas
            if scaled:
                loss = nets.optimizer.scale_loss(loss)
        grads = tape.gradient(loss, variables)
        nets.optimizer.apply_gradients(zip(grads, variables, strict=True))
        return losses

    # XLA compiles the per-replica computation; strategy.run itself stays outside it.
    replica = tf.function(replica_step, jit_compile=True) if xla else replica_step

    @tf.function
    def step(content: Any, style: Any) -> dict[str, Any]:
        per_replica = strategy.run(replica, args=(content, style))
        return {k: runtime.replica_mean(strategy, v) for k, v in per_replica.items()}

    return step


def _fit(
    settings: Settings, wd: Workdir, cfg: StylizerCfg, teacher_uri: str | None = None
) -> tuple[Any, list[dict[str, float]], dict[str, float]]:
    """Train under the configured runtime (from the stylizer at `teacher_uri`, when given);
    returns the float32 stylizer, losses, input rates."""
    from rich.progress import Progress

    from artflow import runtime
    from artflow.registry import tracking
    from artflow.style.data import artworks, augmented, input_rate, require, style_images

    strategy = runtime.configure(settings.training, settings.seed)
    content = require(style_images(wd, "train", "photo") + artworks(wd, "train"), "content", wd)
    style = require(style_images(wd, "train", "monet") + artworks(wd, "train"), "style", wd)
    global_batch = cfg.batch_size * strategy.num_replicas_in_sync
    c_ds = augmented(content, cfg.image_size, global_batch, settings.seed)
    s_ds = augmented(style, cfg.image_size, global_batch, settings.seed + 1)
    rates = {"input_images_per_s": input_rate(c_ds, min(8, cfg.steps))}
    batches = zip(
        strategy.experimental_distribute_dataset(c_ds),
        strategy.experimental_distribute_dataset(s_ds),
        strict=False,
    )
    with strategy.scope():
        teacher = tracking.load_keras_model(teacher_uri) if teacher_uri else None
        first = (next(iter(c_ds)), next(iter(s_ds))) if teacher_uri else None
        nets = build_nets(cfg, settings.seed, teacher, first)
        step = _train_step_fn(nets, cfg, strategy, runtime.use_xla(settings.training))
    history: list[dict[str, float]] = []
    with Progress(transient=True) as bar:
        task = bar.add_task("train stylizer", total=cfg.steps)
        for i, (c, s) in zip(range(cfg.steps), batches, strict=False):
            if i == 1:  # the first step traces; time the rest
                start = time.perf_counter()
            history.append({k: float(v) for k, v in step(c, s).items()})
            bar.update(
                task, advance=1, description=f"train stylizer loss {history[-1]['loss']:.4g}"
            )
    if cfg.steps > 1:
        seconds = time.perf_counter() - start
        rates["step_images_per_s"] = (cfg.steps - 1) * global_batch / max(seconds, 1e-9)
    return _export(nets, cfg, settings.seed), history, rates


def _export(nets: Nets, cfg: StylizerCfg, seed: int) -> Any:
    """The stylizer rebuilt in float32 with the trained weights (what CPUs serve fastest)."""
    import keras

    from artflow.style.adain.networks import build_stylizer

    policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")
    try:
        _, encoder, decoder = _networks(cfg, seed)
        encoder.set_weights(nets.encoder.get_weights())
        decoder.set_weights(nets.decoder.get_weights())
        encoder.trainable = False
        return build_stylizer(encoder, decoder)
    finally:
        keras.mixed_precision.set_global_policy(policy)


def _log_history(history: list[dict[str, float]]) -> None:
    import mlflow
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    metrics = [Metric(f"train_{k}", v, now, i) for i, h in enumerate(history) for k, v in h.items()]
    run_id = mlflow.active_run().info.run_id
    for i in range(0, len(metrics), 900):
        mlflow.MlflowClient().log_batch(run_id, metrics=metrics[i : i + 900])


def evaluate_stylizer(
    stylizer: Any, pairs: list[tuple[np.ndarray, np.ndarray]], weights: str, strength: float
) -> tuple[dict[str, float], list[np.ndarray]]:
    """Shared style metrics averaged over the pairs, plus the stylized images."""
    from artflow.style.metrics import mean_metrics, style_metrics

    outputs = [stylizer.stylize(c, s, strength) for c, s in pairs]
    rows = [style_metrics(o, c, s, weights) for o, (c, s) in zip(outputs, pairs, strict=True)]
    base = [style_metrics(c, c, s, weights) for c, s in pairs]
    return {**mean_metrics(rows), "content_style_loss": mean_metrics(base)["style_loss"]}, outputs


def train_stylizer(settings: Settings, wd: Workdir) -> dict[str, Any]:
    """Train the stylizer (`stylizer`), register it as challenger; metrics/stylizer.json."""
    return _train_and_register(settings, wd, settings.stylizer, "stylizer")


def train_fast_stylizer(settings: Settings, wd: Workdir) -> dict[str, Any]:
    """Train the CPU-fast stylizer (`stylizer` with `stylizer.fast` applied) from a registered
    VGG19 stylizer as teacher, register it as challenger; metrics/fast_stylizer.json."""
    version = teacher_version()
    log.info("fast stylizer: teacher %s v%s", STYLIZER, version)
    return _train_and_register(
        settings, wd, settings.stylizer.fast_cfg(), "fast_stylizer", teacher=version
    )


def teacher_version() -> str:
    """The VGG19 stylizer to learn from: the champion when it is one, else the newest."""
    from artflow.errors import ModelError
    from artflow.registry import tracking

    champion = tracking.alias_version(STYLIZER, tracking.CHAMPION)
    if champion is not None and champion.tags.get("encoder") == "vgg19":
        return str(champion.version)
    found = tracking.client().search_model_versions(f"name='{STYLIZER}'")
    vgg = [int(mv.version) for mv in found if mv.tags.get("encoder") == "vgg19"]
    if not vgg:
        raise ModelError(
            f"no VGG19 stylizer registered in {STYLIZER} to teach the fast one",
            "train it first: artflow train stylizer (the style pipeline does, before this step)",
        )
    return str(max(vgg))


def _train_and_register(
    settings: Settings, wd: Workdir, cfg: StylizerCfg, name: str, teacher: str | None = None
) -> dict[str, Any]:
    """Train, score on held-out pairs, register as challenger; writes metrics/<name>.json."""
    import mlflow

    from artflow.registry import tracking
    from artflow.style.inference import Stylizer
    from artflow.style.plots import image_grid, loss_curve

    out_dir = wd.models / name
    data_files = [wd.style_csv("style_train"), wd.split_csv("train")]
    params = {f"stylizer.{k}": v for k, v in cfg.model_dump(exclude={"fast"}).items()}
    if teacher:
        params["stylizer.teacher_version"] = teacher
    teacher_uri = tracking.model_uri(STYLIZER, teacher) if teacher else None
    with tracking.start_run(EXPERIMENT, name, settings, params, data_files) as run:
        start = time.perf_counter()
        model, history, rates = _fit(settings, wd, cfg, teacher_uri)
        train_seconds = time.perf_counter() - start
        _log_history(history)
        mlflow.log_metrics(rates)
        pairs = _eval_pairs(wd, cfg.image_size)
        metrics, outputs = evaluate_stylizer(Stylizer(model), pairs, settings.nst.weights, 1.0)
        mlflow.log_metrics({**metrics, "train_seconds": train_seconds})
        grid = image_grid([[c, s, o] for (c, s), o in zip(pairs, outputs, strict=True)])
        mlflow.log_image(grid, "samples/content_style_result.png")
        curve = loss_curve(history, out_dir / "loss.png", f"AdaIN {name} training")
        mlflow.log_artifact(str(curve), "plots")
        # A fixed sample lets anyone check that the registered version reproduces it.
        for key, img in {
            "content": pairs[0][0],
            "style": pairs[0][1],
            "output": outputs[0],
        }.items():
            save_rgb(img, out_dir / f"sample_{key}.png")
        info = tracking.log_keras_model(model, STYLIZER)
        version = str(info.registered_model_version)
        client = tracking.client()
        for key, value in {
            "image_size": cfg.image_size,
            "method": "adain",
            "encoder": cfg.encoder,
            "encoder_width": cfg.encoder_width if cfg.encoder == "distilled" else 1.0,
            "encoder_weights": cfg.encoder_weights,
            "decoder_width": cfg.decoder_width,
            "teacher_version": teacher or "",
        }.items():
            client.set_model_version_tag(STYLIZER, version, key, str(value))
        tracking.mark_challenger(STYLIZER, version)
        result = {
            "run_id": run.info.run_id,
            "model_name": STYLIZER,
            "version": version,
            "family": name,
            "metrics": metrics,
            "train_seconds": train_seconds,
            "rates": rates,
            "history": history,
        }
    wd.metrics.mkdir(parents=True, exist_ok=True)
    summary = {k: v for k, v in result.items() if k != "history"}
    (wd.metrics / f"{name}.json").write_text(json.dumps(summary, indent=2))
    return result


def sample_paths(wd: Workdir) -> dict[str, Path]:
    """The fixed sample written at training time (content, style, output)."""
    return {n: wd.models / "stylizer" / f"sample_{n}.png" for n in ("content", "style", "output")}
