"""Artifact folders: a step's scratch data-version folder assembled from its inputs, the
parts it exports into its outputs, and a content digest of a folder."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from artflow.data.layout import Workdir


def scratch(name: str, *inputs: Any) -> Workdir:
    """A fresh data-version folder for one step with its input artifacts linked in: real
    folders, each input file a symlink, so whatever the step writes lands in the scratch
    folder and never in an input artifact."""
    root = Path(tempfile.mkdtemp(prefix=f"artflow-{name}-"))
    for artifact in inputs:
        folder = Path(artifact.path)
        if not folder.is_dir():
            continue
        for child in folder.iterdir():
            target = root / child.name
            if target.exists():
                continue
            if child.is_dir():
                shutil.copytree(child, target, symlinks=True, copy_function=_symlink)
            else:
                _symlink(child, target)
    return Workdir.at(root)


def _symlink(src: str | Path, dst: str | Path) -> None:
    os.symlink(Path(src).resolve(), dst)


def export(wd: Workdir, artifact: Any, parts: Iterable[str]) -> Path:
    """Copy the named top-level parts of a scratch folder into an output artifact folder."""
    out = Path(artifact.path)
    out.mkdir(parents=True, exist_ok=True)
    for part in parts:
        src = wd.root / part
        if src.is_dir():
            shutil.copytree(src, out / part, dirs_exist_ok=True)
        elif src.is_file():
            shutil.copy2(src, out / part)
    return out


_NOT_CONTENT = {"ingest_report.json"}  # names the source's path: the manifests say what came


def artifact_digest(path: str | Path) -> str:
    """sha256 over an artifact folder's files; images under raw/ are covered by the manifests
    (which carry each image's sha256), so they are not read again, and HTML reports (for
    people, with timestamps) do not count."""
    digest, root = hashlib.sha256(), Path(path)
    if root.is_file():
        return hashlib.sha256(root.read_bytes()).hexdigest()
    for file in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = file.relative_to(root)
        if (rel.parts[0] == "raw" and rel.name != "artists.csv") or rel.name in _NOT_CONTENT:
            continue
        if rel.suffix == ".html":
            continue
        digest.update(f"{rel.as_posix()}\n".encode())
        digest.update(hashlib.sha256(file.read_bytes()).digest())
    return digest.hexdigest()
