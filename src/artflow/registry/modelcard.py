"""Model cards: what a registered version is, what it was trained on and how far to trust it.

`write_model_card(name, version)` renders the card from the registry and the version's run
(lineage tags, params, metrics, the gate's decision when there is one), logs it as
`model_card.md` on that run and puts it in the version's description, where the MLflow UI
shows it. Training calls it after registering; the gate calls it again after deciding.
"""

from __future__ import annotations

from typing import Any

from artflow.registry import tracking
from artflow.registry.views import CLASSIFIER_METRICS, STYLE_METRICS, resolve_version

CARD_FILE = "model_card.md"
MAX_PARAMS = 40  # the card is for people: the full settings stay in the run's settings.json

INTENDED_USE = {
    tracking.CLASSIFIER: (
        "Attribute a painting to one of the artists it was trained on (the artists with "
        "enough paintings in the data version below). For browsing, teaching and triage."
    ),
    tracking.STYLIZER: (
        "Fast arbitrary style transfer (AdaIN): repaint a content image in the style of "
        "a given artwork, with a strength between 0 and 1. Creative use."
    ),
    tracking.CYCLEGAN: "Translate landscape photos into Monet-like paintings. Creative use.",
}
LIMITATIONS = {
    tracking.CLASSIFIER: [
        "Knows only the artists in its label list; any other painter is forced onto one of them.",
        "Not an authentication tool: never use it to decide provenance or value.",
        "Trained on web reproductions; photos of paintings, crops and frames shift its input.",
        "Accuracy is measured on a small frozen test split; per-artist recall varies.",
    ],
    tracking.STYLIZER: [
        "Style and content losses are proxies for what people find pleasing.",
        "Large inputs are resized; fine detail is lost.",
    ],
    tracking.CYCLEGAN: [
        "Trained on landscapes; people, text and indoor scenes come out distorted.",
        "Unpaired training: colours and textures change, geometry may too.",
    ],
}


def render(name: str, mv: Any, run: Any | None, decision: dict[str, Any] | None = None) -> str:
    tags = dict(mv.tags or {})
    run_tags = dict(run.data.tags) if run else {}
    metrics = dict(run.data.metrics) if run else {}
    params = dict(run.data.params) if run else {}
    wanted = STYLE_METRICS if name in (tracking.STYLIZER, tracking.CYCLEGAN) else CLASSIFIER_METRICS
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
    lines += ["", "## Intended use", INTENDED_USE.get(name, "See the project README."), ""]
    lines += ["## Limitations", *[f"- {item}" for item in LIMITATIONS.get(name, [])], ""]
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


def write_model_card(name: str, version: str | int, decision: dict[str, Any] | None = None) -> str:
    """Render the card, log it on the version's run and set it as the version description."""
    mv = resolve_version(name, str(version))
    client = tracking.client()
    run = tracking.get_run(mv.run_id) if mv.run_id else None  # None: the run was deleted
    card = render(name, mv, run, decision)
    if run is not None:
        tracking._retry(lambda: client.log_text(mv.run_id, card, CARD_FILE))
    tracking._retry(lambda: client.update_model_version(name, str(mv.version), description=card))
    return card
