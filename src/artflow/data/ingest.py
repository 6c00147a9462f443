"""Copy a data set in the Kaggle layouts into a data version and describe every file.

The source (folder(s) or zip(s)) is only read. Anywhere inside it we look for
  artworks: artists.csv + images/<Artist_Name>/*.jpg (optionally resized/ copies)
  monet:    monet_jpg/ + photo_jpg/
and copy what we find to wd.raw_artworks / wd.raw_monet under canonical names, then write
wd.manifest, wd.monet_manifest and wd.ingest_report. Undecodable files are kept in the
manifest with an empty mode/format and the decode error, so validation can quarantine them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import shutil
import tempfile
import zipfile
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from artflow.config import Settings
from artflow.data import names
from artflow.data.layout import Workdir
from artflow.errors import DataError
from artflow.imageio import open_image
from artflow.progress import progress

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".gif", ".bmp", ".tif", ".tiff", ".webp"}
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
        roots = [_open_source(src, stack) for src in sources]
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


def _open_source(src: Path, stack: contextlib.ExitStack) -> Path:
    if src.is_dir():
        return src
    tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="artflow-ingest-")))
    _extract_zip(src, tmp)
    return tmp


def _extract_zip(archive: Path, dest: Path) -> None:
    """Extract safely (no absolute or ../ paths); names stay as the archive spells them."""
    try:
        with zipfile.ZipFile(archive) as zf:
            entries = zf.infolist()
            for info in progress(entries, len(entries), f"extracting {archive.name}"):
                parts = Path(info.filename).parts
                if info.is_dir() or Path(info.filename).is_absolute() or ".." in parts:
                    continue
                target = dest.joinpath(*parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as fin, target.open("wb") as fout:
                    shutil.copyfileobj(fin, fout)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"cannot read zip archive {archive}: {exc}") from None


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
        dest = f"raw/artworks/images/{names.folder_name(artist)}/{_dest_name(path, artist)}"
        found.append(Candidate(path, rel, artist, dest, resized))

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
        return f"{names.folder_name(artist)}_{m.group('num')}{path.suffix}"
    return f"{stem}{path.suffix}"


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
                dest = f"raw/monet/{dirname}/{names.clean(path.name)}"
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
        target = wd.abs(cand.dest)
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
