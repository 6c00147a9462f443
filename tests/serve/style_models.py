"""Tiny untrained style models registered through the style helper's builders, for serving
tests: the AdaIN stylizer (VGG19 encoder, weights none) and a 1-block CycleGAN generator."""

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
    tracking.client().set_model_version_tag(tracking.CYCLEGAN, monet_version, "image_size", "32")
    # Only challengers, as training leaves them: the service falls back to them.
    tracking.mark_challenger(tracking.STYLIZER, style_version)
    tracking.mark_challenger(tracking.CYCLEGAN, monet_version)
    return {"stylizer": style_version, "monet": monet_version}
