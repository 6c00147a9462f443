"""Traffic for the drift demo: send images to a running service, or log them without one.

`send_images` posts each image to the service's /classify endpoint (the service writes the
prediction log). `log_images` classifies the images here with a registered classifier and
writes the same records through the writer it is given (the CLI passes the service's own,
artflow.serve.predlog, as pod `simulate`), so the drift loop can be shown and tested without
a server. `darken` and the image folders make the three kinds of drift of the demo:
photos, paintings by artists outside the trained ones, and underexposed images.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from artflow.errors import ArtflowError, DataError
from artflow.imageio import load_rgb
from artflow.monitor.records import classify_records

SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}


def image_paths(source: str | Path, limit: int | None = None, seed: int = 0) -> list[Path]:
    """Image files under a folder (recursively), or listed in a split CSV (its `path` column,
    relative to the CSV's workdir); a seeded sample of `limit` when given."""
    source = Path(source)
    if source.is_file() and source.suffix == ".csv":
        import pandas as pd

        root = source.parent.parent  # <workdir>/splits/<name>.csv
        paths = [root / p for p in pd.read_csv(source)["path"]]
    elif source.is_dir():
        paths = sorted(p for p in source.rglob("*") if p.suffix.lower() in SUFFIXES)
    else:
        raise DataError(f"{source} is neither a folder of images nor a split CSV")
    if not paths:
        raise DataError(f"no images found in {source}", f"use a folder with {sorted(SUFFIXES)}")
    if limit is not None and limit < len(paths):
        idx = np.random.default_rng(seed).choice(len(paths), size=limit, replace=False)
        paths = [paths[i] for i in sorted(idx)]
    return paths


def darken(rgb: np.ndarray, factor: float) -> np.ndarray:
    """Scale brightness by `factor` (0..1): an underexposed camera, a bad scanner."""
    return (rgb.astype(np.float32) * factor).clip(0, 255).astype(np.uint8)


def _images(paths: Sequence[Path], dim: float | None) -> Iterator[np.ndarray]:
    for path in paths:
        rgb = load_rgb(path)
        yield darken(rgb, dim) if dim is not None else rgb


def _encoded(rgb: np.ndarray) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


def send_images(
    url: str,
    paths: Sequence[Path],
    dim: float | None = None,
    client_key: str = "drift-demo",
    timeout: float = 30.0,
) -> dict[str, Any]:
    """POST each image to {url}/classify; counts of answers by status and the artists seen."""
    import requests

    endpoint = url.rstrip("/") + "/classify"
    statuses: dict[int, int] = {}
    artists: dict[str, int] = {}
    with requests.Session() as session:
        for path, rgb in zip(paths, _images(paths, dim), strict=True):
            files = {"image": (f"{path.stem}.png", _encoded(rgb), "image/png")}
            try:
                resp = session.post(
                    endpoint, files=files, headers={"X-Client-Key": client_key}, timeout=timeout
                )
            except requests.RequestException as exc:
                raise ArtflowError(
                    f"cannot reach the service at {endpoint}: {type(exc).__name__}",
                    "start it with `artflow serve` and pass its URL with --url",
                ) from None
            statuses[resp.status_code] = statuses.get(resp.status_code, 0) + 1
            if resp.ok:
                artist = str(resp.json().get("artist"))
                artists[artist] = artists.get(artist, 0) + 1
    return {"sent": len(paths), "statuses": statuses, "artists": artists}


def log_images(
    classifier: Any,
    paths: Sequence[Path],
    log: Any,
    dim: float | None = None,
    batch: int = 32,
    **fields: Any,
) -> dict[str, Any]:
    """Classify images with a LoadedClassifier and write their records to `log` (a
    prediction-log writer: `write(record)`, `close()`, `folder`), which is closed at the end."""
    written = 0
    artists: dict[str, int] = {}
    try:
        for start in range(0, len(paths), batch):
            images = list(_images(paths[start : start + batch], dim))
            for rec in classify_records(classifier, images, **fields):
                log.write(rec)
                written += 1
                artists[str(rec.artist)] = artists.get(str(rec.artist), 0) + 1
    finally:
        log.close()
    return {"logged": written, "log": str(log.folder), "artists": artists}
