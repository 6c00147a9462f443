"""The upload decoder in-process: every input class, and Hypothesis-generated inputs.

The property everywhere: `decode_upload` returns HxWx3 uint8 no smaller than what the model
asked for (or the upload, if smaller), or raises ApiError with a 4xx status and the field's
name. Never another exception: that would be a 500 over HTTP.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from artflow.imageio import load_rgb, to_rgb
from artflow.serve.admin import FailureLimiter
from artflow.serve.guard import json_depth
from artflow.serve.validation import ApiError, Fit, Limits, decode_upload
from tests.serve import hostile

LIMITS = Limits(max_pixels=40_000_000, max_aspect=20, max_decode_mb=400)
FITS = [None, Fit(None, 32), Fit(256, 32, exact=True), Fit(64, 8, exact=True)]
FAST = settings(max_examples=40, deadline=2000, suppress_health_check=[HealthCheck.too_slow])


def check(data: bytes, fit: Fit | None) -> np.ndarray | None:
    """Decode; the only allowed failure is a 4xx ApiError naming the field."""
    try:
        rgb = decode_upload(data, "image", LIMITS, fit).rgb
    except ApiError as exc:
        assert 400 <= exc.status < 500, exc.message
        assert exc.message.startswith("image:") and exc.field == "image"
        return None
    assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3
    return rgb


CASES = [(cls, name) for cls, make in hostile.IMAGE_CLASSES.items() for name in make()]


@pytest.mark.parametrize(("cls", "name"), CASES, ids=[f"{c}-{n}" for c, n in CASES])
def test_every_input_class_decodes_or_is_refused_with_4xx(cls, name):
    data = hostile.IMAGE_CLASSES[cls]()[name]
    for fit in FITS:
        check(data, fit)


def test_extreme_aspect_ratios_are_refused_naming_the_ratio():
    for name, data in hostile.geometry().items():
        if name.startswith(("wide", "tall", "strip")):
            with pytest.raises(ApiError) as err:
                decode_upload(data, "image", LIMITS, Fit(256, 32, exact=True))
            assert err.value.status == 422 and "aspect ratio" in err.value.message


def test_phone_formats_decode_and_animation_is_refused():
    enc = hostile.encoding()
    for fmt in ("webp", "avif", "heif"):
        assert check(enc[f"format_{fmt}"], None).shape == (40, 48, 3), fmt
    mpo = hostile.container()["mpo_two_frames"]
    first = np.asarray(Image.open(io.BytesIO(mpo)).convert("RGB"))
    assert np.array_equal(check(mpo, None), first)  # the first frame, not the second
    for name in ("animated_gif", "animated_webp", "animated_png"):
        with pytest.raises(ApiError, match="animated"):
            decode_upload(hostile.container()[name], "image", LIMITS)


def test_exif_orientation_is_applied_even_when_reduced():
    data = hostile.metadata()["exif_orientation_rotated"]  # 48x40 stored, tag 6: 40x48 upright
    assert check(data, None).shape == (48, 40, 3)
    assert check(data, Fit(24, 8, exact=True)).shape == (24, 20, 3)


def test_every_pillow_mode_converts_to_rgb_or_is_refused():
    """Modes no file format stores (HSV, La, ...) still come out of to_rgb or fail cleanly."""
    for mode in sorted(Image.MODES):
        img = Image.new(mode, (8, 6))
        try:
            out = to_rgb(img)
        except (OSError, ValueError):
            continue  # decode_upload turns these into 422 naming the mode
        assert out.mode == "RGB" and out.size == (8, 6), mode


def test_small_images_decode_exactly_like_training():
    """At most twice the model's size: no reduction, the training decoder's pixels."""
    for name, data in {**hostile.encoding(), **hostile.metadata()}.items():
        if "avif" in name or "heif" in name:
            continue
        served = decode_upload(data, "image", LIMITS, Fit(None, 32)).rgb
        assert np.array_equal(served, load_rgb(data)), name


def test_large_jpeg_is_decoded_small_and_close_to_the_full_decode():
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 255, 2400, dtype=np.float32)
    arr = np.stack([np.tile(ramp, (1800, 1))] * 3, -1) + rng.normal(0, 8, (1800, 2400, 3))
    buf = io.BytesIO()
    Image.fromarray(arr.clip(0, 255).astype(np.uint8)).save(buf, format="JPEG", quality=90)
    data = buf.getvalue()
    small = decode_upload(data, "image", LIMITS, Fit(None, 224))
    assert min(small.rgb.shape[:2]) >= 224 and small.rgb.shape[0] < 1800 / 4
    assert small.original_size == (2400, 1800)
    full = Image.fromarray(load_rgb(data)).resize(small.rgb.shape[1::-1], Image.Resampling.BOX)
    assert np.abs(small.rgb.astype(int) - np.asarray(full, dtype=int)).mean() < 3


def test_per_request_decode_memory_is_capped():
    buf = io.BytesIO()
    Image.new("RGB", (4000, 3000)).save(buf, format="PNG")
    with pytest.raises(ApiError) as err:
        decode_upload(buf.getvalue(), "image", Limits(40_000_000, 20, max_decode_mb=20))
    assert err.value.status == 413 and "MB" in err.value.message


# --------------------------------------------------------------------------- Hypothesis


def _valid_images() -> list[bytes]:
    return [
        hostile.encoding()[k] for k in ("mode_RGB_png", "mode_P_png", "format_webp", "format_gif")
    ] + [hostile.metadata()["exif_orientation_rotated"], hostile.container()["mpo_two_frames"]]


VALID = _valid_images()


@FAST
@given(data=st.binary(max_size=2048), fit=st.sampled_from(FITS))
def test_random_bytes_never_crash(data, fit):
    check(data, fit)


@FAST
@given(
    which=st.integers(0, len(VALID) - 1),
    edits=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=8),
    cut=st.one_of(st.none(), st.integers(1, 10**6)),
    fit=st.sampled_from(FITS),
)
def test_mutated_images_never_crash(which, edits, cut, fit):
    """Valid files with bytes overwritten (headers, chunk lengths, EXIF) or cut short."""
    data = bytearray(VALID[which])
    for pos, value in edits:
        data[pos % len(data)] = value
    if cut is not None:
        data = data[: cut % len(data)]
    check(bytes(data), fit)


@FAST
@given(
    w=st.integers(1, 300),
    h=st.integers(1, 300),
    mode=st.sampled_from(["1", "L", "LA", "P", "RGB", "RGBA", "I;16", "CMYK"]),
    fmt=st.sampled_from(["PNG", "TIFF", "JPEG", "WEBP", "BMP", "GIF"]),
    fit=st.sampled_from(FITS),
)
def test_generated_geometry_and_modes(w, h, mode, fmt, fit):
    img = Image.new("RGB", (w, h), (200, 30, 90)).convert(mode)
    buf = io.BytesIO()
    try:
        img.save(buf, format=fmt)
    except (OSError, ValueError, KeyError):
        return  # this format cannot store this mode
    rgb = check(buf.getvalue(), fit)
    if rgb is None:
        assert max(w, h) / min(w, h) > LIMITS.max_aspect  # the only reason to refuse these
        return
    if fit is not None and not fit.exact:
        need = min(fit.shortest, w, h)  # never below what the model needs (or the upload)
        assert min(rgb.shape[:2]) >= need
    if fit is not None and fit.exact and fit.longest is not None:
        assert max(rgb.shape[:2]) <= max(fit.longest, round(max(w, h) * fit.scale(w, h)))


json_values = st.recursive(
    st.none() | st.integers() | st.text(max_size=5),
    lambda kids: (
        st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=3), kids, max_size=3)
    ),
    max_leaves=12,
)


def _depth(value) -> int:
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    return 0


@FAST
@given(value=json_values)
def test_json_depth_matches_the_parsed_depth(value):
    assert json_depth(json.dumps(value).encode()) == _depth(value)


def test_failed_admin_attempts_are_limited_per_client_and_window():
    now = [0.0]
    limiter = FailureLimiter(3, window_s=60, clock=lambda: now[0])
    for _ in range(3):
        assert limiter.retry_after("a") is None
        limiter.failed("a")
    assert limiter.retry_after("a") == pytest.approx(60)
    assert limiter.retry_after("b") is None  # per client
    now[0] = 61
    assert limiter.retry_after("a") is None  # the window slides


def test_training_reads_the_phone_formats_like_serving(tmp_path):
    """tfdata sends what TF cannot decode like Pillow to artflow.imageio: the same pixels."""
    from artflow.data import tfdata

    files = {
        "photo.heic": hostile.encoding()["format_heif"],
        "photo.avif": hostile.encoding()["format_avif"],
        "photo.mpo": hostile.container()["mpo_two_frames"],
        "photo.webp": hostile.encoding()["format_webp"],
    }
    for name, data in files.items():
        path = tmp_path / name
        path.write_bytes(data)
        assert tfdata.decoder_for(path) == tfdata.PYTHON, name
        served = decode_upload(data, "image", LIMITS, Fit(None, 32)).rgb
        assert np.array_equal(load_rgb(path), served), name
