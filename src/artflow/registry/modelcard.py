"""Model cards: what a registered version is, what it was trained on and how far to trust it.

`write_model_card(name, version)` renders the card from the registry and the version's run
(lineage tags, params, metrics, the gate's decision when there is one), logs it as
`model_card.md` and puts it in the version's description, where the MLflow UI shows it.
Training calls it after registering (the card on the training run); the gate calls it again
after deciding (the card with the decision on the gate's own run).
"""

from __future__ import annotations

from typing import Any

from artflow import families
from artflow.registry import tracking
from artflow.registry.views import (
    CLASSIFIER_METRICS,
    STYLE_METRICS,
    is_style_model,
    resolve_version,
)

CARD_FILE = "model_card.md"
MAX_PARAMS = 40  # the card is for people: the full settings stay in the run's settings.json


def render(name: str, mv: Any, run: Any | None, decision: dict[str, Any] | None = None) -> str:
    tags = dict(mv.tags or {})
    run_tags = dict(run.data.tags) if run else {}
    metrics = dict(run.data.metrics) if run else {}
    params = dict(run.data.params) if run else {}
    declared = families.model(name)
    wanted = STYLE_METRICS if is_style_model(name) else CLASSIFIER_METRICS
    headline = {k: v for k, v in metrics.items() if k in wanted}
    lines = [
        f"# Model card: {name} v{mv.version}",
        "",
        f"- family: `{tags.get('family') or tags.get('method') or '-'}`",
        f"- run: `{mv.run_id or '-'}`",
        "",
        "## Data version",
        f"- data hash (md5 of the split files, as DVC): `{run_tags.get('artflow.data_hash', '-')}`",
        f"- git commit: `{run_tags.get('artflow.git_commit', '-')}`",
        f"- profile: `{run_tags.get('artflow.profile', '-')}`",
    ]
    if "labels" in tags:
        lines.append(f"- labels: {tags['labels']}")
    lines += ["", "## Metrics", *_kv(headline or metrics), "", "## Parameters"]
    lines += _kv(dict(list(sorted(params.items()))[:MAX_PARAMS]))
    use = (declared.intended_use if declared else "") or "See the project README."
    limits = declared.limitations if declared else ()
    lines += ["", "## Intended use", use, ""]
    lines += ["## Limitations", *[f"- {item}" for item in limits], ""]
    if decision:
        verdict = "passed" if decision.get("passed") else "refused"
        lines += ["## Promotion gate", f"- {verdict}: {decision.get('reason', '')}", ""]
    return "\n".join(lines)


def _kv(values: dict[str, Any]) -> list[str]:
    if not values:
        return ["- (none recorded)"]
    return [f"- {k}: {_num(v)}" for k, v in sorted(values.items())]


def _num(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def write_model_card(
    name: str,
    version: str | int,
    decision: dict[str, Any] | None = None,
    log_to: str | None = None,
) -> str:
    """Render the card, log it on a run and set it as the version description. The run is
    the version's own (training's), or `log_to`: the gate logs the card with its decision on
    its own run, because the gate identity may not write into the pipeline's runs."""
    mv = resolve_version(name, str(version))
    client = tracking.client()
    run = tracking.get_run(mv.run_id) if mv.run_id else None  # None: the run was deleted
    card = render(name, mv, run, decision)
    if target := log_to or (mv.run_id if run is not None else None):
        tracking._retry(lambda: client.log_text(target, card, CARD_FILE))
    tracking._retry(lambda: client.update_model_version(name, str(mv.version), description=card))
    return card
