"""The best Gatys settings per backbone, as versions of a registered model.

The style pipeline's Gatys search registers the winning settings (a small JSON file, no
weights) as a version of `artflow-gatys-settings` with the alias `best-<backbone>-<weights>`;
the CLI and the service start from that version and fall back to the backbone's preset in
params.yaml (`nst.presets.<backbone>`) while none is registered. Registering rather than
only logging gives the settings what the models have: versions, an alias that moves only
when a search finishes, and the search run each version came from.
"""

from __future__ import annotations

import json
import logging
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from artflow import families
from artflow.config import NstCfg
from artflow.fallback import Resolved

log = logging.getLogger(__name__)

REGISTERED = families.GATYS_SETTINGS  # declared in artflow.families
FILE = "gatys_settings.json"
# The keys a search changes; everything else (size, steps, weights) stays the caller's.
SEARCHED = ("learning_rate", "content_weight", "style_weight", "style_layer_weights", "tv_weight")


def alias(backbone: str, weights: str) -> str:
    """`best-vgg19-imagenet`; a weights file is named by its stem (settings depend on it)."""
    kind = weights if weights in {"imagenet", "none"} else Path(weights).stem
    return "best-" + re.sub(r"[^A-Za-z0-9_-]+", "_", f"{backbone}-{kind}")


@dataclass(frozen=True)
class Registered:
    cfg: NstCfg  # the nst section for that backbone with the registered values applied
    version: str | None  # None: the preset from params.yaml
    values: dict[str, Any]

    @property
    def label(self) -> str:
        source = f"v{self.version}" if self.version else "preset"
        return f"gatys-{self.cfg.backbone}-{source}"


def register_best(cfg: NstCfg, run_id: str, score: float) -> str:
    """Log `cfg`'s searched values to `run_id` and register them; moves the alias. -> version."""
    from artflow.registry import tracking

    client = tracking.client()
    values = {k: getattr(cfg, k) for k in (*SEARCHED, "pixel_range")}
    body = {"backbone": cfg.backbone, "weights": cfg.weights, "values": values, "score": score}
    folder = f"gatys_settings/{cfg.backbone}"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / FILE
        path.write_text(json.dumps(body, indent=2) + "\n")
        tracking._retry(lambda: client.log_artifact(run_id, str(path), folder))
    if tracking.registered(REGISTERED) is None:
        client.create_registered_model(
            REGISTERED, description="Best Gatys NST settings per backbone (the Gatys search)"
        )
    source = f"{client.get_run(run_id).info.artifact_uri}/{folder}"
    tags = {"backbone": cfg.backbone, "weights": cfg.weights, "score": f"{score:.6g}"}
    mv = client.create_model_version(REGISTERED, source, run_id=run_id, tags=tags)
    tracking.set_alias(REGISTERED, alias(cfg.backbone, cfg.weights), mv.version)  # locked
    log.info("registered Gatys settings %s v%s for %s", REGISTERED, mv.version, cfg.backbone)
    return str(mv.version)


def resolve(nst: NstCfg, backbone: str | None = None) -> Registered:
    """The backbone's settings: the registered best when there is one, else the preset."""
    import mlflow

    from artflow.registry import tracking

    cfg = nst.for_backbone(backbone)
    mv = tracking.alias_version(REGISTERED, alias(cfg.backbone, cfg.weights))
    if mv is None:
        return Registered(cfg=cfg, version=None, values={})
    local = mlflow.artifacts.download_artifacts(
        artifact_uri=f"{mv.source}/{FILE}", tracking_uri=tracking.tracking_uri()
    )
    values = json.loads(Path(local).read_text())["values"]
    return Registered(cfg=cfg.model_copy(update=values), version=str(mv.version), values=values)


class SettingsCache:
    """The service's view: resolved once per backbone, again after `clear()` (admin reload).
    While the registry cannot be asked, the backbone's preset serves (one warning line) and
    the registry is asked again after `retry_s`."""

    def __init__(self, nst: NstCfg, retry_s: float = 60.0) -> None:
        self.nst = nst
        self._resolved: Resolved[str, Registered] = Resolved("Gatys settings", retry_s)

    def get(self, backbone: str | None = None) -> Registered:
        name = backbone or self.nst.backbone
        preset = Registered(cfg=self.nst.for_backbone(name), version=None, values={})
        return self._resolved.get(
            name, lambda: resolve(self.nst, name), preset, f"the preset nst.presets.{name}"
        )

    def status(self) -> dict[str, Any]:
        """Per backbone asked so far: what serves, and why when it is the preset by fallback."""
        out: dict[str, Any] = {}
        for name in ("vgg19", "resnet50"):
            found, chosen = self._resolved.known(name)
            if found and chosen is not None:
                out[name] = {"uses": chosen.label, "version": chosen.version}
        for name, why in self._resolved.unresolved().items():
            out[name] = {"uses": f"gatys-{name}-preset", "version": None, "unresolved": why}
        return out

    def clear(self) -> None:
        self._resolved.clear()
