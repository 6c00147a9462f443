"""Offline stand-in for the Kaggle data sets, in exactly their layouts.

`generate_demo(out, cfg, seed)` writes

    out/artworks/artists.csv                      real schema, real artists, scaled counts
    out/artworks/images/<Artist_Name>/<Artist_Name>_<N>.jpg
    out/artworks/resized/<Artist_Name>_<N>.jpg    smaller copies, as in the real archive
    out/monet/monet_jpg/*.jpg, out/monet/photo_jpg/*.jpg

Every artist gets a distinct, learnable style (palette, stroke direction and texture) with
per-image variation, so a classifier trained on the demo reaches well above chance. Like the
real archive, Dürer's folder and files are spelled in Unicode NFD while artists.csv uses NFC.
Everything is vectorised numpy and seeded: the whole set takes a few seconds.
"""

from __future__ import annotations

import csv
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from artflow.config import DemoCfg

ARTIST_COLUMNS = ["id", "name", "years", "genre", "nationality", "bio", "wikipedia", "paintings"]


@dataclass(frozen=True)
class Artist:
    name: str
    years: str
    genre: str
    nationality: str
    paintings: int  # count in the real data set
    palette: tuple[str, ...]  # hex colours the style interpolates between
    texture: str  # key of TEXTURES
    angle_deg: float  # main stroke direction
    freq: float  # stroke frequency (cycles per image side)


# The 11 artists with >= 200 paintings in the real data, then some below the threshold.
# Kept as a table (two lines per artist): the formatter would put each field on its own line.
# fmt: off
ARTISTS: tuple[Artist, ...] = (
    Artist("Vincent van Gogh", "1853 - 1890", "Post-Impressionism", "Dutch", 877,
           ("#1b2a6b", "#2f6db5", "#f2c230", "#f7e27a"), "swirl", 30, 7),
    Artist("Edgar Degas", "1834 - 1917", "Impressionism", "French", 702,
           ("#3b2f2a", "#c98f6b", "#e9c7a8", "#7fa7b8"), "dabs", 100, 9),
    Artist("Pablo Picasso", "1881 - 1973", "Cubism", "Spanish", 439,
           ("#3a3f4a", "#8a7a5c", "#c8b48a", "#5c6f8f"), "cubes", 15, 4),
    Artist("Pierre-Auguste Renoir", "1841 - 1919", "Impressionism", "French", 336,
           ("#f3c1c6", "#e48a7a", "#f7e6c4", "#9cc3a5"), "blur", 60, 5),
    Artist("Albrecht Dürer", "1471 - 1528", "Northern Renaissance", "German", 328,
           ("#f1ead8", "#cfc4a8", "#5a4b3a", "#1e1a16"), "hatch", 135, 16),
    Artist("Paul Gauguin", "1848 - 1903", "Symbolism,Post-Impressionism", "French", 311,
           ("#d9531e", "#f2a93b", "#2e7d5b", "#7b3f8c"), "flat", 80, 3),
    Artist("Francisco Goya", "1746 - 1828", "Romanticism", "Spanish", 291,
           ("#0f0d0b", "#4a3a2a", "#9c7a4a", "#d8c59a"), "smoke", 150, 3),
    Artist("Rembrandt", "1606 - 1669", "Baroque", "Dutch", 262,
           ("#120c07", "#4d2f14", "#b07a2a", "#f0d088"), "spot", 0, 2),
    Artist("Alfred Sisley", "1839 - 1899", "Impressionism", "French,British", 259,
           ("#9fc5e8", "#d8e8f0", "#8fb870", "#c9d9a0"), "dabs", 0, 12),
    Artist("Titian", "1488 - 1576", "High Renaissance,Mannerism", "Italian", 255,
           ("#5a1010", "#a8281e", "#d9a066", "#2a1d12"), "smooth", 120, 2),
    Artist("Marc Chagall", "1887 - 1985", "Primitivism", "French,Jewish,Belarusian", 239,
           ("#1f3fa8", "#3c8de0", "#e8413c", "#f5d54a"), "floating", 45, 5),
    Artist("Rene Magritte", "1898 - 1967", "Surrealism,Impressionism", "Belgian", 194,
           ("#6fa8dc", "#ffffff", "#2b2b2b", "#8f6b4a"), "flat", 0, 2),
    Artist("Amedeo Modigliani", "1884 - 1920", "Expressionism", "Italian", 193,
           ("#b4532a", "#e0a060", "#40506a", "#2a1c14"), "smooth", 90, 3),
    Artist("Andy Warhol", "1928 - 1987", "Pop Art", "American", 181,
           ("#ff2d95", "#ffe600", "#00c2ff", "#111111"), "cubes", 0, 2),
    Artist("Salvador Dali", "1904 - 1989", "Surrealism", "Spanish", 139,
           ("#e8c27a", "#c77a2e", "#5d8fc9", "#2a2a3a"), "swirl", 160, 3),
    Artist("Frida Kahlo", "1907 - 1954", "Primitivism,Surrealism", "Mexican", 120,
           ("#2f7d32", "#d32f2f", "#fbc02d", "#3e2723"), "floating", 120, 4),
    Artist("Claude Monet", "1840 - 1926", "Impressionism", "French", 73,
           ("#a7c7e7", "#f4c2c2", "#c1e1c1", "#fdfd96"), "blur", 20, 10),
)
# fmt: on

JPEG_QUALITY = 90


def folder_name(name: str) -> str:
    """Kaggle's spelling of an artist in folder and file names: spaces become underscores."""
    return name.replace(" ", "_")


def scaled_count(paintings: int, scale: float) -> int:
    return max(1, round(paintings * scale))


def generate_demo(out: Path, cfg: DemoCfg, seed: int) -> dict[str, int]:
    """Write the demo artworks and Monet data sets under `out`; returns file counts."""
    out = Path(out)
    seeds = np.random.SeedSequence(seed).spawn(len(ARTISTS) + 1)
    counts = {}
    rows = []
    for idx, (artist, ss) in enumerate(zip(ARTISTS, seeds, strict=False)):
        n = scaled_count(artist.paintings, cfg.scale)
        _write_artist(out / "artworks", artist, n, cfg.image_size, np.random.default_rng(ss))
        rows.append(_csv_row(idx, artist, n))
        counts[artist.name] = n
    _write_csv(out / "artworks" / "artists.csv", rows)
    monet_rng = np.random.default_rng(seeds[-1])
    _write_set(
        out / "monet" / "monet_jpg", cfg.monet_paintings, cfg.image_size, monet_rng, _monet_painting
    )
    _write_set(out / "monet" / "photo_jpg", cfg.photos, cfg.image_size, monet_rng, _photo)
    counts["monet"], counts["photo"] = cfg.monet_paintings, cfg.photos
    return counts


def _csv_row(idx: int, artist: Artist, n: int) -> dict[str, object]:
    wiki = "http://en.wikipedia.org/wiki/" + folder_name(artist.name)
    bio = f"{artist.name} ({artist.years}) was a {artist.nationality} painter ({artist.genre})."
    return {
        "id": idx,
        "name": artist.name,
        "years": artist.years,
        "genre": artist.genre,
        "nationality": artist.nationality,
        "bio": bio,
        "wikipedia": wiki,
        "paintings": n,
    }


def _write_csv(path: Path, rows: list[dict[str, object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=ARTIST_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)


def _write_artist(root: Path, artist: Artist, n: int, size: int, rng: np.random.Generator) -> None:
    # The real archive spells non-ASCII names decomposed (NFD) on disk; mirror that quirk.
    folder = unicodedata.normalize("NFD", folder_name(artist.name))
    images, resized = root / "images" / folder, root / "resized"
    images.mkdir(parents=True, exist_ok=True)
    resized.mkdir(parents=True, exist_ok=True)
    for i in range(1, n + 1):
        h, w = _shape(size, rng)
        img = Image.fromarray(_painting(artist, h, w, rng))
        img.save(images / f"{folder}_{i}.jpg", quality=JPEG_QUALITY)
        small = img.resize((max(1, w * 3 // 4), max(1, h * 3 // 4)), Image.Resampling.BILINEAR)
        small.save(resized / f"{folder}_{i}.jpg", quality=JPEG_QUALITY)


def _write_set(
    folder: Path,
    n: int,
    size: int,
    rng: np.random.Generator,
    make: Callable[[int, np.random.Generator], np.ndarray],
) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for _ in range(n):
        name = f"{rng.integers(16**10):010x}.jpg"  # Kaggle's files are hex ids
        Image.fromarray(make(size, rng)).save(folder / name, quality=JPEG_QUALITY)


def _shape(size: int, rng: np.random.Generator) -> tuple[int, int]:
    """Paintings are not square: one side is `size`, the other 75%..133% of it."""
    other = int(round(size * rng.uniform(0.75, 1.33)))
    return (size, other) if rng.random() < 0.5 else (other, size)


# ---- style rendering ------------------------------------------------------------------------


def _hex(colours: tuple[str, ...]) -> np.ndarray:
    return np.array([[int(c[i : i + 2], 16) for i in (1, 3, 5)] for c in colours], np.float32)


def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    side = float(max(h, w))
    return x / side, y / side


def _blobs(x: np.ndarray, y: np.ndarray, rng: np.random.Generator, n: int = 3) -> np.ndarray:
    """Low-frequency composition: a few soft gaussian masses, in [0, 1]."""
    field = np.zeros_like(x)
    for _ in range(n):
        cx, cy, r = rng.uniform(0.1, 0.9), rng.uniform(0.1, 0.9), rng.uniform(0.12, 0.35)
        field += rng.uniform(0.5, 1.0) * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * r * r))
    return field / (field.max() + 1e-6)


def _box_blur(a: np.ndarray, k: int) -> np.ndarray:
    """Separable box blur via cumulative sums (cheap, edge-clamped)."""
    if k <= 1:
        return a
    pad = k // 2
    for axis in (0, 1):
        p = np.pad(
            a, [(pad, k - 1 - pad) if ax == axis else (0, 0) for ax in range(a.ndim)], mode="edge"
        )
        c = np.cumsum(p, axis=axis, dtype=np.float32)
        c = np.concatenate([np.zeros_like(np.take(c, [0], axis=axis)), c], axis=axis)
        n = a.shape[axis]
        a = (np.take(c, np.arange(k, k + n), axis=axis) - np.take(c, np.arange(n), axis=axis)) / k
    return a


def _texture(
    kind: str, u: np.ndarray, v: np.ndarray, f: float, rng: np.random.Generator
) -> np.ndarray:
    """A stroke pattern in [0, 1] along direction u (v is across the strokes)."""
    ph = rng.uniform(0, 2 * np.pi)
    tau = 2 * np.pi
    if kind == "swirl":  # long curling strokes
        t = np.sin(tau * f * u + 2.5 * np.sin(tau * 1.5 * v + ph) + ph)
    elif kind == "dabs":  # short broken strokes
        t = np.sin(tau * f * u + ph) * np.sign(np.sin(tau * f * 0.4 * v + 3 * ph))
    elif kind == "cubes":  # faceted planes
        q = np.floor(u * f * 1.5 + ph) + 2 * np.floor(v * f * 1.5 + ph)
        t = np.sin(q * 1.7 + ph)
    elif kind == "hatch":  # fine engraving lines on a light ground
        t = (np.sin(tau * f * u + ph) > 0.55).astype(np.float32) * 2 - 1
    elif kind == "flat":  # large flat colour fields
        t = np.sign(np.sin(tau * f * u + ph) + 0.6 * np.sin(tau * f * 0.7 * v + 2 * ph))
    elif kind == "smoke":  # dark, diffuse masses
        t = np.sin(tau * f * u + ph) * np.cos(tau * f * 0.8 * v - ph)
    elif kind == "spot":  # chiaroscuro: darkness with one lit area
        cx, cy = rng.uniform(0.3, 0.7, 2)
        t = 2 * np.exp(-((u - cx) ** 2 + (v - cy) ** 2) / 0.03) - 1
    elif kind == "floating":  # round floating figures
        cx, cy = rng.uniform(0.2, 0.8, 2)
        t = np.cos(tau * f * np.sqrt((u - cx) ** 2 + (v - cy) ** 2) + ph)
    elif kind in ("blur", "smooth"):  # soft, fused colour
        t = np.sin(tau * f * u + ph) * np.sin(tau * f * 0.5 * v + ph)
    else:
        raise ValueError(f"unknown texture {kind!r}")
    return (t + 1) / 2


def _colourise(t: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """Map t in [0, 1] onto a piecewise-linear colour ramp."""
    pos = np.clip(t, 0, 1) * (len(palette) - 1)
    lo = np.floor(pos).astype(np.int64).clip(0, len(palette) - 2)
    frac = (pos - lo)[..., None]
    return palette[lo] * (1 - frac) + palette[lo + 1] * frac


def _painting(artist: Artist, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    x, y = _grid(h, w)
    theta = np.deg2rad(artist.angle_deg + rng.normal(0, 8))
    u = x * np.cos(theta) + y * np.sin(theta)
    v = -x * np.sin(theta) + y * np.cos(theta)
    f = artist.freq * rng.uniform(0.85, 1.15)
    t = 0.65 * _texture(artist.texture, u, v, f, rng) + 0.35 * _blobs(x, y, rng)
    if artist.texture in ("blur", "smooth", "smoke"):
        t = _box_blur(t, max(2, h // 12))
    palette = _hex(artist.palette) + rng.normal(0, 10, (len(artist.palette), 3))
    img = _colourise(t + rng.normal(0, 0.04, t.shape), palette)
    img += rng.normal(0, 6, img.shape)  # canvas grain
    return img.clip(0, 255).astype(np.uint8)


def regional_painting(
    artist: Artist,
    h: int,
    w: int,
    rng: np.random.Generator,
    box: tuple[float, float, float, float] = (0.0, 0.0, 0.5, 0.5),
) -> np.ndarray:
    """The artist's style only inside `box` (x0, y0, x1, y1 as fractions of the image) on a
    bare primed canvas: a painting whose style signal sits in one known region (the test of
    where the classifier looks, artflow.classify.explain)."""
    canvas = np.full((h, w, 3), 205.0, np.float32) + rng.normal(0, 6, (h, w, 3))
    x0, y0, x1, y1 = round(box[0] * w), round(box[1] * h), round(box[2] * w), round(box[3] * h)
    if x1 <= x0 or y1 <= y0:
        raise ValueError(f"box {box} is empty at {w}x{h}")
    # the whole painting masked, not a small one: strokes keep their size in the image
    canvas[y0:y1, x0:x1] = _painting(artist, h, w, rng)[y0:y1, x0:x1]
    return canvas.clip(0, 255).astype(np.uint8)


MONET_PALETTE = ("#a9c4e4", "#f3c6d3", "#c6e2c0", "#f6eeb0", "#b8a9d9")


def _monet_painting(size: int, rng: np.random.Generator) -> np.ndarray:
    """Soft pastel dabs over a hazy horizon: no hard edges."""
    x, y = _grid(size, size)
    theta = rng.uniform(0, np.pi)
    u = x * np.cos(theta) + y * np.sin(theta)
    v = -x * np.sin(theta) + y * np.cos(theta)
    dabs = _texture("dabs", u, v, rng.uniform(10, 16), rng)
    horizon = 1 / (1 + np.exp(-(y - rng.uniform(0.35, 0.65)) * 12))
    t = _box_blur(0.5 * dabs + 0.5 * horizon, 3)
    palette = _hex(MONET_PALETTE)[rng.permutation(len(MONET_PALETTE))] + rng.normal(0, 8, (5, 3))
    img = _colourise(t, palette)
    return (_box_blur(img, 2) + rng.normal(0, 3, img.shape)).clip(0, 255).astype(np.uint8)


def _photo(size: int, rng: np.random.Generator) -> np.ndarray:
    """A 'landscape photo': sky gradient, ground, sharp-edged objects and sensor noise."""
    x, y = _grid(size, size)
    horizon = rng.uniform(0.4, 0.7)
    sky_top = np.array([rng.uniform(30, 90), rng.uniform(90, 150), rng.uniform(180, 240)])
    sky_low = np.array([rng.uniform(170, 220), rng.uniform(190, 230), rng.uniform(220, 250)])
    ground = np.array([rng.uniform(40, 110), rng.uniform(70, 130), rng.uniform(20, 70)])
    s = (y / horizon)[..., None]
    img = sky_top * (1 - s) + sky_low * s
    below = (y > horizon + 0.03 * np.sin(2 * np.pi * (x * 2 + rng.random())))[..., None]
    shade = (1 - 0.5 * (y - horizon))[..., None]
    img = np.where(below, ground * shade, img)
    for _ in range(rng.integers(2, 5)):  # buildings, trees, rocks: hard edges
        colour = rng.uniform(20, 200, 3)
        if rng.random() < 0.5:
            x0, w = rng.uniform(0, 0.85), rng.uniform(0.05, 0.25)
            top = rng.uniform(0.2, horizon)
            mask = (x > x0) & (x < x0 + w) & (y > top) & (y < horizon + 0.05)
        else:
            cx, cy, r = rng.uniform(0.1, 0.9), rng.uniform(0.3, 0.8), rng.uniform(0.04, 0.15)
            mask = (x - cx) ** 2 + (y - cy) ** 2 < r * r
        img = np.where(mask[..., None], colour * (0.8 + 0.4 * y[..., None]), img)
    img += rng.normal(0, 4, img.shape)
    return img.clip(0, 255).astype(np.uint8)
