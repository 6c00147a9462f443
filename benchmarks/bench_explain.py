"""What an explanation costs beside a plain /classify, and plain /classify before and after.

    .venv/bin/python benchmarks/bench_explain.py [--requests 40] [--size 224] [--before REV]

Registers one untrained CNN (`--size` px; the cost does not depend on the weights) as champion
in a throw-away MLflow store and starts, side by side, two `bentoml serve`: the service of
this working tree and the one of `--before` (default: the commit before /classify became a
BentoML API and learnt `explain`, checked out into a temporary git worktree and imported
through PYTHONPATH). Then, in alternating slices (so the machine's background load hits all
alike), one sequential client posts a 256 px JPEG:

* plain /classify to the `--before` service (the baseline),
* plain /classify to this service,
* /classify explain=true to this service (Grad-CAM on top of the same answer),
* plain /classify to this service while another client keeps asking for explanations (plain
  requests must not wait for them: explanations run off the batching queue, bounded).

Prints p50/p90 per mode, writes benchmarks/results/bench_explain.json with the machine and its
load, and ends with the ratios: explain / plain (the explanation's cost) and plain now /
plain before (goal: not above ~1).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import benchlib  # noqa: E402  (beside this script, whose folder Python puts first on the path)
import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
LABELS = [f"Artist_{i}" for i in range(11)]
BEFORE = "a7e319d"  # main just before /classify became a BentoML API with `explain`


def register_model(size: int) -> str:
    return benchlib.register_model(LABELS, size, "artflow-bench-explain")


def start(tmp: Path, name: str, src: Path | None) -> tuple[subprocess.Popen, str]:
    """`bentoml serve` of this tree (src None) or of another checkout's src/ folder."""

    tree = src.parent if src is not None else ROOT  # each version with its own settings
    raw = yaml.safe_load((tree / "params.yaml").read_text())
    raw["serve"].update(challenger_weight=0.0)
    params = tmp / f"params-{name}.yaml"
    params.write_text(yaml.safe_dump(raw))
    env = {
        "ARTFLOW_PARAMS": str(params),
        "ARTFLOW_PREDICTION_LOG": str(tmp / f"pred-{name}"),
    }
    if src is not None:  # the other checkout's package first: the service is imported from it
        env["PYTHONPATH"] = str(src)
    return benchlib.serve(tmp, name, env, tree)


stop = benchlib.stop
jpeg = benchlib.jpeg


def timed(client: httpx.Client, body: bytes, n: int, explain: bool = False) -> list[float]:
    out = []
    data = {"explain": "true"} if explain else None
    for _ in range(n):
        started = time.perf_counter()
        r = client.post("/classify", files={"image": ("p.jpg", body, "image/jpeg")}, data=data)
        out.append((time.perf_counter() - started) * 1000)
        if r.status_code != 200 or (explain and "explanation" not in r.json()):
            sys.exit(f"/classify answered {r.status_code}: {r.text[:300]}")
    return out


def explaining(url: str, body: bytes, stop_flag: threading.Event) -> None:
    """Another client asking for explanations back to back, until told to stop."""
    with httpx.Client(base_url=url, timeout=120) as client:
        while not stop_flag.is_set():
            client.post(
                "/classify",
                files={"image": ("p.jpg", body, "image/jpeg")},
                data={"explain": "true"},
            )


def checkout(rev: str, tmp: Path) -> Path:
    path = tmp / "before"
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), rev],
        check=True,
        capture_output=True,
    )
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=40, help="per mode and round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--before", default=BEFORE, help="git revision of the baseline")
    args = parser.parse_args()
    info = benchlib.machine()
    print(f"machine: {benchlib.describe(info)}")
    body = jpeg()
    modes = ("before_plain", "plain", "explain", "plain_beside_explanations")
    times: dict[str, list[float]] = {m: [] for m in modes}
    with tempfile.TemporaryDirectory(prefix="artflow-bench-explain-") as tmp_name:
        tmp = Path(tmp_name)
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp / 'mlflow.db'}"
        os.environ["ARTFLOW_ARTIFACT_ROOT"] = (tmp / "artifacts").as_uri()
        version = register_model(args.size)
        print(f"champion v{version}: CNN {args.size}px; baseline {args.before}")
        before_tree = checkout(args.before, tmp)
        servers = {}
        try:
            servers["before"] = start(tmp, "before", before_tree / "src")
            servers["now"] = start(tmp, "now", None)
            before_url, now_url = servers["before"][1], servers["now"][1]
            old_paths = httpx.get(f"{before_url}/docs.json", timeout=30).json()["paths"]
            if "/classify" in old_paths:  # the baseline must really be the old service
                sys.exit(f"{args.before} already serves /classify as an API: pick an older one")
            with (
                httpx.Client(base_url=before_url, timeout=120) as before,
                httpx.Client(base_url=now_url, timeout=120) as now,
            ):
                timed(before, body, 5)  # warm-up: first batches, traced functions
                timed(now, body, 5)
                timed(now, body, 3, explain=True)
                for _ in range(args.rounds):
                    times["before_plain"] += timed(before, body, args.requests)
                    times["plain"] += timed(now, body, args.requests)
                    times["explain"] += timed(now, body, args.requests, explain=True)
                    flag = threading.Event()
                    other = threading.Thread(target=explaining, args=(now_url, body, flag))
                    other.start()
                    time.sleep(0.5)
                    times["plain_beside_explanations"] += timed(now, body, args.requests)
                    flag.set()
                    other.join()
        finally:
            for proc, _ in servers.values():
                stop(proc)
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(before_tree)],
                capture_output=True,
            )
    result = {"machine": info, "size": args.size, "before": args.before}
    for mode in modes:
        result[mode] = benchlib.latency_summary(times[mode])
        print(
            f"{mode:28s} p50 {result[mode]['p50_ms']:7.1f} ms  p90 {result[mode]['p90_ms']:7.1f} ms"
        )
    out = benchlib.write_json("bench_explain", result)
    print(f"wrote {out}")
    plain, explain = result["plain"]["p50_ms"], result["explain"]["p50_ms"]
    print(f"explanation cost: explain / plain p50 = {explain / plain:.2f}x")
    beside = result["plain_beside_explanations"]["p50_ms"] / plain
    print(f"plain /classify beside explanations / alone, p50: {beside:.2f}x")
    then = result["before_plain"]["p50_ms"]
    print(f"plain /classify now / before ({args.before}), p50: {plain / then:.2f}x")


if __name__ == "__main__":
    main()
