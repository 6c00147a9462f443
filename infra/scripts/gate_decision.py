"""Fetch the newest gate decision on a model from MLflow, as the retrain pipeline left it.

    python infra/scripts/gate_decision.py --model artflow-artist-classifier \
        --since 2026-01-01T03:00:00Z --out build/retrain

Writes OUT/decision.json and OUT/decision.md (the gate run's own artifacts, experiment
`artflow-gate`) and prints `passed=...`, `promoted=...`, `version=...`, `previous=...` lines
for $GITHUB_OUTPUT. `promoted` is read from the registry (the champion alias now points at
the candidate), not from the decision file, which is logged before the alias moves.
With no decision newer than --since (the pipeline's drift step found nothing to retrain, or
the candidate already was the champion) it writes a decision saying so, passed=false.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # clean CI logs


def newest_decision(model: str, since_ms: int):
    from mlflow.tracking import MlflowClient

    from artflow.promote import GATE_EXPERIMENT
    from artflow.registry import tracking

    # artflow's own resolution: MLFLOW_TRACKING_URI, else the project's sqlite store.
    client = MlflowClient(tracking_uri=tracking.tracking_uri())
    experiment = client.get_experiment_by_name(GATE_EXPERIMENT)
    if experiment is None:
        return client, None
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"params.model = '{model}' and attributes.start_time >= {since_ms}",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    return client, (runs[0] if runs else None)


def _champion(client, model: str) -> str:
    from artflow.registry import tracking

    registered = tracking.registered(model)  # None: never registered; outage: raises
    return str(registered.aliases.get(tracking.CHAMPION, "")) if registered else ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--since", default="1970-01-01T00:00:00Z", help="ISO time (UTC)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    since = dt.datetime.fromisoformat(args.since.replace("Z", "+00:00"))
    client, run = newest_decision(args.model, int(since.timestamp() * 1000))
    args.out.mkdir(parents=True, exist_ok=True)
    if run is None:
        reason = f"no gate decision on {args.model} since {args.since}: nothing was promoted"
        decision = {"model": args.model, "candidate": "", "champion": "", "passed": False}
        decision["reason"] = reason
        (args.out / "decision.md").write_text(f"### `{args.model}`\n\n{reason}\n")
    else:
        for name in ("decision.json", "decision.md"):
            client.download_artifacts(run.info.run_id, name, str(args.out))
        decision = json.loads((args.out / "decision.json").read_text())
    candidate = str(decision["candidate"])
    promoted = bool(decision["passed"]) and candidate == _champion(client, args.model)
    decision["promoted"] = promoted
    (args.out / "decision.json").write_text(json.dumps(decision, indent=2))
    # The gate logs its Markdown before the alias moves ("promoted: no"): say what happened.
    with (args.out / "decision.md").open("a") as md:
        md.write(f"\n**registry now**: {'promoted to' if promoted else 'not'} champion\n")
    print(f"passed={str(bool(decision['passed'])).lower()}")
    print(f"promoted={str(promoted).lower()}")
    print(f"version={candidate}")
    print(f"previous={decision.get('champion') or ''}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
