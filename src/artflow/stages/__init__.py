"""Pipeline steps as orchestrator-neutral calls over artifact folders.

Kubeflow components (components/) are thin wrappers over these functions. A step reads only
its input artifact folders and parameters and writes everything later steps need into its
output artifact folders (the TFX / KFP v2 way), so on a cluster every step can be its own pod:

- `data` (Dataset): the ingested images with their manifests (`raw/`, `interim/`; every image's
  sha256 is in the manifest), written by `ingest` from the source parameter;
- `validation` (Dataset): `validation/` (summary, quarantine list, GX report);
- `splits` (Dataset): `splits/` (train/val/test and style CSVs, labels.json, class weights);
- models (Model): `model.json` (registry name, version, `models:/` URI, family) and
  `evaluation.json` (labels, confusion matrices); metadata carries the same.

Each artifact folder is a piece of one data-version layout (`artflow.data.layout.Workdir`), so a
step links its inputs into a fresh scratch folder and runs the library code on that.

By concern: `settings` (a step's entry), `run` (the choreography every component shares),
`folders` (scratch and exported folders), `reports` (kfp's report artifacts), `keys` (what a
step's cache key covers: its code and settings), `data`, `models`, `decisions` (the work).
Caching is kfp's own (docs/pipelines.md).
"""

from artflow.stages.data import ingest
from artflow.stages.decisions import champion_left, drift_check, gate
from artflow.stages.folders import artifact_digest, export, scratch
from artflow.stages.keys import ENV, STEPS, Step, code_digest, step, step_key
from artflow.stages.models import (
    gatys_search,
    novelty,
    publish_model,
    read_model,
    select_candidate,
    train,
    trained_versions,
    with_card,
)
from artflow.stages.reports import (
    copy_report,
    drift_markdown,
    gate_reports,
    log_confusion,
    log_metrics,
    seal,
    write_markdown,
)
from artflow.stages.run import SKIPPED, is_skipped, run, skip_outputs
from artflow.stages.settings import begin, is_overlay_file, settings_for

__all__ = [
    "ENV",
    "SKIPPED",
    "STEPS",
    "Step",
    "artifact_digest",
    "begin",
    "champion_left",
    "code_digest",
    "copy_report",
    "drift_check",
    "drift_markdown",
    "export",
    "gate",
    "gate_reports",
    "gatys_search",
    "ingest",
    "is_overlay_file",
    "is_skipped",
    "log_confusion",
    "log_metrics",
    "novelty",
    "publish_model",
    "read_model",
    "run",
    "scratch",
    "seal",
    "select_candidate",
    "settings_for",
    "skip_outputs",
    "step",
    "step_key",
    "trained_versions",
    "train",
    "with_card",
    "write_markdown",
]
