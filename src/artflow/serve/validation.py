"""Validate an uploaded image before any model sees it; every failure is a 4xx with a reason.

Decoding goes through `artflow.imageio` (the same path as training data), which keeps Pillow's
decompression-bomb guard on and converts CMYK, palette, 16-bit, grayscale and alpha to RGB.
On top of that the service refuses what a model should never be handed: formats outside an
allow-list (Pillow can open EPS, PSD, ICO, ... which widens the attack surface for nothing),
animated images (decision: refuse rather than silently answer for frame 0), too many pixels.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

from artflow.errors import DataError
from artflow.imageio import open_image, to_rgb

# Pillow format names accepted from users; TIFF for 16-bit scans.
ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF")


class ApiError(Exception):
    """A request the service refuses: answered with `status` and a JSON body {"error": message}."""

    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.field = field

    def body(self) -> dict[str, str]:
        out = {"error": self.message}
        if self.field:
            out["field"] = self.field
        return out


@dataclass(frozen=True)
class DecodedImage:
    rgb: np.ndarray  # HxWx3 uint8
    format: str
    mode: str  # the mode as uploaded (before RGB conversion), for the log


def decode_upload(data: bytes, field: str, max_pixels: int) -> DecodedImage:
    """Bytes of one uploaded file -> RGB uint8; ApiError (4xx) for anything unusable."""
    if not data:
        raise ApiError(400, f"{field}: the uploaded file is empty", field)
    _check_container(data, field)
    try:
        img = open_image(data, max_pixels=max_pixels)
    except DataError as exc:
        status = 413 if ("pixels" in exc.message or "too large" in exc.message) else 422
        raise ApiError(status, f"{field}: {exc.message}", field) from None
    try:
        rgb = np.asarray(to_rgb(img), dtype=np.uint8)
    except (OSError, ValueError) as exc:  # e.g. an odd mode that decodes but cannot convert
        raise ApiError(422, f"{field}: cannot convert the image to RGB: {exc}", field) from None
    if rgb.ndim != 3 or rgb.shape[2] != 3 or min(rgb.shape[:2]) < 1:
        raise ApiError(422, f"{field}: decoded to an unusable shape {rgb.shape}", field)
    return DecodedImage(rgb=rgb, format=img.format or "unknown", mode=img.mode)


def _check_container(data: bytes, field: str) -> None:
    """Format allow-list and frame count from the header alone, before any pixel is decoded.

    Anything Pillow cannot even identify is left to `open_image`, whose message is precise.
    """
    try:
        with Image.open(io.BytesIO(data)) as img:
            fmt = img.format or "unknown"
            frames = getattr(img, "n_frames", 1) if getattr(img, "is_animated", False) else 1
    except Exception:  # unreadable: open_image below says exactly why
        return
    if fmt not in ALLOWED_FORMATS:
        raise ApiError(
            415,
            f"{field}: image format {fmt} is not accepted; send {'/'.join(ALLOWED_FORMATS)}",
            field,
        )
    if frames > 1:
        raise ApiError(
            422,
            f"{field}: animated images ({frames} frames) are not accepted; send one still image",
            field,
        )
