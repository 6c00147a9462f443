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


def test_a_request_that_gave_up_is_left_out_of_its_batch():
    """run_live: one forward pass over the items still waiting; the dropped get None."""
    import keras

    from artflow.classify.cnn import build_cnn
    from artflow.classify.io import LoadedClassifier
    from artflow.serve.inference import Pending, run_live

    keras.utils.set_random_seed(0)
    loaded = LoadedClassifier(build_cnn(3, 32, dense_units=8), ["a", "b", "c"], 32, "m", "1", "cnn")
    runner = ClassifierRunner(loaded)
    seen: list[int] = []
    run = runner.run
    runner.run = lambda arrays: (seen.append(len(arrays)), run(arrays))[1]  # count, then run
    rng = np.random.default_rng(1)
    items = [Pending(rng.uniform(0, 255, (32, 32, 3)).astype(np.float32)) for _ in range(3)]
    items[1].dropped = True
    out = run_live(runner, items)
    assert seen == [2] and out[1] is None
    alone = run([items[2].array])
    np.testing.assert_allclose(out[2][0], alone[0][0], atol=1e-6)
    assert out[2][1] is not None and out[2][1].shape == alone[1][0].shape
    items[0].dropped = items[2].dropped = True
    assert run_live(runner, items) == [None, None, None] and seen == [2]
