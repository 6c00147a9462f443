"""Image bytes of every kind a client may send, good and bad, built in memory."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image


def _rgb(seed: int = 0, w: int = 48, h: int = 40) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def png(seed: int = 0, w: int = 48, h: int = 40) -> bytes:
    return encode(Image.fromarray(_rgb(seed, w, h)), "PNG")


def jpeg(seed: int = 0) -> bytes:
    return encode(Image.fromarray(_rgb(seed)), "JPEG", quality=90)


def cmyk_jpeg() -> bytes:
    return encode(Image.fromarray(_rgb(1)).convert("CMYK"), "JPEG")


def palette_png() -> bytes:
    return encode(Image.fromarray(_rgb(2)).convert("P", palette=Image.Palette.ADAPTIVE), "PNG")


def png16() -> bytes:
    arr = (np.arange(48 * 40, dtype=np.uint32).reshape(40, 48) * 30).astype(np.uint16)
    return encode(Image.fromarray(arr), "PNG")  # uint16 -> mode I;16


def rgba_png() -> bytes:
    rgba = np.dstack([_rgb(3), np.full((40, 48), 128, np.uint8)])
    return encode(Image.fromarray(rgba, mode="RGBA"), "PNG")


def grey_webp() -> bytes:
    return encode(Image.fromarray(_rgb(4)).convert("L"), "WEBP")


def bmp() -> bytes:
    return encode(Image.fromarray(_rgb(5)), "BMP")


def gif_single() -> bytes:
    return encode(Image.fromarray(_rgb(6)).convert("P"), "GIF")


def gif_animated() -> bytes:
    frames = [Image.fromarray(_rgb(s)).convert("P") for s in (7, 8, 9)]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)


def ico() -> bytes:  # decodes fine, but not an accepted upload format
    return encode(Image.fromarray(_rgb(10, 32, 32)), "ICO")


def truncated_jpeg() -> bytes:
    data = jpeg(11)
    return data[: len(data) // 2]


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    return struct.pack(">I", len(data)) + kind + data + crc


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header announces width x height pixels (a decompression-bomb probe)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return (
        b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
    )


GOOD = {
    "png": png(),
    "jpeg": jpeg(),
    "cmyk_jpeg": cmyk_jpeg(),
    "palette_png": palette_png(),
    "png16": png16(),
    "rgba_png": rgba_png(),
    "grey_webp": grey_webp(),
    "bmp": bmp(),
    "gif_single": gif_single(),
}

# name -> (bytes, expected status)
BAD = {
    "empty": (b"", 400),
    "text": (b"hello, I am not an image", 422),
    "html": (b"<html><body>nope</body></html>", 422),
    "truncated_jpeg": (truncated_jpeg(), 422),
    "animated_gif": (gif_animated(), 422),
    "ico": (ico(), 415),
    "too_many_pixels": (png_claiming(8000, 8000), 413),
    "decompression_bomb": (png_claiming(30000, 30000), 413),
}
