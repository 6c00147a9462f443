"""Upload decoding: every accepted format becomes RGB uint8, every bad one a clear 4xx."""

from __future__ import annotations

import numpy as np
import pytest

from artflow.serve.validation import ApiError, Limits, decode_upload
from tests.serve import images

MAX_PIXELS = 40_000_000


@pytest.mark.parametrize("name", sorted(images.GOOD))
def test_accepted_images_decode_to_rgb(name):
    decoded = decode_upload(images.GOOD[name], "image", MAX_PIXELS)
    assert decoded.rgb.dtype == np.uint8
    assert decoded.rgb.shape == (40, 48, 3)


def test_conversions_keep_the_picture():
    cmyk = decode_upload(images.cmyk_jpeg(), "image", MAX_PIXELS)
    assert cmyk.mode == "CMYK" and cmyk.rgb.std() > 20  # not blank, not inverted to one colour
    deep = decode_upload(images.png16(), "image", MAX_PIXELS).rgb
    assert deep.max() == 255 and deep.min() == 0  # the 16-bit range is scaled, not clipped
    rgba = decode_upload(images.rgba_png(), "image", MAX_PIXELS).rgb
    assert rgba.min() >= 127  # half-transparent over white: every channel at least half-lit


@pytest.mark.parametrize("name", sorted(images.BAD))
def test_bad_uploads_are_4xx_with_a_reason(name):
    data, status = images.BAD[name]
    with pytest.raises(ApiError) as err:
        decode_upload(data, "image", MAX_PIXELS)
    assert err.value.status == status
    assert err.value.body()["error"].startswith("image:")
    assert err.value.body()["field"] == "image"


def test_pixel_limit_is_configurable():
    with pytest.raises(ApiError) as err:
        decode_upload(images.png(w=100, h=100), "photo", Limits(max_pixels=5000))
    assert err.value.status == 413 and "photo" in err.value.message
