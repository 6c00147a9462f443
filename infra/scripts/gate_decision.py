"""Fetch the gate decision of one pipeline run on a model from MLflow, as the pipeline left it.

    python infra/scripts/gate_decision.py --model artflow-artist-classifier \
        --tag artflow.pipeline_run=KFP_RUN_ID --retrain-run GITHUB_RUN_ID --out build/retrain

The gate run (experiment `artflow-gate`) is found by a tag its pipeline run put on every
MLflow run of its steps: `artflow.pipeline_run` (the Kubeflow run id, see components/common.py)
or `artflow.retrain_run` (retrain.yml's run id, through ARTFLOW_RUN_TAGS for a local run).
Never "the newest": a decision of another pipeline run (a drift-triggered one, a run by
hand) has another tag. --since is an extra guard (start time, ISO, UTC).

Writes OUT/decision.json and OUT/decision.md (the gate run's own artifacts, plus
`retrain_run` and `gate_run`, which promote.yml checks) and prints `passed=...`,
`promoted=...`, `version=...`, `previous=...` lines for $GITHUB_OUTPUT, each value checked
to be what it says (a boolean, a version number). `promoted` is read from the registry (the
champion alias now points at the candidate), not from the decision file, which is logged
before the alias moves. With no matching decision (the pipeline's drift step found nothing
to retrain, or the candidate already was the champion) it writes a decision saying so,
passed=false.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import sys
from pathlib import Path

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # clean CI logs

TAG = re.compile(r"^(?P<key>artflow\.[a-z_]+)=(?P<value>[0-9A-Za-z._-]{1,64})$")
VERSION = re.compile(r"^[0-9]*$")


def parse_tag(text: str) -> tuple[str, str]:
    m = TAG.match(text)
    if not m:
        raise argparse.ArgumentTypeError(f"--tag wants artflow.KEY=ID, got {text!r}")
    return m["key"], m["value"]


def decision_runs(model: str, tag: tuple[str, str] | None, since_ms: int):
    from mlflow.tracking import MlflowClient

    from artflow.promote import GATE_EXPERIMENT
    from artflow.registry import tracking

    # artflow's own resolution: MLFLOW_TRACKING_URI, else the project's sqlite store.
    client = MlflowClient(tracking_uri=tracking.tracking_uri())
    experiment = client.get_experiment_by_name(GATE_EXPERIMENT)
    if experiment is None:
        return client, []
    query = f"params.model = '{model}' and attributes.start_time >= {since_ms}"
    if tag is not None:
        query += f" and tags.`{tag[0]}` = '{tag[1]}'"
    runs = client.search_runs(
        [experiment.experiment_id], filter_string=query, order_by=["attributes.start_time DESC"]
    )
    return client, runs


def _champion(model: str) -> str:
    from artflow.registry import tracking

    registered = tracking.registered(model)  # None: never registered; outage: raises
    return str(registered.aliases.get(tracking.CHAMPION, "")) if registered else ""


def _pick(runs, champion: str):
    """One pipeline run may gate more than one candidate (two families): the one now
    champion is its outcome; else its newest decision."""
    for run in runs:
        if run.data.params.get("candidate") == champion:
            return run
    return runs[0] if runs else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--tag", type=parse_tag, help="artflow.pipeline_run=ID or similar")
    parser.add_argument("--retrain-run", default="", help="the workflow run id, recorded")
    parser.add_argument("--since", default="1970-01-01T00:00:00Z", help="ISO time (UTC)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    since = dt.datetime.fromisoformat(args.since.replace("Z", "+00:00"))
    client, runs = decision_runs(args.model, args.tag, int(since.timestamp() * 1000))
    champion = _champion(args.model)
    run = _pick(runs, champion)
    args.out.mkdir(parents=True, exist_ok=True)
    which = f"{args.tag[0]}={args.tag[1]}" if args.tag else f"since {args.since}"
    if run is None:
        reason = f"no gate decision on {args.model} ({which}): nothing was promoted"
        decision = {"model": args.model, "candidate": "", "champion": "", "passed": False}
        decision["reason"] = reason
        (args.out / "decision.md").write_text(f"### `{args.model}`\n\n{reason}\n")
    else:
        for name in ("decision.json", "decision.md"):
            client.download_artifacts(run.info.run_id, name, str(args.out))
        decision = json.loads((args.out / "decision.json").read_text())
        decision["gate_run"] = run.info.run_id
    return report(decision, champion, args)


def report(decision: dict, champion: str, args: argparse.Namespace) -> int:
    candidate = str(decision.get("candidate") or "")
    previous = str(decision.get("champion") or "")
    if not (VERSION.match(candidate) and VERSION.match(previous)):
        print(f"error: the decision's versions are not numbers: {candidate!r}", file=sys.stderr)
        return 2
    promoted = bool(decision["passed"]) and candidate != "" and candidate == champion
    decision["promoted"] = promoted
    decision["retrain_run"] = args.retrain_run
    (args.out / "decision.json").write_text(json.dumps(decision, indent=2))
    # The gate logs its Markdown before the alias moves ("promoted: no"): say what happened.
    with (args.out / "decision.md").open("a") as md:
        md.write(f"\n**registry now**: {'promoted to' if promoted else 'not'} champion\n")
    print(f"passed={str(bool(decision['passed'])).lower()}")
    print(f"promoted={str(promoted).lower()}")
    print(f"version={candidate}")
    print(f"previous={previous}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
