"""describe_image: stable keys, plain floats, and statistics that move the right way."""

from __future__ import annotations

import json

import numpy as np
import pytest

from artflow.errors import DataError
from artflow.monitor.features import FEATURE_NAMES, describe_image


@pytest.fixture(scope="module")
def painting() -> np.ndarray:
    rng = np.random.default_rng(0)
    base = rng.integers(40, 200, size=(96, 128, 3), dtype=np.uint8)
    return base


def test_keys_are_stable_and_json_ready(painting: np.ndarray) -> None:
    feats = describe_image(painting)
    assert tuple(feats) == FEATURE_NAMES
    assert all(type(v) is float for v in feats.values())
    json.dumps(feats)
    assert feats["width"] == 128 and feats["height"] == 96
    assert feats["aspect_ratio"] == pytest.approx(128 / 96)
    for ch in "rgb":
        assert sum(feats[f"hist_{ch}{i}"] for i in range(4)) == pytest.approx(1.0)


def test_darkening_lowers_brightness_and_contrast(painting: np.ndarray) -> None:
    bright, dark = describe_image(painting), describe_image((painting * 0.2).astype(np.uint8))
    assert dark["brightness"] < bright["brightness"] * 0.3
    assert dark["contrast"] < bright["contrast"]
    assert dark["hist_r0"] == pytest.approx(1.0)


def test_grey_has_no_hue_and_red_points_to_zero_degrees() -> None:
    grey = describe_image(np.full((32, 32, 3), 128, np.uint8))
    assert grey["saturation"] == 0.0 and grey["hue_cos"] == 0.0 and grey["hue_sin"] == 0.0
    red = np.zeros((32, 32, 3), np.uint8)
    red[..., 0] = 255
    feats = describe_image(red)
    assert feats["hue_cos"] == pytest.approx(1.0) and feats["hue_sin"] == pytest.approx(0.0)
    assert feats["saturation"] == pytest.approx(1.0)


def test_edges_are_counted_on_stripes_not_on_flat() -> None:
    flat = np.full((200, 200, 3), 90, np.uint8)
    stripes = flat.copy()
    stripes[:, ::16] = 250
    assert describe_image(flat)["edge_density"] == 0.0
    assert describe_image(stripes)["edge_density"] > 0.05


def test_size_does_not_change_the_colour_statistics(painting: np.ndarray) -> None:
    big = np.kron(painting, np.ones((4, 4, 1), np.uint8))
    small, large = describe_image(painting), describe_image(big)
    assert large["width"] == 4 * small["width"]
    assert large["brightness"] == pytest.approx(small["brightness"], abs=0.01)


@pytest.mark.parametrize("shape", [(10, 10), (10, 10, 4), (0, 5, 3)])
def test_bad_shapes_raise_data_error(shape: tuple[int, ...]) -> None:
    with pytest.raises(DataError):
        describe_image(np.zeros(shape, np.uint8))
