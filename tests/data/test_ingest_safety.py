"""Ingest against hostile sources: names that climb out, unsafe zip members, zip bombs.

Every case checks that nothing was written outside the data version and that the source was
left untouched."""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path

import pytest

from artflow.config import ArchiveCfg
from artflow.data.ingest import ingest, read_manifest
from artflow.data.layout import Workdir
from artflow.errors import DataError

from .conftest import sha_tree, write_artists, write_image


def _source(root: Path, artist: str, folder: str) -> Path:
    write_artists(root / "artists.csv", [(artist, 2)])
    for i in (1, 2):
        write_image(root / "images" / folder / f"{folder}_{i}.jpg", seed=i)
    return root


def _outside(tmp_path: Path, wd: Workdir) -> set[str]:
    """Files under tmp_path that are neither in the workdir nor in a source."""
    return {
        p.relative_to(tmp_path).as_posix()
        for p in tmp_path.rglob("*")
        if p.is_file() and not p.is_relative_to(wd.root) and "src" not in p.parts
    }


def test_an_artist_name_that_climbs_out_stays_inside(tmp_path: Path, smoke_settings) -> None:
    source = _source(tmp_path / "src", "../../../escaped", "escaped")
    before, wd = sha_tree(source), Workdir.at(tmp_path / "deep" / "er" / "wd")
    report = ingest(source, wd, smoke_settings)
    paths = list(read_manifest(wd.manifest)["path"])
    assert report["artworks"]["files_ingested"] == 2 and len(paths) == 2
    raw = (wd.root / "raw").resolve()
    assert all((wd.root / p).resolve().is_relative_to(raw) for p in paths)
    assert all(p.startswith("raw/artworks/images/.._.._.._escaped/") for p in paths)
    assert _outside(tmp_path, wd) == set()
    assert sha_tree(source) == before


def test_names_become_one_safe_component_or_are_refused_by_name() -> None:
    from artflow.data.names import safe_component

    assert safe_component("AC/DC", "x") == "AC_DC"
    assert safe_component("a\\b:c", "x") == "a_b_c"
    assert safe_component("Albrecht_Dürer", "x") == "Albrecht_Dürer"
    for bad in ("..", ".", "", " "):
        with pytest.raises(DataError, match=f"artist {bad!r} gives no usable"):
            safe_component(bad, f"artist {bad!r}")


def test_a_destination_through_a_symlink_is_refused(tmp_path, smoke_settings) -> None:
    from artflow.data.ingest import _inside

    wd = Workdir.at(tmp_path / "wd")
    (wd.root / "raw").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    (wd.root / "raw" / "artworks").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(DataError, match="artist 'X'.*leaves the data version"):
        _inside(wd, "raw/artworks/images/X/X_1.jpg", "artist 'X'")
    assert _inside(wd, "raw/monet/monet_jpg/a.jpg", "file 'a.jpg'") == "raw/monet/monet_jpg/a.jpg"


def _zip(path: Path, members: dict[str, bytes], symlinks: dict[str, str] | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        for name, target in (symlinks or {}).items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return path


@pytest.mark.parametrize(
    ("member", "why"),
    [
        ("../../escaped.txt", "climbs out"),
        ("monet_jpg/../../../escaped.jpg", "climbs out"),
        ("/tmp/artflow-escaped.jpg", "absolute path"),
        ("C:/escaped.jpg", "absolute path"),
    ],
)
def test_unsafe_zip_member_names_are_refused(tmp_path, smoke_settings, member, why) -> None:
    archive = _zip(tmp_path / "src.zip", {"artists.csv": b"id,name\n0,A\n", member: b"payload"})
    before = archive.read_bytes()
    wd = Workdir.at(tmp_path / "wd")
    with pytest.raises(DataError, match=why) as err:
        ingest(archive, wd, smoke_settings)
    assert repr(member) in str(err.value)
    assert not Path("/tmp/artflow-escaped.jpg").exists()
    assert {p.name for p in tmp_path.rglob("*escaped*")} == set()
    assert archive.read_bytes() == before


def test_symlink_members_are_refused(tmp_path, smoke_settings) -> None:
    archive = _zip(
        tmp_path / "src.zip", {"artists.csv": b"id,name\n0,A\n"}, {"images/A/link": "/etc/passwd"}
    )
    with pytest.raises(DataError, match="symbolic link") as err:
        ingest(archive, Workdir.at(tmp_path / "wd"), smoke_settings)
    assert "'images/A/link'" in str(err.value)


def test_a_zip_bomb_is_refused_before_it_inflates(tmp_path, smoke_settings) -> None:
    bomb = tmp_path / "bomb.zip"  # 64 MiB of zeros compress to ~64 KiB (ratio ~1000)
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("artists.csv", b"id,name\n0,A\n")
        with zf.open("monet_jpg/big.jpg", "w") as fh:
            for _ in range(64):
                fh.write(bytes(2**20))
    assert bomb.stat().st_size < 2**20
    wd = Workdir.at(tmp_path / "wd")
    with pytest.raises(DataError, match=r"inflates \d+x, over data.archive.max_ratio=100"):
        ingest(bomb, wd, smoke_settings)
    tight = smoke_settings.model_copy(
        update={
            "data": smoke_settings.data.model_copy(
                update={"archive": ArchiveCfg(max_total_mb=16, max_ratio=10_000, max_members=100)}
            )
        }
    )
    with pytest.raises(DataError, match="over data.archive.max_total_mb=16"):
        ingest(bomb, wd, tight)
    few = tight.model_copy(
        update={"data": tight.data.model_copy(update={"archive": ArchiveCfg(max_members=1)})}
    )
    with pytest.raises(DataError, match="2 members, over data.archive.max_members=1"):
        ingest(bomb, wd, few)
    assert not (wd.root / "raw").exists() or not any((wd.root / "raw").rglob("*.jpg"))


def test_a_member_lying_about_its_size_stops_at_the_declared_size(tmp_path) -> None:
    from artflow.data.ingest import _extract_zip

    archive = tmp_path / "liar.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("a.bin", bytes(4096))
    raw = bytearray(archive.read_bytes())
    # Shrink the declared uncompressed size in the central directory (and local header) to 10.
    for sig in (b"PK\x03\x04", b"PK\x01\x02"):
        at = raw.find(sig)
        offset = at + (22 if sig == b"PK\x03\x04" else 24)
        raw[offset : offset + 4] = (10).to_bytes(4, "little")
    archive.write_bytes(bytes(raw))
    with pytest.raises(DataError, match="(beyond its declared size|cannot read zip)"):
        _extract_zip(archive, tmp_path / "out", ArchiveCfg())
