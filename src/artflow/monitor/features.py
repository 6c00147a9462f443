"""Cheap image statistics, shared by the training-time reference and the serving-time log.

`describe_image` is called by the service for every request, so it must stay fast
(~1 ms for 512x512): the image is first area-resized to a fixed GRID x GRID thumbnail, so
every statistic is measured at the same scale whatever the upload size. Evidently has no
image descriptors, so these few are hand-written with numpy.

Stable keys (FEATURE_NAMES; the prediction log and the reference profile use these names):
  brightness            mean luma (Rec. 601), 0..1
  contrast              standard deviation of luma, 0..~0.5
  saturation            mean HSV saturation, 0..1
  hue_cos, hue_sin      chroma-weighted mean hue vector (0 for a grey image): a circular mean
                        that has no jump where the hue wraps from red back to red
  hist_r0..hist_r3,     colour histogram: share of pixels in each of HIST_BINS equal bins
  hist_g0..., hist_b0...  per channel (each channel's shares sum to 1)
  edge_density          share of thumbnail pixels whose luma gradient exceeds EDGE_THRESHOLD
  width, height         original size in pixels
  aspect_ratio          width / height
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from artflow.errors import DataError

GRID = 64
HIST_BINS = 4
EDGE_THRESHOLD = 0.1
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)

FEATURE_NAMES: tuple[str, ...] = (
    "brightness",
    "contrast",
    "saturation",
    "hue_cos",
    "hue_sin",
    *(f"hist_{c}{i}" for c in "rgb" for i in range(HIST_BINS)),
    "edge_density",
    "width",
    "height",
    "aspect_ratio",
)


def describe_image(rgb_u8: np.ndarray) -> dict[str, float]:
    """FEATURE_NAMES -> value (plain Python floats, JSON-ready) for an RGB uint8 HxWx3 image."""
    if rgb_u8.ndim != 3 or rgb_u8.shape[2] != 3 or rgb_u8.shape[0] < 1 or rgb_u8.shape[1] < 1:
        raise DataError(f"expected an RGB image of shape HxWx3, got {rgb_u8.shape}")
    height, width = rgb_u8.shape[:2]
    thumb = _thumbnail(rgb_u8)
    rgb = thumb.astype(np.float32) / 255.0
    luma = rgb @ _LUMA
    out: dict[str, float] = {
        "brightness": float(luma.mean()),
        "contrast": float(luma.std()),
        **_colour(rgb),
        **_histogram(thumb),
        "edge_density": _edge_density(luma),
        "width": float(width),
        "height": float(height),
        "aspect_ratio": float(width / height),
    }
    return out


def _thumbnail(rgb_u8: np.ndarray) -> np.ndarray:
    """Area-average (BOX) resize to GRID x GRID: cheap, and no aliasing when shrinking.

    Very large uploads are first strided down to about 4*GRID a side, which keeps the cost
    bounded (a 3000x2000 photo would otherwise take ~25 ms) at little loss of averaging.
    """
    step = max(1, min(rgb_u8.shape[:2]) // (4 * GRID))
    small = rgb_u8[::step, ::step]
    img = Image.fromarray(np.ascontiguousarray(small, dtype=np.uint8), mode="RGB")
    return np.asarray(img.resize((GRID, GRID), Image.Resampling.BOX))


def _colour(rgb: np.ndarray) -> dict[str, float]:
    hi, lo = rgb.max(axis=2), rgb.min(axis=2)
    chroma = hi - lo
    saturation = np.where(hi > 0, chroma / np.maximum(hi, 1e-6), 0.0)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    safe = np.maximum(chroma, 1e-6)
    # HSV hue in sixths of a turn, the standard piecewise formula.
    other = np.where(hi == g, (b - r) / safe + 2.0, (r - g) / safe + 4.0)
    hue = np.where(hi == r, ((g - b) / safe) % 6.0, other)
    angle = hue * (np.pi / 3.0)
    return {
        "saturation": float(saturation.mean()),
        "hue_cos": float((chroma * np.cos(angle)).mean()),
        "hue_sin": float((chroma * np.sin(angle)).mean()),
    }


def _histogram(thumb: np.ndarray) -> dict[str, float]:
    bins = (thumb.reshape(-1, 3).astype(np.int32) * HIST_BINS) // 256
    n = bins.shape[0]
    out: dict[str, float] = {}
    for ch, name in enumerate("rgb"):
        counts = np.bincount(bins[:, ch], minlength=HIST_BINS)
        out.update({f"hist_{name}{i}": float(counts[i] / n) for i in range(HIST_BINS)})
    return out


def _edge_density(luma: np.ndarray) -> float:
    gx = np.abs(np.diff(luma, axis=1))[:-1, :]
    gy = np.abs(np.diff(luma, axis=0))[:, :-1]
    return float((np.hypot(gx, gy) > EDGE_THRESHOLD).mean())
