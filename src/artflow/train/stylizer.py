"""Train the AdaIN stylizer's decoder and register the whole stylizer in MLflow.

Content images are photos and paintings, style images are Monet paintings and paintings
(from the workdir's splits). The VGG19 encoder stays frozen; the decoder learns to invert
AdaIN-renormalised relu4_1 features with
    loss = |enc(g) - t|^2 + style_weight * sum_l (|mu_l(g) - mu_l(s)|^2 + |sd_l(g) - sd_l(s)|^2)
with g = dec(t)
over relu1_1..relu4_1 (Huang & Belongie). The registered model takes 0..255 pixels.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from artflow.config import Settings
from artflow.data.layout import Workdir
from artflow.imageio import load_rgb, save_rgb

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


def _train_step_fn(encoder: Any, decoder: Any, adain: Any, opt: Any, style_weight: float) -> Any:
    import tensorflow as tf

    from artflow.style.losses import mean_std

    @tf.function
    def step(content: Any, style: Any) -> dict[str, Any]:
        c_feat = encoder(content)[-1]
        s_feats = encoder(style)
        t = adain([c_feat, s_feats[-1], tf.ones((tf.shape(content)[0], 1))])
        with tf.GradientTape() as tape:
            g_feats = encoder(decoder(t))
            lc = tf.reduce_mean(tf.square(g_feats[-1] - t))
            ls = tf.add_n(
                [
                    tf.reduce_mean(tf.square(gm - sm)) + tf.reduce_mean(tf.square(gs - ss))
                    for (gm, gs), (sm, ss) in zip(
                        map(mean_std, g_feats), map(mean_std, s_feats), strict=True
                    )
                ]
            )
            loss = lc + style_weight * ls
        grads = tape.gradient(loss, decoder.trainable_variables)
        opt.apply_gradients(zip(grads, decoder.trainable_variables, strict=True))
        return {"loss": loss, "content": lc, "style": ls}

    return step


def _fit(settings: Settings, wd: Workdir) -> tuple[Any, list[dict[str, float]]]:
    import keras
    from rich.progress import Progress

    from artflow.models.fast_style import AdaIN, build_decoder, build_encoder, build_stylizer
    from artflow.style.data import artworks, augmented, require, style_images

    cfg = settings.stylizer
    keras.utils.set_random_seed(settings.seed)
    content = require(style_images(wd, "train", "photo") + artworks(wd, "train"), "content", wd)
    style = require(style_images(wd, "train", "monet") + artworks(wd, "train"), "style", wd)
    batches = zip(
        augmented(content, cfg.image_size, cfg.batch_size, settings.seed),
        augmented(style, cfg.image_size, cfg.batch_size, settings.seed + 1),
        strict=False,
    )
    encoder, decoder = (
        build_encoder(cfg.encoder_weights, settings.seed),
        build_decoder(cfg.decoder_width),
    )
    step = _train_step_fn(
        encoder, decoder, AdaIN(), keras.optimizers.Adam(cfg.learning_rate), cfg.style_weight
    )
    history: list[dict[str, float]] = []
    with Progress(transient=True) as bar:
        task = bar.add_task("train stylizer", total=cfg.steps)
        for _, (c, s) in zip(range(cfg.steps), batches, strict=False):
            history.append({k: float(v) for k, v in step(c, s).items()})
            bar.update(
                task, advance=1, description=f"train stylizer loss {history[-1]['loss']:.4g}"
            )
    return build_stylizer(encoder, decoder), history


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
    """Train, score on held-out pairs, register as challenger; writes metrics/stylizer.json."""
    import mlflow

    from artflow import tracking
    from artflow.style.inference import Stylizer
    from artflow.style.plots import image_grid, loss_curve

    cfg = settings.stylizer
    out_dir = wd.models / "stylizer"
    data_files = [wd.style_csv("style_train"), wd.split_csv("train")]
    params = {f"stylizer.{k}": v for k, v in cfg.model_dump().items()}
    with tracking.start_run(EXPERIMENT, "stylizer", settings, params, data_files) as run:
        start = time.perf_counter()
        model, history = _fit(settings, wd)
        train_seconds = time.perf_counter() - start
        _log_history(history)
        pairs = _eval_pairs(wd, cfg.image_size)
        metrics, outputs = evaluate_stylizer(Stylizer(model), pairs, settings.nst.weights, 1.0)
        mlflow.log_metrics({**metrics, "train_seconds": train_seconds})
        grid = image_grid([[c, s, o] for (c, s), o in zip(pairs, outputs, strict=True)])
        mlflow.log_image(grid, "samples/content_style_result.png")
        curve = loss_curve(history, out_dir / "loss.png", "AdaIN decoder training")
        mlflow.log_artifact(str(curve), "plots")
        # A fixed sample lets anyone check that the registered version reproduces it.
        for name, img in {
            "content": pairs[0][0],
            "style": pairs[0][1],
            "output": outputs[0],
        }.items():
            save_rgb(img, out_dir / f"sample_{name}.png")
        info = tracking.log_keras_model(model, tracking.STYLIZER)
        version = str(info.registered_model_version)
        client = tracking.client()
        for key, value in {
            "image_size": cfg.image_size,
            "method": "adain",
            "encoder_weights": cfg.encoder_weights,
            "decoder_width": cfg.decoder_width,
        }.items():
            client.set_model_version_tag(tracking.STYLIZER, version, key, str(value))
        tracking.mark_challenger(tracking.STYLIZER, version)
        result = {
            "run_id": run.info.run_id,
            "model_name": tracking.STYLIZER,
            "version": version,
            "metrics": metrics,
            "train_seconds": train_seconds,
            "history": history,
        }
    wd.metrics.mkdir(parents=True, exist_ok=True)
    summary = {k: v for k, v in result.items() if k != "history"}
    (wd.metrics / "stylizer.json").write_text(json.dumps(summary, indent=2))
    return result


def sample_paths(wd: Workdir) -> dict[str, Path]:
    """The fixed sample written at training time (content, style, output)."""
    return {n: wd.models / "stylizer" / f"sample_{n}.png" for n in ("content", "style", "output")}
