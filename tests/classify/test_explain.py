"""Grad-CAM: the heatmap sits where the painting's style is, for both classifier families."""

from __future__ import annotations

import base64
import io
import unicodedata

import numpy as np
import pytest
from PIL import Image

QUADRANTS = ((0, 0, 0.5, 0.5), (0.5, 0, 1, 0.5), (0, 0.5, 0.5, 1), (0.5, 0.5, 1, 1))


def _demo_artist(label: str):
    from artflow.data import demo

    by_key = {unicodedata.normalize("NFC", demo.folder_name(a.name)): a for a in demo.ARTISTS}
    return by_key[unicodedata.normalize("NFC", label.replace(" ", "_"))]


@pytest.mark.slow
def test_heatmap_mass_is_in_the_painted_quadrant(loaded_cnn) -> None:
    """Each artist painted in one quadrant of a bare canvas (a quarter of the area): the
    explanation of the painted artist puts most of its mass there, and so does the served
    explanation (of the predicted artist) whenever the prediction is that artist."""
    from artflow.classify.explain import grad_cam
    from artflow.classify.io import resize_batch
    from artflow.data import demo

    rng = np.random.default_rng(11)
    painted, served = [], []
    for i, label in enumerate(loaded_cnn.labels):
        for box in QUADRANTS:
            img = demo.regional_painting(_demo_artist(label), 64, 64, rng, box)
            x = resize_batch([img], loaded_cnn.image_size)[0]
            painted.append(grad_cam(loaded_cnn.model, x, i).mass_in(box))
            predicted = grad_cam(loaded_cnn.model, x)
            if predicted.class_index == i:
                served.append(predicted.mass_in(box))
    assert np.mean(painted) >= 0.6 and np.median(painted) >= 0.6  # uniform heat: 0.25
    # How many regional paintings the tiny CNN gets right varies between trainings (7-12 of
    # 44 seen): the served check needs a handful, the painted-artist check above carries it.
    assert len(served) >= 4 and np.mean(served) >= 0.5


def test_grad_cam_explains_the_resnet50_family() -> None:
    """The ResNet50 family's base is a nested model: the heatmap is its output grid, the
    probabilities are the model's own, and the overlay PNG covers the upload."""
    from artflow.classify.explain import answer, grad_cam
    from artflow.classify.resnet import build_resnet50

    model = build_resnet50(3, 64)  # weights none: 2x2 grid at 64 px (7x7 at 224)
    x = np.random.default_rng(0).uniform(0, 255, (64, 64, 3)).astype("float32")
    explained = grad_cam(model, x)
    assert explained.layer == "resnet50" and explained.heatmap.shape == (2, 2)
    np.testing.assert_allclose(explained.probabilities, np.asarray(model(x[None]))[0], atol=1e-4)
    assert explained.class_index == int(np.argmax(explained.probabilities))
    assert explained.heatmap.min() >= 0.0 and explained.heatmap.max() <= 1.0
    body = answer(explained, ["a", "b", "c"], width=300, height=200)
    assert body["bounds"] == {"x": 0, "y": 0, "width": 300, "height": 200}
    png = Image.open(io.BytesIO(base64.b64decode(body["overlay_png"].split(",", 1)[1])))
    assert (
        png.mode == "RGBA" and png.size == (300, 200) and tuple(body["overlay_size"]) == (300, 200)
    )
