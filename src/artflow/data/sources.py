"""Where the ingest step's data comes from: a local folder or zip, `kaggle://` (the
configured data sets, with the user's credentials) or `dvc://REPO?path=P&rev=R` (`dvc get`
from a DVC remote), and what identifies a source's content cheaply."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from artflow.config import Settings
from artflow.errors import ConfigError, DataError


def fetch(source: str, settings: Settings) -> Any:
    """A local folder/zip (or, for `kaggle://`, a list of them) holding `source`'s data."""
    if source.startswith("kaggle://"):
        from artflow.data.kaggle import download

        fetched = Path(tempfile.mkdtemp(prefix="artflow-kaggle-"))
        slugs = [settings.data.kaggle_artworks, settings.data.kaggle_monet]
        return [download(slug, fetched / slug.replace("/", "_")) for slug in slugs]
    return fetch_source(source, Path(tempfile.mkdtemp(prefix="artflow-source-")))


def fetch_source(source: str, dest: Path) -> str | Path:
    """A local folder/zip for `source`: a path as it is, or
    `dvc://REPO?path=P&rev=R[&remote=NAME][&endpointurl=URL]` fetched into `dest`."""
    if not source.startswith("dvc://"):
        return source
    from dvc.repo import Repo

    query = {k: v[-1] for k, v in parse_qs(urlsplit(source).query).items()}
    repo = source[len("dvc://") :].split("?", 1)[0]
    if not repo or "path" not in query:
        raise ConfigError(
            f"DVC source {source!r} needs a repository and a path",
            "e.g. dvc:///srv/artflow-data?path=data/demo_source&rev=v1",
        )
    out = dest / Path(query["path"]).name
    endpoint = {"endpointurl": query["endpointurl"]} if query.get("endpointurl") else None
    try:  # `dvc get`: the data at that revision, from the repository's remote
        Repo.get(
            repo,
            query["path"],
            out=str(out),
            rev=query.get("rev") or None,
            remote=query.get("remote") or None,
            remote_config=endpoint,
        )
    except Exception as exc:  # dvc raises many types (SCM, remote, path); all mean the same
        raise DataError(
            f"dvc get {repo} {query['path']} failed: {str(exc).strip()[-500:]}",
            "check the repository, rev, path and the remote's credentials (AWS_* variables)",
        ) from None
    return out


def source_key(source: str) -> str:
    """What identifies a source's content: a local tree's digest, else the URL (a DVC rev pins
    content; pin a commit rather than a branch)."""
    return tree_digest(source) if Path(source).exists() else source


def tree_digest(root: str | Path) -> str:
    """Digest of a source folder or zip: relative paths and contents. Contents, not times: the
    demo generator rewrites the same bytes on every `make demo`, which must not re-run the
    pipelines (reading the demo data takes well under a second; the full data set seconds)."""
    digest = hashlib.sha256()
    root = Path(root)
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    for path in files:
        digest.update(f"{path.relative_to(root) if path != root else path.name}\n".encode())
        with path.open("rb") as handle:
            digest.update(hashlib.file_digest(handle, "sha256").digest())
    return digest.hexdigest()
