"""Decode an uploaded image for the model that will use it; every failure is a 4xx with a reason.

Two steps, so the service can bound memory before any pixel is decoded:

* `inspect_upload` reads only the header: the format (an allow-list: Pillow can open EPS,
  PSD, ICO, ... which widens the attack surface for nothing), animation (refused rather than
  silently answered for frame 0; MPO and HEIF hold several images of which the first, or
  primary, is the photo), pixel count, aspect ratio, and an estimate of the memory the decode
  will take at the size the model needs (over `max_decode_mb`: 413).
* `decode_upload` decodes no larger than needed: JPEGs with DCT scaling (`Image.draft`, 1/2,
  1/4 or 1/8 of the stored size in the decoder itself), other formats reduced by an integer
  box filter (`Image.reduce`) right after decoding, before any mode conversion or float
  array; EXIF orientation and mode conversion then go through `artflow.imageio` (the same
  path as the training data). An image no larger than twice what the model needs is decoded
  at full size, so it gives the same pixels as training's decoder.

Untrusted bytes can make Pillow raise almost any exception type; all of them become 4xx here.
"""

from __future__ import annotations

import io
import logging
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

from artflow.imageio import to_rgb
from artflow.serve.envelope import code_for

log = logging.getLogger(__name__)

# Pillow format names accepted from users: phone photos (JPEG, MPO, HEIF, AVIF), the web's
# (PNG, WEBP, GIF), BMP, and TIFF for 16-bit scans.
ALLOWED_FORMATS = ("JPEG", "MPO", "PNG", "WEBP", "AVIF", "HEIF", "BMP", "GIF", "TIFF")
# Containers of several images whose first (MPO: the left eye) or primary (HEIF) one is the photo.
MULTI_IMAGE_FORMATS = ("MPO", "HEIF")
# Modes Image.reduce cannot work on: converted first (at full size, counted in the estimate).
_CONVERT_BEFORE_REDUCE = {"1": "L", "P": "RGBA", "I;16": "I", "I;16B": "I", "I;16L": "I"}
_BYTES_PER_PIXEL = 4  # Pillow stores every multi-band and 32-bit mode in 4 bytes per pixel


class ApiError(Exception):
    """A request the service refuses: answered with `status` and the shared error body
    {"error": message, "code": machine-readable code, "field": the input at fault}
    (artflow.serve.envelope)."""

    def __init__(
        self,
        status: int,
        message: str,
        field: str | None = None,
        code: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field
        self.code = code or code_for(status)
        self.hint = hint

    def body(self) -> dict[str, str]:
        out = {"error": self.message, "code": self.code}
        if self.field:
            out["field"] = self.field
        if self.hint:
            out["hint"] = self.hint
        return out


@dataclass(frozen=True)
class Limits:
    """What one upload may cost (serve.max_pixels, max_aspect_ratio, max_decode_mb)."""

    max_pixels: int
    max_aspect: float = 20.0
    max_decode_mb: float = 400.0


@dataclass(frozen=True)
class Fit:
    """The size a model needs: the longer side at most `longest` (None: no bound), and the
    shorter side at least `shortest`; `exact` resizes to that size (outputs are produced at
    it), else the decode only gets as close as cheap reductions allow, never below."""

    longest: int | None
    shortest: int
    exact: bool = False

    def scale(self, width: int, height: int) -> float:
        """Factor (at most 1) from (width, height) to the size the model needs."""
        long_side, short_side = max(width, height), min(width, height)
        want = self.shortest / short_side
        if self.longest is not None:
            want = max(want, self.longest / long_side)
        return min(1.0, want)

    def size(self, width: int, height: int) -> tuple[int, int]:
        s = self.scale(width, height)
        return max(1, round(width * s)), max(1, round(height * s))


@dataclass(frozen=True)
class Header:
    format: str
    mode: str
    width: int
    height: int
    decode_mb: float  # estimated peak memory of the decode


@dataclass(frozen=True)
class DecodedImage:
    rgb: np.ndarray  # HxWx3 uint8, at the size the model needs (or the upload's, if smaller)
    format: str
    mode: str  # the mode as uploaded (before RGB conversion), for the log
    original_size: tuple[int, int] = (0, 0)  # (width, height) as uploaded


def inspect_upload(data: bytes, field: str, limits: Limits, fit: Fit | None = None) -> Header:
    """The header's facts, or ApiError (4xx) for what must not be decoded at all."""
    if not data:
        raise ApiError(400, f"{field}: the uploaded file is empty", field)
    with _pillow_errors(field), Image.open(io.BytesIO(data)) as img:
        fmt = img.format or "unknown"
        if fmt not in ALLOWED_FORMATS:
            raise ApiError(
                415,
                f"{field}: image format {fmt} is not accepted; send {'/'.join(ALLOWED_FORMATS)}",
                field,
            )
        frames = int(getattr(img, "n_frames", 1) or 1) if getattr(img, "is_animated", False) else 1
        if frames > 1 and fmt not in MULTI_IMAGE_FORMATS:
            raise ApiError(
                422,
                f"{field}: animated images ({frames} frames) are not accepted; send a still image",
                field,
            )
        width, height = img.size
        _check_geometry(field, width, height, limits)
        mb = _estimate_mb(img, fmt, fit)
        if mb > limits.max_decode_mb:
            raise ApiError(
                413,
                f"{field}: decoding this {width}x{height} {fmt} ({img.mode}) would take about "
                f"{mb:.0f} MB, over the per-request limit of {limits.max_decode_mb:g} MB; send a "
                "smaller image",
                field,
            )
        return Header(fmt, img.mode, width, height, mb)


def decode_upload(
    data: bytes, field: str, limits: Limits | int, fit: Fit | None = None
) -> DecodedImage:
    """Bytes of one uploaded file -> RGB uint8 at the size `fit` asks for (the upload's size
    when None); ApiError (4xx) for anything unusable."""
    if isinstance(limits, int):
        limits = Limits(max_pixels=limits)
    header = inspect_upload(data, field, limits, fit)
    with _pillow_errors(field), Image.open(io.BytesIO(data)) as img:
        if fit is not None and header.format in ("JPEG", "MPO"):
            _draft(img, fit)
        img.load()
        mode = img.mode
        if fit is not None:
            img = _reduce(img, fit)
        try:
            rgb_img = to_rgb(img)
        except (OSError, ValueError) as exc:  # a mode that decodes but has no RGB conversion
            raise ApiError(
                422, f"{field}: image mode {mode} cannot be converted to RGB ({exc})", field
            ) from None
        if fit is not None and fit.exact:
            target = fit.size(*rgb_img.size)
            if target != rgb_img.size:
                rgb_img = rgb_img.resize(target, Image.Resampling.BICUBIC)
        rgb = np.asarray(rgb_img, dtype=np.uint8)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or min(rgb.shape[:2]) < 1:
        raise ApiError(422, f"{field}: decoded to an unusable shape {rgb.shape}", field)
    return DecodedImage(rgb, header.format, mode, (header.width, header.height))


def _check_geometry(field: str, width: int, height: int, limits: Limits) -> None:
    if width < 1 or height < 1:
        raise ApiError(422, f"{field}: the image is {width}x{height} px, it has no pixels", field)
    if width * height > limits.max_pixels:
        raise ApiError(
            413,
            f"{field}: the image has {width}x{height} pixels, more than the limit of "
            f"{limits.max_pixels}",
            field,
        )
    ratio = max(width, height) / min(width, height)
    if ratio > limits.max_aspect:
        raise ApiError(
            422,
            f"{field}: the image is {width}x{height} px, an aspect ratio of {ratio:.0f}:1, beyond "
            f"the limit of {limits.max_aspect:g}:1; crop it",
            field,
        )


def _jpeg_scale(width: int, height: int, fit: Fit) -> int:
    """The DCT scaling (1, 2, 4 or 8) Pillow's draft picks for what `fit` needs."""
    s = fit.scale(width, height)
    want_w, want_h = max(1, math.ceil(width * s)), max(1, math.ceil(height * s))
    scale = min(width // want_w, height // want_h)
    return next(k for k in (8, 4, 2, 1) if scale >= k)


def _estimate_mb(img: Image.Image, fmt: str, fit: Fit | None) -> float:
    pixels = img.width * img.height
    if fit is not None and fmt in ("JPEG", "MPO"):
        pixels /= _jpeg_scale(img.width, img.height, fit) ** 2
    copies = 2 if img.mode in _CONVERT_BEFORE_REDUCE or img.mode in ("LA", "PA", "RGBA") else 1
    return pixels * _BYTES_PER_PIXEL * copies / 2**20


def _draft(img: Image.Image, fit: Fit) -> None:
    """Ask libjpeg for the smallest DCT scaling that still covers what `fit` needs."""
    s = fit.scale(*img.size)
    want = (max(1, math.ceil(img.width * s)), max(1, math.ceil(img.height * s)))
    img.draft(img.mode if img.mode in ("RGB", "L") else None, want)


def _reduce(img: Image.Image, fit: Fit) -> Image.Image:
    """Shrink by the largest integer factor that keeps what `fit` needs (box filter, cheap)."""
    # Before orientation: a 90-degree turn swaps the sides, but `fit` depends on the long and
    # short sides only, so the factor is the same either way.
    factor = int(1.0 / fit.scale(*img.size) + 1e-9)
    if factor < 2:
        return img
    if img.mode == "P" and "transparency" not in img.info:
        img = img.convert("RGB")
    elif img.mode in _CONVERT_BEFORE_REDUCE:
        img = img.convert(_CONVERT_BEFORE_REDUCE[img.mode])
    exif = _exif_bytes(img)
    out = img.reduce(factor)
    if exif:  # keep the orientation tag for `orient` (reduce drops the image's info)
        out.info["exif"] = exif
    return out


def _exif_bytes(img: Image.Image) -> bytes | None:
    try:
        exif = img.getexif()
        return exif.tobytes() if exif else None
    except Exception:  # noqa: BLE001 - broken EXIF: the image is used as stored
        return None


class _pillow_errors:  # noqa: N801 - used as a context manager, reads like a function
    """Every Pillow failure on untrusted bytes -> ApiError with the field and a reason."""

    def __init__(self, field: str) -> None:
        self.field = field

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type | None, exc: BaseException | None, _tb: object) -> bool:
        if exc is None or isinstance(exc, ApiError):
            return False
        field = self.field
        if isinstance(exc, Image.DecompressionBombError):
            raise ApiError(
                413, f"{field}: too large to decode safely (decompression bomb guard)", field
            ) from None
        if isinstance(exc, MemoryError):
            raise ApiError(413, f"{field}: too large to decode in memory", field) from None
        if isinstance(exc, UnidentifiedImageError):
            raise ApiError(422, f"{field}: not an image Pillow can read", field) from None
        if isinstance(exc, Exception):
            log.info("refused upload %s: %s: %s", field, type(exc).__name__, exc)
            raise ApiError(
                422, f"{field}: corrupt or truncated image ({type(exc).__name__}: {exc})", field
            ) from None
        return False
