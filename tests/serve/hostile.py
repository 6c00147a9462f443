"""Bad and awkward inputs built from classes, not collected files: each class is a way an
input can go wrong, each case one instance of it. Used in-process (fast, with Hypothesis in
test_decode_fuzz.py) and once per case over HTTP against the real server (test_hostile.py).

Classes: metadata (EXIF, ICC, text chunks), geometry (sizes and aspect ratios), container
(what wraps the pixels: truncation, lies, animation, several images), encoding (every mode
Pillow decodes to), body shape (the HTTP request itself: JSON depth and size, content types).
"""

from __future__ import annotations

import io
import json
import struct
import zlib

import numpy as np
from PIL import Image, PngImagePlugin

import artflow.imageio  # noqa: F401 - registers the HEIF plugin (writing test files too)
from tests.serve.images import encode, png_claiming

EXIF_ORIENTATION = 0x0112


def _rgb(w: int = 48, h: int = 40, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


def _jpeg_with_app1(payload: bytes) -> bytes:
    """A JPEG whose APP1 segment carries `payload` verbatim (Pillow would not write junk)."""
    data = encode(_rgb(), "JPEG", quality=85)
    segment = b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload
    return data[:2] + segment + data[2:]


def _png_with_chunk(kind: bytes, payload: bytes) -> bytes:
    data = encode(_rgb(), "PNG")
    crc = struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)
    chunk = struct.pack(">I", len(payload)) + kind + payload + crc
    return data[:33] + chunk + data[33:]  # right after IHDR (8 + 25 bytes)


def _exif(**tags: int) -> bytes:
    exif = Image.Exif()
    for key, value in tags.items():
        exif[int(key.lstrip("t"), 16)] = value
    return exif.tobytes()


def metadata() -> dict[str, bytes]:
    """Pixels fine, metadata garbage or hostile: must decode or be refused, never crash."""
    text = PngImagePlugin.PngInfo()
    text.add_text("comment", "x" * 200_000)
    return {
        "exif_not_tiff": _jpeg_with_app1(b"Exif\x00\x00this is not a TIFF header"),
        "exif_bad_offsets": _jpeg_with_app1(b"Exif\x00\x00II*\x00\xff\xff\xff\x7f" + b"\x00" * 20),
        "exif_orientation_out_of_range": encode(_rgb(), "JPEG", exif=_exif(t0112=9)),
        "exif_orientation_rotated": encode(_rgb(), "JPEG", exif=_exif(t0112=6)),
        "exif_png_chunk_garbage": _png_with_chunk(b"eXIf", b"\x00garbage\xff" * 10),
        "icc_profile_garbage": encode(_rgb(), "JPEG", icc_profile=b"not an icc profile" * 5),
        "png_huge_text_chunk": encode(_rgb(), "PNG", pnginfo=text),
        "xmp_garbage": _jpeg_with_app1(b"http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta <<<"),
    }


def geometry() -> dict[str, bytes]:
    """Sizes and aspect ratios: extreme ones must be refused with the ratio named."""
    return {
        "wide_4000x40": encode(_rgb(4000, 40), "PNG"),
        "tall_40x4000": encode(_rgb(40, 4000), "PNG"),
        "strip_3000x12_jpeg": encode(_rgb(3000, 12), "JPEG"),
        "one_pixel": encode(_rgb(1, 1), "PNG"),
        "tiny_8x8": encode(_rgb(8, 8), "PNG"),
        "long_but_allowed_600x40": encode(_rgb(600, 40), "PNG"),
        "claims_64_megapixels": png_claiming(8000, 8000),
    }


def container() -> dict[str, bytes]:
    """What wraps the pixels: truncated, lying, animated, several images."""
    jpeg = encode(_rgb(), "JPEG")
    frames = [_rgb(seed=s) for s in (1, 2, 3)]
    mpo = io.BytesIO()
    frames[0].save(mpo, format="MPO", save_all=True, append_images=[frames[1]])
    return {
        "empty": b"",
        "text": b"not an image at all",
        "truncated_jpeg": jpeg[: len(jpeg) // 2],
        "truncated_png_header": encode(_rgb(), "PNG")[:40],
        "png_magic_jpeg_body": b"\x89PNG\r\n\x1a\n" + jpeg[2:],
        "animated_gif": encode(frames[0], "GIF", save_all=True, append_images=frames[1:]),
        "animated_webp": encode(frames[0], "WEBP", save_all=True, append_images=frames[1:]),
        "animated_png": encode(frames[0], "PNG", save_all=True, append_images=frames[1:]),
        "mpo_two_frames": mpo.getvalue(),
        "ico_not_accepted": encode(_rgb(32, 32), "ICO"),
        "zero_dimension_png": png_claiming(0, 10),
    }


# Every mode Pillow decodes files to, each written in a format that stores it.
MODES = ("1", "L", "LA", "P", "PA", "RGB", "RGBA", "CMYK", "I", "I;16", "F", "YCbCr", "LAB")


def encoding() -> dict[str, bytes]:
    """One small image per mode, plus the formats phones and browsers send."""
    out: dict[str, bytes] = {}
    for mode in MODES:
        img = _rgb().convert(mode) if mode not in ("PA", "LAB") else _rgb().convert("RGB")
        if mode == "PA":
            img = _rgb().convert("P").convert("PA")
        elif mode == "LAB":
            img = _rgb().convert("LAB")
        fmt = "PNG" if mode in ("1", "L", "LA", "P", "RGB", "RGBA", "I;16") else "TIFF"
        out[f"mode_{mode}_{fmt.lower()}"] = encode(img, fmt)
    for fmt in ("WEBP", "AVIF", "HEIF", "BMP", "GIF", "TIFF"):
        out[f"format_{fmt.lower()}"] = encode(_rgb(), fmt)
    return out


def body_shapes() -> dict[str, tuple[bytes, str]]:
    """Request bodies for the JSON (admin) endpoints: (bytes, content type)."""
    deep = b"[" * 100_000 + b"]" * 100_000
    return {
        "deeply_nested_array": (deep, "application/json"),
        "deeply_nested_in_field": (b'{"weight": ' + b"[" * 5000 + b"]" * 5000 + b"}", ""),
        "oversized_json": (json.dumps({"weight": 0.1, "pad": "x" * 200_000}).encode(), ""),
        "json_array_not_object": (b"[0.3]", "application/json"),
        "json_string": (b'"weight"', "application/json"),
        "not_json": (b"{weight: 0.3", "application/json"),
        "form_encoded": (b"weight=0.3", "application/x-www-form-urlencoded"),
        "wrong_type_value": (b'{"weight": "heavy"}', "application/json"),
        "nan_value": (b'{"weight": NaN}', "application/json"),
    }


IMAGE_CLASSES = {
    "metadata": metadata,
    "geometry": geometry,
    "container": container,
    "encoding": encoding,
}
