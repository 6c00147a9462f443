"""Wait for a Kubeflow Pipelines run to finish; exit 0 only when it succeeded.

    python infra/scripts/kfp_wait.py --host "$KFP_HOST" --run-id RUN_ID [--timeout 21000]

`artflow pipeline submit` starts a run and returns; retrain.yml calls this next so that the
gate decision it then fetches belongs to the finished run. Uses kfp.Client's own waiting.
"""

from __future__ import annotations

import argparse
import sys
import urllib.request

DONE_OK = {"SUCCEEDED"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", required=True, help="Kubeflow Pipelines API URL")
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--timeout", type=int, default=21000, help="seconds (default 5 h 50)")
    args = parser.parse_args(argv)
    if not args.run_id.strip():
        print("error: empty --run-id (did `artflow pipeline submit` print one?)", file=sys.stderr)
        return 2

    try:
        # A plain probe first: kfp.Client retries a dead endpoint for a long while.
        urllib.request.urlopen(f"{args.host.rstrip('/')}/apis/v2beta1/healthz", timeout=10)
        import kfp

        client = kfp.Client(host=args.host)
        run = client.wait_for_run_completion(args.run_id, timeout=args.timeout, sleep_duration=30)
    except Exception as exc:  # kfp_server_api / urllib3 / TimeoutError: all end the wait
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        print(
            f"error: waiting for run {args.run_id} on {args.host}: {first[:300]}", file=sys.stderr
        )
        return 2
    state = str(getattr(run, "state", "UNKNOWN"))
    print(f"run {args.run_id}: {state}")
    return 0 if state in DONE_OK else 1


if __name__ == "__main__":
    sys.exit(main())
