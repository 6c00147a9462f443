"""Decode any image a user can send or a data set can hold into RGB uint8 safely.

Shared by ingest, validation, training input, stylizing and serving, so every path treats
grayscale, CMYK, palette, 16-bit, alpha and lying extensions the same way.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from artflow.errors import DataError

log = logging.getLogger(__name__)

Image.MAX_IMAGE_PIXELS = 89_478_485  # Pillow's default bomb guard, kept explicitly on


def _register_heif() -> bool:
    """HEIC/HEIF (iPhone photos) through pillow-heif's Pillow plugin; AVIF is Pillow's own."""
    try:
        from pillow_heif import register_heif_opener
    except ImportError:  # optional at import time: HEIF uploads then read as unidentified
        return False
    register_heif_opener()
    return True


HEIF = _register_heif()


def open_image(source: str | Path | bytes, max_pixels: int | None = None) -> Image.Image:
    """Open and fully decode an image; DataError naming the source when it cannot be."""
    name = "uploaded image" if isinstance(source, bytes) else str(source)
    if isinstance(source, bytes) and not source:
        raise DataError("empty image: no bytes were sent")
    try:
        fp = io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb")  # noqa: SIM115
    except OSError as exc:
        raise DataError(f"cannot read {name}: {exc.strerror}", "check the path") from None
    try:
        with fp:
            img = Image.open(fp)
            if max_pixels and img.width * img.height > max_pixels:
                raise DataError(
                    f"{name} has {img.width}x{img.height} pixels, "
                    f"more than the limit of {max_pixels}"
                )
            img.load()
    except Image.DecompressionBombError:
        raise DataError(
            f"{name} is too large to decode safely (decompression bomb guard)"
        ) from None
    except UnidentifiedImageError:
        raise DataError(f"{name} is not an image Pillow can read") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"{name} is corrupt or truncated: {exc}") from None
    return img


def orient(img: Image.Image) -> Image.Image:
    """The image turned upright by its EXIF orientation; unchanged when the EXIF is broken.

    A phone photo's pixels are stored sideways with a tag saying how to turn them. Hostile or
    damaged EXIF (not TIFF, bad offsets) makes Pillow raise all sorts of errors: the pixels
    are still good, so they are used as stored.
    """
    try:
        return ImageOps.exif_transpose(img)
    except Exception as exc:  # noqa: BLE001 - any parse error of untrusted metadata
        log.debug("ignoring unreadable EXIF orientation: %s", exc)
        return img


def to_rgb(img: Image.Image) -> Image.Image:
    """RGB from L, LA, P, RGBA, CMYK and 16/32-bit modes; EXIF orientation applied."""
    img = orient(img)
    if img.mode in {"I;16", "I;16B", "I;16L", "I"}:
        arr = np.asarray(img, dtype=np.float64)
        hi = arr.max() or 1.0
        img = Image.fromarray((arr / hi * 255.0).clip(0, 255).astype(np.uint8), mode="L")
    elif img.mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        arr = (arr - arr.min()) / ((arr.max() - arr.min()) or 1.0)
        img = Image.fromarray((arr * 255).astype(np.uint8), mode="L")
    if img.mode in {"RGBA", "LA", "PA"} or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def load_rgb(
    source: str | Path | bytes,
    size: int | tuple[int, int] | None = None,
    max_pixels: int | None = None,
) -> np.ndarray:
    """HxWx3 uint8 array; resized to `size` (side or (w, h)) with a high-quality filter."""
    img = to_rgb(open_image(source, max_pixels))
    if size is not None:
        wh = (size, size) if isinstance(size, int) else size
        img = img.resize(wh, Image.Resampling.BILINEAR)
    return np.asarray(img, dtype=np.uint8)


def save_rgb(array: np.ndarray, path: str | Path) -> Path:
    """Write an HxWx3 array (uint8, or float in [0, 1]) as an image; creates parent folders."""
    arr = np.asarray(array)
    if arr.dtype != np.uint8:
        arr = (np.clip(arr, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr).save(path)
    return path
