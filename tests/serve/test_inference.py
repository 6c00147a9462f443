"""The service's resize (Pillow) against the training pipeline's (TensorFlow), in-process."""

from __future__ import annotations

import numpy as np
import pytest

from artflow.serve.inference import ClassifierRunner


class _Loaded:
    image_size = 224


@pytest.mark.parametrize("shape", [(240, 320), (300, 400), (225, 300), (224, 224), (100, 80)])
def test_prepare_equals_the_training_resize_up_to_rounding(shape):
    from artflow.data.tfdata import resize

    rng = np.random.default_rng(sum(shape))
    smooth = rng.integers(0, 256, (shape[0] // 4 + 1, shape[1] // 4 + 1, 3), dtype=np.uint8)
    photo = np.kron(smooth, np.ones((4, 4, 1), np.uint8))[: shape[0], : shape[1]]
    for rgb in (photo, rng.integers(0, 256, (*shape, 3), dtype=np.uint8)):
        served = ClassifierRunner(_Loaded(), with_embedding=False).prepare(rgb)
        trained = resize(rgb, 224).numpy().astype(np.float32)
        assert served.shape == (224, 224, 3) and served.dtype == np.float32
        diff = np.abs(served - trained)
        assert diff.max() <= 1.0, (shape, diff.max())
        assert diff.mean() < 0.35, (shape, diff.mean())
