"""Builders for small data sets with the real archive's quirks (in tmp dirs)."""

from __future__ import annotations

import hashlib
import io
import shutil
import unicodedata
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

CSV_HEADER = "id,name,years,genre,nationality,bio,wikipedia,paintings\n"


def write_image(
    path: Path, seed: int, size: tuple[int, int] = (48, 40), mode: str = "RGB", fmt: str = "JPEG"
) -> Path:
    """A small random image in the given mode/format (distinct bytes per seed)."""
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    img = Image.fromarray(arr).convert(mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, format=fmt)
    return path


def write_artists(path: Path, rows: list[tuple[str, int]]) -> None:
    lines = [CSV_HEADER] + [
        f'{i},{name},1800 - 1900,Impressionism,French,"{name} painted.",http://x/{i},{n}\n'
        for i, (name, n) in enumerate(rows)
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(lines), encoding="utf-8")


def sha_tree(root: Path) -> dict[str, str]:
    """relative path -> sha256 of every file below root."""
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def quirky_source(tmp_path: Path) -> Path:
    """The real archive's shape and quirks, tiny:

    archive/artists.csv                        names with spaces, NFC "Albrecht Dürer",
                                               "Frida Kahlo" without any images
    archive/images/images/Vincent_van_Gogh/    3 RGB jpgs, one grayscale, one CMYK
    archive/images/images/Albrecht_Dürer/      NFD folder and file names, 2 jpgs
    archive/images/images/Pierre_Auguste_Renoir/  underscore for the csv's hyphen, 1 PNG named .jpg
    archive/images/images/Unknown_Painter/     no csv row
    archive/resized/resized/<Artist>_<N>.jpg   smaller copies of every images/ file
    """
    root = tmp_path / "archive"
    write_artists(
        root / "artists.csv",
        [
            ("Vincent van Gogh", 5),
            ("Albrecht Dürer", 2),
            ("Pierre-Auguste Renoir", 2),
            ("Frida Kahlo", 3),
        ],
    )
    images = root / "images" / "images"
    gogh = images / "Vincent_van_Gogh"
    for i in range(1, 4):
        write_image(gogh / f"Vincent_van_Gogh_{i}.jpg", seed=i)
    write_image(gogh / "Vincent_van_Gogh_4.jpg", seed=4, mode="L")
    write_image(gogh / "Vincent_van_Gogh_5.jpg", seed=5, mode="CMYK")
    durer = unicodedata.normalize("NFD", "Albrecht_Dürer")
    for i in (1, 2):
        write_image(images / durer / f"{durer}_{i}.jpg", seed=10 + i)
    renoir = images / "Pierre_Auguste_Renoir"
    write_image(renoir / "Pierre_Auguste_Renoir_1.jpg", seed=20)
    write_image(renoir / "Pierre_Auguste_Renoir_2.jpg", seed=21, fmt="PNG")  # extension lies
    write_image(images / "Unknown_Painter" / "Unknown_Painter_1.jpg", seed=30)
    for src in sorted(images.rglob("*.jpg")):
        if "Unknown" in src.name:
            continue
        small = Image.open(src)
        small = small.resize((small.width // 2, small.height // 2))
        target = root / "resized" / "resized" / src.name
        target.parent.mkdir(parents=True, exist_ok=True)
        small.save(target, format=small.format or "JPEG")
    return root


def zip_with_cp437_names(folder: Path, archive: Path) -> Path:
    """Zip `folder` the way some tools do: UTF-8 name bytes stored without the UTF-8 flag,
    so readers decode them as cp437 ("Albrecht_Du╠êrer")."""
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                name = path.relative_to(folder.parent).as_posix()
                mangled = name.encode("utf-8").decode("cp437")
                zf.writestr(zipfile.ZipInfo(mangled), path.read_bytes())
    return archive


def copy_tree(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest)
    return dest


def png_bytes(seed: int = 0) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (40, 40, 3), np.uint8)).save(
        buf, format="PNG"
    )
    return buf.getvalue()
