"""The page's style gallery: one painting per artist of the classifier's data.

`build_gallery` copies the first training painting of every artist (split order, so the
choice is reproducible) into a folder as `<Artist_Name>.jpg`, at most `size` px a side; the
service lists that folder at GET /gallery and serves its files at GET /gallery/<file>.
The folder sits beside the prediction log (`<log dir>/gallery`), where a deployment keeps its
serving data.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

FOLDER = "gallery"
NAME = re.compile(r"^[^/\\\\]+\.jpg$")


def build_gallery(wd: Any, out: Path, size: int = 256) -> list[Path]:
    """Write one JPEG per artist of wd's training split into `out`; returns the files."""
    import pandas as pd
    from PIL import Image

    from artflow.errors import DataError

    path = wd.split_csv("train")
    if not path.is_file():
        raise DataError(f"no training split at {path}", "run `artflow data sample` first")
    frame = pd.read_csv(path)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for artist, rows in frame.groupby("artist", sort=True):
        with Image.open(wd.abs(rows["path"].iloc[0])) as img:
            img = img.convert("RGB")
            img.thumbnail((size, size))
            target = out / f"{str(artist).replace(' ', '_')}.jpg"
            img.save(target, quality=90)
        written.append(target)
    return written


def listing(folder: Path) -> list[dict[str, str]]:
    """[{artist, url}] of the gallery folder (empty when there is none)."""
    if not folder.is_dir():
        return []
    return [
        {"artist": p.stem, "url": f"/gallery/{p.name}"}
        for p in sorted(folder.glob("*.jpg"))
        if NAME.match(p.name)
    ]


def file_for(folder: Path, name: str) -> Path | None:
    """The gallery file called `name`, or None (no path tricks: it must be listed)."""
    if not NAME.match(name):
        return None
    path = folder / name
    return path if path.is_file() and path.parent == folder else None
