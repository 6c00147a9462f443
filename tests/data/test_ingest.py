"""Ingest: every quirk of the real archive, on tiny hand-built sources."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path

import pandas as pd
import pytest

from artflow.data.ingest import ingest, read_manifest
from artflow.data.layout import Workdir
from artflow.errors import DataError

from .conftest import sha_tree, write_image, zip_with_cp437_names

DURER = "Albrecht Dürer"


def _run(source, tmp_path: Path, settings) -> tuple[Workdir, dict, pd.DataFrame]:
    wd = Workdir.at(tmp_path / "wd")
    report = ingest(source, wd, settings)
    return wd, report, read_manifest(wd.manifest)


def test_quirks_folder(quirky_source: Path, tmp_path: Path, smoke_settings) -> None:
    before = sha_tree(quirky_source)
    wd, report, m = _run(quirky_source, tmp_path, smoke_settings)
    art = report["artworks"]

    # names: spaces vs underscores, hyphen vs underscore, NFD Dürer -> canonical csv names
    assert art["per_artist"] == {DURER: 2, "Pierre-Auguste Renoir": 2, "Vincent van Gogh": 5}
    assert set(m["artist"]) == {DURER, "Pierre-Auguste Renoir", "Vincent van Gogh"}
    assert all(unicodedata.is_normalized("NFC", p) for p in m["path"])
    assert "raw/artworks/images/Albrecht_Dürer/Albrecht_Dürer_1.jpg" in set(m["path"])
    assert "Pierre_Auguste_Renoir" in art["matched_normalized"]

    # resized/ copies never counted twice, and the report says so
    assert len(m) == 9 and art["resized_skipped"] == 9
    assert not m["source"].str.contains("resized").any()

    # unmatched folder and csv row are reported, not dropped silently
    assert [u["folder"] for u in art["unmatched_folders"]] == ["images/images/Unknown_Painter"]
    assert art["unmatched_csv_rows"] == ["Frida Kahlo"]

    # grayscale and CMYK kept with their real modes; the lying extension gets its real format
    by_name = m.set_index(m["path"].map(lambda p: Path(p).name))
    assert by_name.loc["Vincent_van_Gogh_4.jpg", "mode"] == "L"
    assert by_name.loc["Vincent_van_Gogh_5.jpg", "mode"] == "CMYK"
    assert by_name.loc["Pierre-Auguste_Renoir_2.jpg", "format"] == "PNG"
    assert by_name.loc["Pierre-Auguste_Renoir_1.jpg", "format"] == "JPEG"
    assert (m["width"] == 48).all() and (m["height"] == 40).all()

    # copies are byte-identical and the source is untouched
    for row in m.itertuples():
        assert wd.abs(row.path).is_file()
    assert sha_tree(quirky_source) == before
    assert json.loads(wd.ingest_report.read_text())["artworks"]["files_ingested"] == 9


def test_zip_with_mangled_names(quirky_source: Path, tmp_path: Path, smoke_settings) -> None:
    archive = zip_with_cp437_names(quirky_source, tmp_path / "archive.zip")
    before = archive.read_bytes()
    _, report, m = _run(archive, tmp_path, smoke_settings)
    art = report["artworks"]
    assert art["per_artist"][DURER] == 2
    mangled = unicodedata.normalize("NFD", "Albrecht_Dürer").encode().decode("cp437")
    assert mangled in art["matched_normalized"]  # reported as a repaired spelling
    assert len(m) == 9 and archive.read_bytes() == before


def test_fuzzy_match_is_reported(tmp_path: Path, smoke_settings) -> None:
    src = tmp_path / "src"
    from .conftest import write_artists

    write_artists(src / "artists.csv", [(DURER, 1), ("Rembrandt", 1)])
    write_image(src / "images" / "Albrecht_DuΓòá├¬rer" / "Albrecht_DuΓòá├¬rer_1.jpg", seed=1)
    write_image(src / "images" / "Rembrandt" / "Rembrandt_1.jpg", seed=2)
    _, report, m = _run(src, tmp_path, smoke_settings)
    assert report["artworks"]["matched_fuzzy"] == {"Albrecht_DuΓòá├¬rer": DURER}
    assert sorted(m["artist"]) == [DURER, "Rembrandt"]


def test_duplicates_by_content_within_artist(tmp_path: Path, smoke_settings) -> None:
    src = tmp_path / "src"
    from .conftest import write_artists

    write_artists(src / "artists.csv", [("Titian", 2)])
    a = write_image(src / "images" / "Titian" / "Titian_1.jpg", seed=1)
    (src / "images" / "Titian" / "Titian_2.jpg").write_bytes(a.read_bytes())
    _, report, m = _run(src, tmp_path, smoke_settings)
    assert len(m) == 1
    assert report["artworks"]["duplicates_skipped"][0]["reason"].startswith("identical content")


def test_undecodable_and_empty_files_stay_in_manifest(tmp_path: Path, smoke_settings) -> None:
    src = tmp_path / "src"
    from .conftest import write_artists

    write_artists(src / "artists.csv", [("Titian", 3)])
    good = write_image(src / "images" / "Titian" / "Titian_1.jpg", seed=1)
    (src / "images" / "Titian" / "Titian_2.jpg").write_bytes(good.read_bytes()[:200])
    (src / "images" / "Titian" / "Titian_3.jpg").write_bytes(b"")
    _, _, m = _run(src, tmp_path, smoke_settings)
    rows = m.set_index(m["path"].map(lambda p: Path(p).name))
    assert rows.loc["Titian_1.jpg", "mode"] == "RGB"
    assert rows.loc["Titian_2.jpg", "mode"] == "" and "corrupt" in rows.loc["Titian_2.jpg", "error"]
    assert rows.loc["Titian_3.jpg", "bytes"] == 0
    assert rows.loc["Titian_3.jpg", "error"] == "empty file (0 bytes)"


def test_monet_layout_found_anywhere(demo_source: Path, tmp_path: Path, smoke_settings) -> None:
    wd = Workdir.at(tmp_path / "wd")
    report = ingest(demo_source / "monet", wd, smoke_settings)
    assert report["artworks"] is None and not wd.manifest.exists()
    assert set(read_manifest(wd.monet_manifest)["domain"]) == {"monet", "photo"}
    assert report["monet"]["per_domain"] == {"monet": 16, "photo": 32}


@pytest.mark.parametrize("make", ["missing", "plain_file", "no_layout"])
def test_bad_sources_raise(make: str, tmp_path: Path, smoke_settings) -> None:
    src = tmp_path / "src"
    if make == "plain_file":
        src.write_text("not a zip")
    elif make == "no_layout":
        write_image(src / "cat.jpg", seed=1)
    with pytest.raises(DataError):
        ingest(src, Workdir.at(tmp_path / "wd"), smoke_settings)


def test_refuses_to_ingest_from_its_own_raw(demo_workdir: Workdir, smoke_settings) -> None:
    with pytest.raises(DataError, match="overlaps"):
        ingest(demo_workdir.raw_artworks, demo_workdir, smoke_settings)


def test_phone_photo_formats_are_ingested(tmp_path: Path, smoke_settings) -> None:
    """HEIC (iPhone) and AVIF files are images too: ingested, probed, copied."""
    import pillow_heif

    from .conftest import write_artists

    pillow_heif.register_heif_opener()
    src = tmp_path / "src"
    write_artists(src / "artists.csv", [("Titian", 3)])
    write_image(src / "images" / "Titian" / "Titian_1.heic", seed=1, fmt="HEIF")
    write_image(src / "images" / "Titian" / "Titian_2.avif", seed=2, fmt="AVIF")
    write_image(src / "images" / "Titian" / "Titian_3.jpg", seed=3)
    wd, report, m = _run(src, tmp_path, smoke_settings)
    rows = m.set_index(m["path"].map(lambda p: Path(p).name))
    assert report["artworks"]["per_artist"] == {"Titian": 3}
    assert rows.loc["Titian_1.heic", "format"] == "HEIF"
    assert rows.loc["Titian_2.avif", "format"] == "AVIF"
    assert (rows["error"] == "").all() and (rows["width"] == 48).all()
    assert all(wd.abs(p).is_file() for p in m["path"])
