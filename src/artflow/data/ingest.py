"""Copy a data set in the Kaggle layouts into a data version and describe every file.

The source (folder(s) or zip(s)) is only read. Anywhere inside it we look for
  artworks: artists.csv + images/<Artist_Name>/*.jpg (optionally resized/ copies)
  monet:    monet_jpg/ + photo_jpg/
and copy what we find to wd.raw_artworks / wd.raw_monet under canonical names, then write
wd.manifest, wd.monet_manifest and wd.ingest_report. Undecodable files are kept in the
manifest with an empty mode/format and the decode error, so validation can quarantine them.

Names come from outside (artists.csv, folder and file names, zip members), so destination
paths are built from sanitised names (artflow.data.names.safe_component) and every one must
resolve inside the workdir's raw/ folder, or ingest stops naming the offender. Zip archives
are extracted with limits from settings.data.archive (total size, compression ratio, member
count) and refuse members that are absolute, climb out with `..`, or are symbolic links.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import shutil
import stat
import tempfile
import zipfile
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from artflow.config import ArchiveCfg, Settings
from artflow.data import names
from artflow.data.layout import Workdir
from artflow.errors import DataError
from artflow.imageio import open_image
from artflow.progress import progress

# What the archive may hold: the formats serving accepts (artflow/serve/validation.py),
# phone photos included (HEIC/HEIF through pillow-heif, AVIF, MPO), which training decodes too.
IMAGE_EXTS = {
    ".jpg",
    ".jpeg",
    ".png",
    ".gif",
    ".bmp",
    ".tif",
    ".tiff",
    ".webp",
    ".heic",
    ".heif",
    ".avif",
    ".mpo",
}
IGNORED_DIRS = {"__macosx", ".ds_store", ".git", ".dvc"}
PROBE_COLUMNS = ["sha256", "width", "height", "mode", "format", "bytes", "error"]
MANIFEST_COLUMNS = ["path", "artist", *PROBE_COLUMNS, "source"]
MONET_COLUMNS = ["path", "domain", *PROBE_COLUMNS, "source"]
MONET_DIRS = {"monet_jpg": "monet", "photo_jpg": "photo"}
_NUMBERED = re.compile(r"^(?P<prefix>.*?)_?(?P<num>\d+)$")


@dataclass
class Candidate:
    """One image file found in the source and where it goes."""

    src: Path
    rel: str  # path inside the source layout, for the report
    label: str  # artist name or monet domain
    dest: str  # path relative to the workdir
    resized: bool = False
    probe: dict[str, object] = field(default_factory=dict)


def ingest(source: str | Path | Sequence[str | Path], wd: Workdir, settings: Settings) -> dict:
    """Ingest one or more folders/zips into `wd`; returns the ingest report (also on disk)."""
    sources = [Path(s).expanduser().resolve() for s in _as_list(source)]
    for src in sources:
        _check_source(src, wd)
    with contextlib.ExitStack() as stack:
        roots = [_open_source(src, stack, settings.data.archive) for src in sources]
        artworks, monet = _find_layouts(roots)
        if artworks is None and not monet:
            raise DataError(
                f"no Kaggle layout found in {', '.join(map(str, sources))}",
                "expected artists.csv + images/<Artist_Name>/*.jpg and/or monet_jpg/ + photo_jpg/",
            )
        _reset_outputs(wd)
        report: dict = {"sources": [str(s) for s in sources]}
        report["artworks"] = _ingest_artworks(artworks, wd) if artworks else None
        report["monet"] = _ingest_monet(monet, wd)
    wd.ingest_report.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    return report


# ---- sources --------------------------------------------------------------------------------


def _as_list(source: str | Path | Sequence[str | Path]) -> list[str | Path]:
    return [source] if isinstance(source, str | Path) else list(source)


def _check_source(src: Path, wd: Workdir) -> None:
    if not src.exists():
        raise DataError(f"source not found: {src}", "pass an existing folder or .zip, or --kaggle")
    raw = wd.root / "raw"
    if src == raw or raw in src.parents or src in raw.parents:
        # ingest empties raw/ first: ingesting from it (or from above it) would delete the source
        raise DataError(
            f"source {src} overlaps the workdir's raw data {raw}",
            "ingest from the original download, not from a data version",
        )
    if src.is_file() and not zipfile.is_zipfile(src):
        raise DataError(
            f"{src} is neither a folder nor a zip archive",
            "pass the unpacked folder or the .zip as downloaded from Kaggle",
        )


def _open_source(src: Path, stack: contextlib.ExitStack, limits: ArchiveCfg) -> Path:
    if src.is_dir():
        return src
    tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="artflow-ingest-")))
    _extract_zip(src, tmp, limits)
    return tmp


MiB = 2**20
_CHUNK = MiB


def _extract_zip(archive: Path, dest: Path, limits: ArchiveCfg) -> None:
    """Extract within limits; names stay as the archive spells them (matching repairs them).

    The sizes in a zip's directory are the archive's own claims: they are checked first (a
    cheap refusal), and the bytes actually inflated are counted again while extracting."""
    try:
        with zipfile.ZipFile(archive) as zf:
            members = [i for i in zf.infolist() if not i.is_dir()]
            _check_members(archive, members, limits)
            written = 0
            for info in progress(members, len(members), f"extracting {archive.name}"):
                written = _extract_member(zf, info, dest, written, archive, limits)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as exc:
        raise DataError(f"cannot read zip archive {archive}: {exc}") from None


def _limit_error(archive: Path, what: str) -> DataError:
    return DataError(
        f"zip archive {archive}: {what}; nothing was ingested",
        "check the archive (a zip bomb?), or raise data.archive limits in params.yaml",
    )


def _check_members(archive: Path, members: list[zipfile.ZipInfo], limits: ArchiveCfg) -> None:
    if len(members) > limits.max_members:
        raise _limit_error(
            archive, f"{len(members)} members, over data.archive.max_members={limits.max_members}"
        )
    total = sum(i.file_size for i in members)
    if total > limits.max_total_mb * MiB:
        raise _limit_error(
            archive,
            f"{total / MiB:.0f} MiB uncompressed, over data.archive.max_total_mb="
            f"{limits.max_total_mb:g}",
        )
    for info in members:
        _member_parts(archive, info)  # refuses unsafe names before anything is written
        if info.file_size > MiB and info.file_size > limits.max_ratio * max(info.compress_size, 1):
            ratio = info.file_size / max(info.compress_size, 1)
            raise _limit_error(
                archive,
                f"member {info.filename!r} inflates {ratio:.0f}x, over "
                f"data.archive.max_ratio={limits.max_ratio:g}",
            )


def _member_parts(archive: Path, info: zipfile.ZipInfo) -> tuple[str, ...]:
    """The member's path parts; DataError for absolute paths, `..`, drives and symlinks."""
    name = info.filename.replace("\\", "/")
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    mode = info.external_attr >> 16
    why = None
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        why = "is an absolute path"
    elif ".." in parts:
        why = "climbs out of the archive with '..'"
    elif stat.S_ISLNK(mode):
        why = "is a symbolic link"
    elif not parts:
        why = "has an empty name"
    if why:
        raise DataError(
            f"zip archive {archive}: member {info.filename!r} {why}; refused, nothing extracted",
            "re-create the archive from the data set's own files",
        )
    return parts


def _extract_member(
    zf: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    dest: Path,
    written: int,
    archive: Path,
    limits: ArchiveCfg,
) -> int:
    """Stream one member out, counting real bytes; returns the running total."""
    target = dest.joinpath(*_member_parts(archive, info))
    if not target.resolve().is_relative_to(dest.resolve()):
        raise DataError(f"zip archive {archive}: member {info.filename!r} leaves the folder")
    target.parent.mkdir(parents=True, exist_ok=True)
    budget = limits.max_total_mb * MiB
    size = 0
    with zf.open(info) as fin, target.open("wb") as fout:
        while chunk := fin.read(_CHUNK):
            size += len(chunk)
            if size > max(info.file_size, 0) or written + size > budget:
                raise _limit_error(
                    archive, f"member {info.filename!r} inflates beyond its declared size"
                )
            fout.write(chunk)
    return written + size


def _walk(root: Path) -> Iterator[Path]:
    """Every file below root, sorted, skipping macOS/VCS litter."""
    for path in sorted(root.rglob("*")):
        rel_parts = path.relative_to(root).parts
        if any(p.lower() in IGNORED_DIRS or p.startswith("._") for p in rel_parts):
            continue
        if path.is_file():
            yield path


def _find_layouts(roots: list[Path]) -> tuple[Path | None, dict[str, Path]]:
    """(folder holding artists.csv, {domain: folder}) — the shallowest match wins."""
    artworks: Path | None = None
    monet: dict[str, Path] = {}
    for root in roots:
        for csv_path in sorted(root.rglob("artists.csv"), key=lambda p: len(p.parts)):
            if artworks is None and not any(p.lower() in IGNORED_DIRS for p in csv_path.parts):
                artworks = csv_path.parent
        for dirname, domain in MONET_DIRS.items():
            for d in sorted(root.rglob(dirname), key=lambda p: len(p.parts)):
                if d.is_dir() and domain not in monet:
                    monet[domain] = d
    return artworks, monet


def _reset_outputs(wd: Workdir) -> None:
    """Ingest owns raw/ and interim/ of the data version: start them clean."""
    for folder in (wd.raw_artworks, wd.raw_monet):
        if folder.exists():
            shutil.rmtree(folder)
    for f in (wd.manifest, wd.monet_manifest, wd.ingest_report):
        f.unlink(missing_ok=True)
    wd.interim.mkdir(parents=True, exist_ok=True)


# ---- artworks -------------------------------------------------------------------------------


def _read_artists(csv_path: Path) -> pd.DataFrame:
    try:
        df = pd.read_csv(csv_path, encoding="utf-8")
    except UnicodeDecodeError:
        df = pd.read_csv(csv_path, encoding="latin-1")
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise DataError(f"{csv_path} is not a readable CSV: {exc}") from None
    if "name" not in df.columns:
        raise DataError(
            f"{csv_path} has no 'name' column (columns: {list(df.columns)})",
            "use the Kaggle artists.csv (id,name,years,genre,nationality,...)",
        )
    return df


def _ingest_artworks(root: Path, wd: Workdir) -> dict:
    artists = _read_artists(root / "artists.csv")
    csv_names = [names.clean(str(n)) for n in artists["name"].dropna()]
    matcher = names.NameMatcher(csv_names)
    matches: dict[str, dict[str, str]] = {"normalized": {}, "fuzzy": {}}
    unmatched: dict[str, list[str]] = defaultdict(list)
    found: list[Candidate] = []
    for path in _walk(root):
        if path.suffix.lower() not in IMAGE_EXTS:
            continue
        rel = path.relative_to(root).as_posix()
        artist, how, spelled = _artist_of(path, matcher)
        if artist is None:
            unmatched[path.parent.relative_to(root).as_posix()].append(path.name)
            continue
        if how in matches:
            matches[how][spelled] = artist
        resized = any(p.lower() == "resized" for p in path.relative_to(root).parts[:-1])
        folder = names.safe_component(names.folder_name(artist), f"artist {artist!r}")
        dest = f"raw/artworks/images/{folder}/{_dest_name(path, artist)}"
        found.append(Candidate(path, rel, artist, _inside(wd, dest, f"artist {artist!r}"), resized))

    kept, skipped = _dedupe_names(found)
    _probe_all(kept)
    kept, skipped_hash = _dedupe_hashes(kept)
    skipped += skipped_hash
    _copy(kept, wd)
    wd.raw_artworks.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(root / "artists.csv", wd.artists_csv)
    _write_manifest(kept, wd.manifest, "artist", MANIFEST_COLUMNS)

    per_artist = Counter(c.label for c in kept)
    return {
        "layout": str(root),
        "csv_artists": len(csv_names),
        "files_ingested": len(kept),
        "per_artist": dict(sorted(per_artist.items())),
        "matched_normalized": matches["normalized"],
        "matched_fuzzy": matches["fuzzy"],
        "name_collisions": matcher.collisions,
        "unmatched_folders": [
            {"folder": k, "files": len(v), "examples": v[:3]} for k, v in sorted(unmatched.items())
        ],
        "unmatched_csv_rows": sorted(n for n in csv_names if n not in per_artist),
        "duplicates_skipped": skipped,
        "resized_skipped": sum(1 for s in skipped if s["reason"].startswith("resized")),
        "undecodable": sum(1 for c in kept if c.probe["error"]),
    }


def _artist_of(path: Path, matcher: names.NameMatcher) -> tuple[str | None, str, str]:
    """Artist from the parent folder, else from the file name (resized/ is flat)."""
    for spelled in (path.parent.name, _strip_number(path.stem)):
        artist, how = matcher.match(spelled)
        if artist is not None:
            return artist, how, spelled
    return None, "none", path.parent.name


def _strip_number(stem: str) -> str:
    m = _NUMBERED.match(stem)
    return m.group("prefix") if m else stem


def _dest_name(path: Path, artist: str) -> str:
    """<Artist_Name>_<N><ext> when the file follows Kaggle's naming, else its repaired name."""
    stem = names.clean(path.stem)
    m = _NUMBERED.match(stem)
    if m and names.key(m.group("prefix")) == names.key(artist):
        name = f"{names.folder_name(artist)}_{m.group('num')}{path.suffix}"
    else:
        name = f"{stem}{path.suffix}"
    return names.safe_component(name, f"file {path.name!r}")


def _inside(wd: Workdir, dest: str, what: str) -> str:
    """`dest` (workdir-relative) when it resolves inside wd/raw, else DataError naming `what`.

    Resolving follows symbolic links, so a link planted inside raw/ cannot lead out either."""
    raw = (wd.root / "raw").resolve()
    if not (wd.root / dest).resolve().is_relative_to(raw):
        raise DataError(
            f"the destination of {what} ({dest}) leaves the data version's raw/ folder {raw}",
            "fix that name in the source (artists.csv, folder or file name); nothing was copied",
        )
    return dest


def _dedupe_names(found: list[Candidate]) -> tuple[list[Candidate], list[dict[str, str]]]:
    """One file per (artist, file name); images/ beats resized/ (never count a painting twice)."""
    kept: dict[str, Candidate] = {}
    skipped = []
    for cand in sorted(found, key=lambda c: (c.resized, c.rel)):
        first = kept.get(cand.dest)
        if first is None:
            kept[cand.dest] = cand
            continue
        why = "resized copy of" if cand.resized and not first.resized else "same artist and name as"
        skipped.append({"path": cand.rel, "reason": f"{why} {first.rel}"})
    return list(kept.values()), skipped


def _dedupe_hashes(kept: list[Candidate]) -> tuple[list[Candidate], list[dict[str, str]]]:
    """Same bytes twice for one label: keep the first. Across labels, validation decides."""
    seen: dict[tuple[str, str], Candidate] = {}
    out, skipped = [], []
    for cand in kept:
        k = (cand.label, str(cand.probe["sha256"]))
        if cand.probe["bytes"] and k in seen:
            skipped.append({"path": cand.rel, "reason": f"identical content to {seen[k].rel}"})
            continue
        seen.setdefault(k, cand)
        out.append(cand)
    return out, skipped


# ---- monet ----------------------------------------------------------------------------------


def _ingest_monet(dirs: dict[str, Path], wd: Workdir) -> dict | None:
    found: list[Candidate] = []
    for domain, folder in sorted(dirs.items()):
        dirname = next(k for k, v in MONET_DIRS.items() if v == domain)
        for path in _walk(folder):
            if path.suffix.lower() in IMAGE_EXTS:
                rel = f"{folder.name}/{path.relative_to(folder).as_posix()}"
                name = names.safe_component(names.clean(path.name), f"file {path.name!r}")
                dest = _inside(wd, f"raw/monet/{dirname}/{name}", f"file {path.name!r}")
                found.append(Candidate(path, rel, domain, dest))
    kept, skipped = _dedupe_names(found)
    _probe_all(kept)
    kept, skipped_hash = _dedupe_hashes(kept)
    _copy(kept, wd)
    _write_manifest(kept, wd.monet_manifest, "domain", MONET_COLUMNS)
    if not dirs:
        return None
    return {
        "layout": {d: str(p) for d, p in dirs.items()},
        "per_domain": dict(sorted(Counter(c.label for c in kept).items())),
        "duplicates_skipped": skipped + skipped_hash,
        "undecodable": sum(1 for c in kept if c.probe["error"]),
    }


# ---- probing, copying, writing --------------------------------------------------------------


def probe_bytes(data: bytes) -> dict[str, object]:
    """sha256, size and what Pillow really sees (format from content, not the extension)."""
    info: dict[str, object] = {
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
        "width": None,
        "height": None,
        "mode": "",
        "format": "",
        "error": "",
    }
    if not data:
        info["error"] = "empty file (0 bytes)"
        return info
    try:
        img = open_image(data)
    except DataError as exc:
        info["error"] = exc.message.replace("uploaded image", "file")
        return info
    info.update(width=img.width, height=img.height, mode=img.mode, format=img.format or "")
    return info


def _probe_one(cand: Candidate) -> None:
    cand.probe = probe_bytes(cand.src.read_bytes())


def _probe_all(cands: list[Candidate]) -> None:
    # Pillow decodes with the GIL released, so threads use every core.
    with ThreadPoolExecutor() as pool:
        for _ in progress(pool.map(_probe_one, cands), len(cands), "probing images"):
            pass


def _copy(cands: list[Candidate], wd: Workdir) -> None:
    """Byte-for-byte copies (copyfile never re-encodes); the source is never written."""
    for cand in progress(cands, len(cands), "copying images"):
        target = wd.abs(_inside(wd, cand.dest, f"{cand.rel!r}"))  # again: raw/ may have changed
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(cand.src, target)


def _write_manifest(cands: list[Candidate], path: Path, label_col: str, columns: list[str]) -> None:
    rows = [{"path": c.dest, label_col: c.label, **c.probe, "source": c.rel} for c in cands]
    df = pd.DataFrame(rows, columns=columns).sort_values("path", kind="stable")
    for col in ("width", "height"):
        df[col] = df[col].astype("Int64")
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, index=False, encoding="utf-8")


def read_manifest(path: Path) -> pd.DataFrame:
    """Manifests as written by ingest (empty strings stay empty, sizes stay integers)."""
    if not path.is_file():
        raise DataError(f"{path} not found", "run `artflow data ingest` for this workdir first")
    df = pd.read_csv(
        path,
        dtype={"mode": str, "format": str, "error": str, "sha256": str},
        keep_default_na=False,
        na_values={"width": [""], "height": [""]},
    )
    for col in ("width", "height"):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype("Int64")
    return df
