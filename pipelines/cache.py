"""What the local runner checks beyond kfp's own cache key, before a run.

kfp's local cache (`kfp.local.init(enable_caching=True, cache_root=...)`) keys a task by its
component, image, command, arguments and environment; each task's environment carries its
code and settings digest (artflow.stages.keys), and the ingest step's arguments the source's
fingerprint. Two things no key made before a run can know, because they live in the registry:

- a recorded task's model version may be gone (a fresh or different MLflow store at the same
  URI): the entry is forgotten, so the step trains and registers again;
- a recorded gate decision holds only while the champion is still what it left behind (after
  a rollback or a manual promotion the gate decides again).

Both are checked here, in the runner's process, so the steps stay free of the check.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from artflow.stages import champion_left

log = logging.getLogger("artflow.pipelines.cache")


def entries(cache_root: str | Path) -> Iterator[tuple[Path, dict[str, Any]]]:
    """(entry file, its outputs' artifacts' metadata by output name) of every entry."""
    for path in sorted(Path(cache_root).glob("*.json")):
        try:
            outputs = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        yield (
            path,
            {
                name: value.get("metadata") or {}
                for name, value in outputs.items()
                if isinstance(value, dict) and value.get("__kfp_artifact__")
            },
        )


def stale_reason(metadata: dict[str, dict[str, Any]]) -> str:
    """Why an entry with these output artifacts no longer holds ("" while it does)."""
    from artflow.registry import tracking

    for meta in metadata.values():
        name, version = meta.get("model_name"), str(meta.get("version") or "")
        if name and version and tracking.model_version(name, version) is None:
            return f"{name} v{version} is not in the registry"
        if meta.get("model") and "passed" in meta:  # a gate's report
            current = tracking.alias_version(meta["model"], "champion")
            now = str(current.version) if current else None
            if champion_left(meta) != now:
                return f"the champion of {meta['model']} moved since the gate decided"
    return ""


def prune(cache_root: str | Path) -> list[str]:
    """Forget the entries that no longer hold; returns why, one line each. A registry that
    cannot be asked raises (RegistryUnavailable): nothing is replayed on a guess."""
    pruned = []
    for path, metadata in entries(cache_root):
        reason = stale_reason(metadata)
        if reason:
            path.unlink(missing_ok=True)
            pruned.append(reason)
            log.info("cache: %s: its step will run again", reason)
    return pruned
