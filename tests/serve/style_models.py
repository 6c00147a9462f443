"""Tiny untrained style models registered through the style helper's builders, for serving
tests: the AdaIN stylizer (VGG19 encoder, weights none) and a 1-block CycleGAN generator with
its Monet statistics (the `monet_reference` tag training sets)."""

from __future__ import annotations


def register_tiny_style_models() -> dict[str, str]:
    from artflow.config import load_settings
    from artflow.registry import tracking
    from artflow.style.adain.networks import build_decoder, build_encoder, build_stylizer
    from artflow.style.cyclegan.networks import build_generator, export_generator

    settings = load_settings(profile="smoke")
    with tracking.start_run("artflow-serve-tests", "tiny-style", settings):
        stylizer = build_stylizer(build_encoder("none"), build_decoder())
        info = tracking.log_keras_model(stylizer, tracking.STYLIZER)
        style_version = str(info.registered_model_version)
        generator = export_generator(build_generator(res_blocks=1, filters=8))
        info = tracking.log_keras_model(generator, tracking.CYCLEGAN)
        monet_version = str(info.registered_model_version)
    client = tracking.client()
    client.set_model_version_tag(tracking.CYCLEGAN, monet_version, "image_size", "32")
    client.set_model_version_tag(tracking.CYCLEGAN, monet_version, *_monet_reference())
    # Only challengers, as training leaves them: the service falls back to them.
    tracking.mark_challenger(tracking.STYLIZER, style_version)
    tracking.mark_challenger(tracking.CYCLEGAN, monet_version)
    return {"stylizer": style_version, "monet": monet_version}


def _monet_reference() -> tuple[str, str]:
    """The tag training gives a version: statistics of a few tiny "Monet paintings"."""
    import json

    import numpy as np

    from artflow.style.metrics import REFERENCE_TAG, monet_reference

    rng = np.random.default_rng(7)
    paintings = [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(4)]
    return REFERENCE_TAG, json.dumps(monet_reference(paintings, "none"))
