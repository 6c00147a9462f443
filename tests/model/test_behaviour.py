"""Behavioural tests of a classifier (Made-With-ML's tests/model): invariance, direction and
minimum functionality, on the model under test (tests/model/conftest.py: the smoke CNN, or a
registered champion with its own paintings)."""

from __future__ import annotations

import io
import unicodedata

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.slow  # they share the session's trained smoke CNN


def _labels(model, images) -> np.ndarray:
    return np.array(model.predict_labels(images))


def _agreement(model, images, changed) -> float:
    return float(np.mean(_labels(model, images) == _labels(model, changed)))


def _resize(img: np.ndarray, scale: float) -> np.ndarray:
    size = (round(img.shape[1] * scale), round(img.shape[0] * scale))
    return np.asarray(Image.fromarray(img).resize(size))


def _jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(buf).convert("RGB"))


def _brighten(img: np.ndarray, factor: float) -> np.ndarray:
    return np.clip(img.astype(np.float32) * factor, 0, 255).astype(np.uint8)


# ---- invariance: a change that says nothing about the painter leaves the answer alone


def test_flip_invariance(model, paintings) -> None:
    images = [p.image for p in paintings]
    assert _agreement(model, images, [img[:, ::-1] for img in images]) >= 0.8


def test_small_resize_invariance(model, paintings) -> None:
    images = [p.image for p in paintings]
    for scale in (0.85, 1.2):
        assert _agreement(model, images, [_resize(img, scale) for img in images]) >= 0.8


def test_mild_jpeg_recompression_keeps_the_prediction(model, paintings) -> None:
    images = [p.image for p in paintings]
    assert _agreement(model, images, [_jpeg(img, 75) for img in images]) >= 0.9


def test_small_brightness_change_keeps_the_prediction(model, paintings) -> None:
    images = [p.image for p in paintings]
    for factor in (0.9, 1.1):
        assert _agreement(model, images, [_brighten(img, factor) for img in images]) >= 0.8


def test_mirrored_painting_keeps_its_artist(model, paintings) -> None:
    """Of the paintings the model attributes correctly, the mirror images stay attributed."""
    right = [
        p
        for p, got in zip(paintings, _labels(model, [p.image for p in paintings]), strict=True)
        if got == p.artist
    ]
    assert len(right) >= len(paintings) // 2
    mirrored = _labels(model, [p.image[:, ::-1] for p in right])
    assert np.mean(mirrored == np.array([p.artist for p in right])) >= 0.8


# ---- minimum functionality


def test_blank_canvases_get_a_low_confidence(model, paintings) -> None:
    """Canvases with nothing on them are nobody's paintings: on average the model is less
    sure of them than of most real paintings. (One blank can still get 0.99 from a smoke CNN:
    a softmax has no "nobody" answer; the service's novelty check is what flags blanks.)"""
    rng = np.random.default_rng(0)
    colours = ((250, 250, 248), (226, 214, 190), (205, 205, 205), (30, 30, 30), (120, 100, 80))
    blanks = [
        np.clip(np.full((96, 80, 3), c, np.float32) + rng.normal(0, 3, (96, 80, 3)), 0, 255)
        for c in colours
    ]
    blank = model.predict([b.astype(np.uint8) for b in blanks]).max(axis=1)
    painted = model.predict([p.image for p in paintings]).max(axis=1)
    assert float(blank.mean()) < float(np.median(painted))


def _demo_artist(label: str):
    from artflow.data import demo

    by_key = {unicodedata.normalize("NFC", demo.folder_name(a.name)): a for a in demo.ARTISTS}
    return by_key[unicodedata.normalize("NFC", label.replace(" ", "_"))]


def test_fresh_demo_painting_of_artist_x_is_classified_as_x(model, demo_only) -> None:
    """New paintings from the generator (seeds never trained on)."""
    from artflow.data import demo

    rng = np.random.default_rng(12345)
    hits = total = 0
    for label in model.labels:
        paintings = [demo._painting(_demo_artist(label), 64, 64, rng) for _ in range(3)]
        hits += sum(p == label for p in model.predict_labels(paintings))
        total += 3
    assert hits / total >= 0.6


# ---- direction: more of an artist's style, more of that artist


def test_more_of_the_style_raises_the_artists_probability(model, demo_only) -> None:
    """The same artist painted over a quarter, then over the whole canvas: on average the
    artist's probability rises."""
    from artflow.data import demo

    rng = np.random.default_rng(2024)
    gains = []
    for i, label in enumerate(model.labels):
        for seed in rng.integers(1 << 31, size=3):
            part, whole = (
                demo.regional_painting(
                    _demo_artist(label), 64, 64, np.random.default_rng(seed), box
                )
                for box in ((0, 0, 0.5, 0.5), (0, 0, 1, 1))
            )
            probs = model.predict([part, whole])[:, i]
            gains.append(probs[1] - probs[0])
    assert np.mean(gains) > 0 and np.mean(np.array(gains) > 0) >= 0.6
