"""tf.data input: decoding odd images, order, one-hot, augmentation only in training."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from artflow.config import AugmentCfg
from artflow.data import tfdata
from artflow.data.layout import Workdir
from artflow.errors import DataError

SIZE = 32


def _gradient(h: int = 40, w: int = 48) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 5, y * 6, (x + y) * 2], axis=-1).clip(0, 255).astype("uint8")


@pytest.fixture(scope="module")
def odd_workdir(tmp_path_factory: pytest.TempPathFactory) -> Workdir:
    """RGB JPEG, grayscale PNG, CMYK JPEG, RGBA PNG, EXIF-rotated JPEG, palette GIF."""
    wd = Workdir.at(tmp_path_factory.mktemp("odd"))
    img_dir = wd.root / "images"
    img_dir.mkdir()
    rgb = Image.fromarray(_gradient())
    files = {
        "rgb.jpg": lambda p: rgb.save(p, quality=95),
        "gray.png": lambda p: rgb.convert("L").save(p),
        "cmyk.jpg": lambda p: rgb.convert("CMYK").save(p, quality=95),
        "rgba.png": lambda p: rgb.convert("RGBA").save(p),
        "rotated.jpg": lambda p: _save_rotated(rgb, p),
        "palette.gif": lambda p: rgb.convert("P").save(p),
    }
    for name, write in files.items():
        write(img_dir / name)
    frame = pd.DataFrame(
        {"path": [f"images/{n}" for n in files], "artist": "A", "label": list(range(len(files)))}
    )
    wd.splits.mkdir()
    for split in tfdata.SPLITS:
        frame.to_csv(wd.split_csv(split), index=False)
    wd.labels.write_text(json.dumps([f"c{i}" for i in range(len(files))]))
    return wd


def _save_rotated(img: Image.Image, path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    img.save(path, quality=95, exif=exif)


def _batches(split: tfdata.Split) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in split.dataset], strict=True)
    return np.concatenate(xs), np.concatenate(ys)


def test_every_mode_decodes_to_rgb_like_imageio(odd_workdir: Workdir) -> None:
    from artflow.classify.io import resize_batch
    from artflow.imageio import load_rgb

    split = tfdata.dataset(odd_workdir, "val", SIZE, 4, 6, cache=None)
    x, y = _batches(split)
    assert x.shape == (6, SIZE, SIZE, 3) and x.dtype == np.float32
    assert y.shape == (6, 6) and (y.argmax(1) == np.arange(6)).all()  # CSV order kept, one-hot
    # Same pixels as the serving path (imageio decode + resize_batch), for every odd format.
    expected = resize_batch([load_rgb(odd_workdir.abs(p)) for p in split.frame["path"]], SIZE)
    assert np.abs(x - expected).max() == 0
    names = split.frame["path"].str.split("/").str[-1].tolist()
    gray = x[names.index("gray.png")]
    assert np.abs(gray[..., 0] - gray[..., 1]).max() <= 1.0  # grayscale became 3 equal channels
    # The CMYK JPEG and the EXIF-rotated one still look like the RGB original (rotated: 90°).
    rgb = x[names.index("rgb.jpg")]
    assert np.abs(x[names.index("cmyk.jpg")] - rgb).mean() < 12
    assert tfdata.needs_python_decode(odd_workdir.abs("images/rotated.jpg"))
    assert not tfdata.needs_python_decode(odd_workdir.abs("images/rgb.jpg"))


def test_augmentation_only_in_training(odd_workdir: Workdir) -> None:
    plain = _batches(tfdata.dataset(odd_workdir, "val", SIZE, 8, 6, cache=None))[0]
    again = _batches(tfdata.dataset(odd_workdir, "val", SIZE, 8, 6, cache=None))[0]
    assert np.array_equal(plain, again)
    train = tfdata.dataset(
        odd_workdir,
        "train",
        SIZE,
        8,
        6,
        training=True,
        augment=AugmentCfg(rotation_deg=45, width_shift=0.2, height_shift=0.2, shear=0.2, zoom=0.2),
        seed=1,
    )
    x, y = _batches(train)
    order = y.argmax(1)
    assert sorted(order) == list(range(6))  # every image once per epoch, shuffled
    assert np.abs(x - plain[order]).mean() > 1.0  # augmented
    assert x.min() >= 0 and x.max() <= 255


def test_missing_split_and_labels_are_clear(tmp_path) -> None:
    wd = Workdir.at(tmp_path)
    with pytest.raises(DataError, match="train.csv does not exist"):
        tfdata.read_split(wd, "train")
    with pytest.raises(DataError, match="labels.json"):
        tfdata.read_labels(wd)
    with pytest.raises(DataError, match="unknown split"):
        tfdata.read_split(wd, "holdout")


def test_random_affine_with_zero_ranges_is_the_identity() -> None:
    """The composed matrix is centred correctly: no ranges -> not a pixel moves."""
    x = np.random.default_rng(2).uniform(0, 255, (2, 24, 40, 3)).astype("float32")
    still = AugmentCfg(
        rotation_deg=0, width_shift=0, height_shift=0, shear=0, zoom=0, horizontal_flip=False
    )
    assert np.allclose(np.asarray(tfdata.augmenter(still, 0)(x, training=True)), x, atol=1e-3)
    flip_only = tfdata.augmenter(still.model_copy(update={"horizontal_flip": True}), 0)
    out = np.asarray(flip_only(np.repeat(x[:1], 16, axis=0), training=True))
    flipped = [np.allclose(o, x[0, :, ::-1], atol=1e-3) for o in out]
    kept = [np.allclose(o, x[0], atol=1e-3) for o in out]
    assert all(f or k for f, k in zip(flipped, kept, strict=True)) and any(flipped) and any(kept)
