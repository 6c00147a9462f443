"""Train the photo -> Monet CycleGAN with checkpoints, resume, per-epoch samples and metrics.

LSGAN adversarial losses (MSE against ones / zeros), cycle-consistency L1 x lambda and
identity L1 x lambda/2; Adam(lr, beta_1) for both generators and both discriminators, the
learning rate decaying linearly to zero from `decay_start_epoch`. Both domains repeat and
reshuffle on their own, so an epoch (steps_per_epoch 0 = one pass over the photos) sees
every photo. A tf.train.CheckpointManager saves every `checkpoint_every` steps under
`<workdir>/models/cyclegan/checkpoints`; `resume=True` continues from the last one, step
counter included. The photo -> Monet generator is registered (0..255 pixels in and out).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from artflow.config import CycleganCfg, Settings
from artflow.data.layout import Workdir
from artflow.errors import ModelError
from artflow.imageio import load_rgb, save_rgb

EXPERIMENT = "artflow-style"
N_SAMPLES = 3  # held-out photos in each epoch's sample grid
REFERENCE_PAINTINGS = 64  # Monet paintings whose features make the version's monet_reference


@dataclass
class Nets:
    g: Any  # photo -> Monet
    f: Any  # Monet -> photo
    d_monet: Any
    d_photo: Any
    g_opt: Any
    d_opt: Any
    step: Any  # tf.Variable(int64): global step, saved in the checkpoint

    @property
    def gen_vars(self) -> list[Any]:
        return self.g.trainable_variables + self.f.trainable_variables

    @property
    def disc_vars(self) -> list[Any]:
        return self.d_monet.trainable_variables + self.d_photo.trainable_variables


def build_nets(cfg: CycleganCfg) -> Nets:
    """Both generators, both discriminators and their optimizers (loss-scaled under a
    mixed-precision policy); call under the strategy's scope."""
    import keras
    import tensorflow as tf

    from artflow.style.cyclegan.networks import build_discriminator, build_generator

    def adam() -> Any:
        opt = keras.optimizers.Adam(cfg.learning_rate, beta_1=cfg.beta_1)
        if keras.mixed_precision.global_policy().name == "mixed_float16":
            return keras.optimizers.LossScaleOptimizer(opt)
        return opt

    nets = Nets(
        g=build_generator(cfg.res_blocks, cfg.filters, "photo_to_monet"),
        f=build_generator(cfg.res_blocks, cfg.filters, "monet_to_photo"),
        d_monet=build_discriminator(cfg.filters, "d_monet"),
        d_photo=build_discriminator(cfg.filters, "d_photo"),
        g_opt=adam(),
        d_opt=adam(),
        step=tf.Variable(0, dtype=tf.int64, trainable=False, name="step"),
    )
    # Optimizer slots must exist before a restore can fill them.
    nets.g_opt.build(nets.gen_vars)
    nets.d_opt.build(nets.disc_vars)
    return nets


def lr_factor(epoch: int, cfg: CycleganCfg) -> float:
    """1 until decay_start_epoch, then linearly down to 0 at the end of the last epoch."""
    if epoch < cfg.decay_start_epoch:
        return 1.0
    return max(
        0.0, 1.0 - (epoch - cfg.decay_start_epoch) / max(1, cfg.epochs - cfg.decay_start_epoch)
    )


def train_step_fn(nets: Nets, lam: float, strategy: Any = None, xla: bool = False) -> Any:
    """One distributed step (per replica: losses, loss-scaled gradients, apply); mean losses.

    Without a strategy the default (one-device) one is used: the same code path as a GPU run.
    """
    import tensorflow as tf

    from artflow import runtime

    strategy = strategy or tf.distribute.get_strategy()
    replicas = float(strategy.num_replicas_in_sync)

    def mse(target: float, logits: Any) -> Any:
        return tf.reduce_mean(tf.square(tf.cast(logits, tf.float32) - target))

    def l1(a: Any, b: Any) -> Any:
        return tf.reduce_mean(tf.abs(tf.cast(a, tf.float32) - tf.cast(b, tf.float32)))

    def scaled(opt: Any, loss: Any) -> Any:
        # Gradients are summed over replicas: each contributes its share of the mean.
        loss = loss / replicas
        return opt.scale_loss(loss) if hasattr(opt, "scale_loss") else loss

    def replica_step(photo: Any, monet: Any) -> dict[str, Any]:
        with tf.GradientTape(persistent=True) as tape:
            fake_monet, fake_photo = nets.g(photo, training=True), nets.f(monet, training=True)
            cycled_photo = nets.f(fake_monet, training=True)
            cycled_monet = nets.g(fake_photo, training=True)
            same_photo, same_monet = nets.f(photo, training=True), nets.g(monet, training=True)
            d_fake_m, d_fake_p = nets.d_monet(fake_monet), nets.d_photo(fake_photo)
            d_real_m, d_real_p = nets.d_monet(monet), nets.d_photo(photo)
            adv = mse(1.0, d_fake_m) + mse(1.0, d_fake_p)
            cycle = lam * (l1(photo, cycled_photo) + l1(monet, cycled_monet))
            identity = 0.5 * lam * (l1(photo, same_photo) + l1(monet, same_monet))
            g_loss = adv + cycle + identity
            d_loss = 0.5 * (mse(1.0, d_real_m) + mse(0.0, d_fake_m)) + 0.5 * (
                mse(1.0, d_real_p) + mse(0.0, d_fake_p)
            )
            g_scaled, d_scaled = scaled(nets.g_opt, g_loss), scaled(nets.d_opt, d_loss)
        g_grads = tape.gradient(g_scaled, nets.gen_vars)
        d_grads = tape.gradient(d_scaled, nets.disc_vars)
        nets.g_opt.apply_gradients(zip(g_grads, nets.gen_vars, strict=True))
        nets.d_opt.apply_gradients(zip(d_grads, nets.disc_vars, strict=True))
        return {
            "g_loss": g_loss,
            "d_loss": d_loss,
            "adv": adv,
            "cycle": cycle,
            "identity": identity,
        }

    # XLA compiles the per-replica computation; strategy.run itself stays outside it.
    replica = tf.function(replica_step, jit_compile=True) if xla else replica_step

    @tf.function
    def step(photo: Any, monet: Any) -> dict[str, Any]:
        per_replica = strategy.run(replica, args=(photo, monet))
        nets.step.assign_add(1)
        return {k: runtime.replica_mean(strategy, v) for k, v in per_replica.items()}

    return step


def export_float32(nets: Nets, cfg: CycleganCfg) -> Any:
    """The photo -> Monet generator rebuilt in float32 (what CPUs serve fastest), 0..255."""
    import keras

    from artflow.style.cyclegan.networks import build_generator, export_generator

    policy = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("float32")
    try:
        generator = build_generator(cfg.res_blocks, cfg.filters, "photo_to_monet")
        generator.set_weights(nets.g.get_weights())
        return export_generator(generator)
    finally:
        keras.mixed_precision.set_global_policy(policy)


def _to_unit(images: list[np.ndarray]) -> Any:
    return np.stack(images).astype(np.float32) / 127.5 - 1.0


def _to_u8(batch: Any) -> list[np.ndarray]:
    arr = (np.asarray(batch) + 1.0) * 127.5
    return list(np.clip(arr + 0.5, 0, 255).astype(np.uint8))


def round_trip(nets: Nets, photos: list[np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """photos -> Monet -> cycled photos (uint8), inference mode."""
    unit = _to_unit(photos)
    fake = nets.g(unit, training=False)
    return _to_u8(fake), _to_u8(nets.f(fake, training=False))


def _checkpoints(nets: Nets, wd: Workdir, cfg: CycleganCfg, resume: bool) -> tuple[Any, str]:
    """(manager, note): restores on resume; a fresh run moves old checkpoints aside."""
    import tensorflow as tf

    folder = wd.models / "cyclegan" / "checkpoints"
    note = ""
    if not resume and folder.exists() and any(folder.iterdir()):
        aside = folder.with_name(f"checkpoints-{time.strftime('%Y%m%d-%H%M%S')}")
        folder.rename(aside)  # nothing lost: a fresh run never overwrites old checkpoints
        note = f"previous checkpoints moved to {aside}"
    ckpt = tf.train.Checkpoint(
        g=nets.g,
        f=nets.f,
        d_monet=nets.d_monet,
        d_photo=nets.d_photo,
        g_opt=nets.g_opt,
        d_opt=nets.d_opt,
        step=nets.step,
    )
    manager = tf.train.CheckpointManager(ckpt, str(folder), max_to_keep=3)
    if resume:
        if manager.latest_checkpoint:
            try:
                ckpt.restore(manager.latest_checkpoint).assert_existing_objects_matched()
            except (AssertionError, ValueError, tf.errors.OpError) as exc:
                raise ModelError(
                    f"{manager.latest_checkpoint} does not match the cyclegan settings: "
                    f"{str(exc).splitlines()[0][:200]}",
                    "resume with the settings it was trained with, or start over without --resume",
                ) from None
            note = f"resumed from {manager.latest_checkpoint} (step {int(nets.step.numpy())})"
        else:
            note = f"no checkpoint in {folder}: starting from step 0"
    return manager, note


def train_cyclegan(
    settings: Settings,
    wd: Workdir,
    resume: bool = False,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
) -> dict[str, Any]:
    """Train (or resume), register the generator as challenger; writes metrics/cyclegan.json.

    `on_step(step, losses)` is called after every step (progress hooks; tests use it to
    interrupt a run as Ctrl-C would).
    """
    import mlflow
    from rich.progress import Progress

    from artflow import runtime
    from artflow.registry import tracking
    from artflow.style.data import augmented, input_rate, require, style_images
    from artflow.style.plots import image_grid

    cfg = settings.cyclegan
    strategy = runtime.configure(settings.training, settings.seed)
    photos = require(style_images(wd, "train", "photo"), "photo", wd)
    monets = require(style_images(wd, "train", "monet"), "Monet", wd)
    held_out = style_images(wd, "test", "photo") or photos
    samples = [load_rgb(p, cfg.image_size) for p in held_out[:N_SAMPLES]]
    per_epoch = cfg.steps_per_epoch or math.ceil(len(photos) / cfg.batch_size)
    total = cfg.epochs * per_epoch
    with strategy.scope():
        nets = build_nets(cfg)
        manager, note = _checkpoints(nets, wd, cfg, resume)
        step_fn = train_step_fn(
            nets, cfg.lambda_cycle, strategy, runtime.use_xla(settings.training)
        )
    start_step = int(nets.step.numpy())
    global_batch = cfg.batch_size * strategy.num_replicas_in_sync
    photo_ds = augmented(photos, cfg.image_size, global_batch, settings.seed + start_step, "unit")
    monet_ds = augmented(
        monets, cfg.image_size, global_batch, settings.seed + start_step + 1, "unit"
    )
    rates = {"input_images_per_s": input_rate(photo_ds, min(8, total))}
    batches = zip(
        strategy.experimental_distribute_dataset(photo_ds),
        strategy.experimental_distribute_dataset(monet_ds),
        strict=False,
    )
    history: list[dict[str, float]] = []
    epoch_losses: list[dict[str, float]] = []
    step_seconds = 1e-9
    params = {f"cyclegan.{k}": v for k, v in cfg.model_dump().items()}
    params |= {"steps_per_epoch_effective": per_epoch, "start_step": start_step}
    params |= {"strategy": type(strategy).__name__, "replicas": strategy.num_replicas_in_sync}
    data_files = [wd.style_csv("style_train")]
    tags = {"artflow.resumed": str(resume and start_step > 0)}
    out_dir = wd.models / "cyclegan"
    with (
        tracking.start_run(EXPERIMENT, "cyclegan", settings, params, data_files, tags=tags) as run,
        Progress(transient=True) as bar,
    ):
        if note:
            mlflow.set_tag("artflow.checkpoint_note", note)
        task = bar.add_task("train cyclegan", total=total, completed=start_step)
        for step in range(start_step, total):
            epoch = step // per_epoch
            if step == start_step or step % per_epoch == 0:
                lr = cfg.learning_rate * lr_factor(epoch, cfg)
                nets.g_opt.learning_rate = lr
                nets.d_opt.learning_rate = lr
            photo, monet = next(batches)
            began = time.perf_counter()
            losses = {k: float(v) for k, v in step_fn(photo, monet).items()}
            if step > start_step:  # the first step traces
                step_seconds += time.perf_counter() - began
            history.append(losses)
            epoch_losses.append(losses)
            done = step + 1
            if done % cfg.checkpoint_every == 0 or done == total:
                manager.save(checkpoint_number=done)
            bar.update(task, advance=1, description=f"epoch {epoch + 1} g {losses['g_loss']:.3f}")
            if done % per_epoch == 0 or done == total:
                mean = {k: float(np.mean([h[k] for h in epoch_losses])) for k in losses}
                mlflow.log_metrics({**mean, "lr": lr}, step=epoch)
                fake, cycled = round_trip(nets, samples)
                grid = image_grid([list(r) for r in zip(samples, fake, cycled, strict=True)])
                mlflow.log_image(grid, f"samples/epoch_{epoch + 1:03d}.png")
                epoch_losses = []
            if on_step:
                on_step(done, losses)
        if total - start_step > 1:
            rates["step_images_per_s"] = (total - start_step - 1) * global_batch / step_seconds
        mlflow.log_metrics(rates)
        result = _finish(settings, wd, nets, held_out, monets, history, out_dir)
        result["rates"] = rates
        result |= {"run_id": run.info.run_id, "start_step": start_step, "note": note}
    wd.metrics.mkdir(parents=True, exist_ok=True)
    summary = {k: v for k, v in result.items() if k != "history"}
    (wd.metrics / "cyclegan.json").write_text(json.dumps(summary, indent=2))
    return result


def _finish(
    settings: Settings,
    wd: Workdir,
    nets: Nets,
    held_out: list[str],
    monets: list[str],
    history: list[dict[str, float]],
    out_dir: Any,
) -> dict[str, Any]:
    """Held-out metrics, loss curve, sample for reproducibility, registration."""
    import mlflow

    from artflow.registry import tracking
    from artflow.style import metrics as quality
    from artflow.style.inference import MonetTranslator
    from artflow.style.metrics import cycle_l1, mean_metrics, style_metrics
    from artflow.style.plots import loss_curve

    cfg = settings.cyclegan
    photos = [load_rgb(p, cfg.image_size) for p in held_out[:16]]
    styles = [load_rgb(p, cfg.image_size) for p in monets[: len(photos)]]
    fake, cycled = round_trip(nets, photos)
    rows = [
        style_metrics(o, c, s, settings.nst.weights)
        for o, c, s in zip(fake, photos, styles, strict=False)
    ]
    # The Monet set's statistics travel with the version (its tag): serving scores its answers
    # against them, and the candidate's own value on held-out photos is the gate's reference.
    reference = quality.monet_reference(
        [load_rgb(p, cfg.image_size) for p in monets[:REFERENCE_PAINTINGS]], settings.nst.weights
    )
    distance = float(np.mean([quality.monet_distance(o, reference) for o in fake]))
    metrics = {**mean_metrics(rows), "cycle_l1": cycle_l1(photos, cycled)}
    metrics["monet_distance"] = distance
    mlflow.log_metrics(metrics)
    if history:
        curve = loss_curve(history, out_dir / "loss.png", "CycleGAN training")
        mlflow.log_artifact(str(curve), "plots")
    model = export_float32(nets, cfg)
    export = out_dir / "export"
    save_rgb(photos[0], export / "sample_photo.png")
    # Through the served code path, so a loaded version must reproduce it exactly.
    save_rgb(
        MonetTranslator(model, cfg.image_size).translate(photos[0]), export / "sample_monet.png"
    )
    info = tracking.log_keras_model(model, tracking.CYCLEGAN)
    version = str(info.registered_model_version)
    client = tracking.client()
    for key, value in {
        "image_size": cfg.image_size,
        "res_blocks": cfg.res_blocks,
        "filters": cfg.filters,
        "step": int(nets.step.numpy()),
        quality.REFERENCE_TAG: json.dumps(reference, separators=(",", ":")),
    }.items():
        client.set_model_version_tag(tracking.CYCLEGAN, version, key, str(value))
    tracking.mark_challenger(tracking.CYCLEGAN, version)
    return {
        "model_name": tracking.CYCLEGAN,
        "version": version,
        "metrics": metrics,
        "step": int(nets.step.numpy()),
        "history": history,
    }
