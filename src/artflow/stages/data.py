"""The ingest step: a source into the `data` artifact folder."""

from __future__ import annotations

from typing import Any

from artflow.config import Settings
from artflow.data.layout import Workdir
from artflow.stages.folders import artifact_digest


def ingest(settings: Settings, source: str, data: Any, dest: Workdir) -> dict[str, Any]:
    """The source (folder, zip, `kaggle://`, `dvc://...`) into the `data` artifact folder;
    its metadata names the source and the content's digest."""
    from artflow.data.ingest import ingest as do_ingest
    from artflow.data.sources import fetch

    report = do_ingest(fetch(source, settings), dest, settings)
    data.metadata.update({"source": source, "content_hash": artifact_digest(dest.root)})
    return report
