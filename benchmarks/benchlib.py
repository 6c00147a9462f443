"""What every benchmark records beside its numbers: the machine and its load, and the JSON;
and what the serving benchmarks share: a registered test classifier, a `bentoml serve` of the
service started and stopped as a process group, a test JPEG.

Timings on a shared machine move with the load, so each result file carries the CPU model,
the core count, the load average before and after, and the accelerators TensorFlow saw.
"""

from __future__ import annotations

import io
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    """CPU, cores usable by this process, load average now, TF version and GPUs."""
    import tensorflow as tf

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": cpu_model(),
        "cores": cores,
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "tensorflow": tf.__version__,
        "gpus": [d.name for d in tf.config.list_physical_devices("GPU")],
    }


def describe(info: dict[str, Any]) -> str:
    gpus = ", ".join(info["gpus"]) or "no GPU"
    return (
        f"{info['cpu']}, {info['cores']} cores, {gpus}, TF {info['tensorflow']}, "
        f"load {info['load_avg_1m']}"
    )


def write_json(name: str, result: dict[str, Any], path: str | Path | None = None) -> Path:
    """Write `result` (plus the load average at the end) to `path` or results/<name>.json."""
    out = Path(path) if path else RESULTS / f"{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    result = {**result, "load_avg_1m_end": round(os.getloadavg()[0], 2)}
    out.write_text(json.dumps(result, indent=2) + "\n")
    return out


def register_model(labels: list[str], size: int, experiment: str) -> str:
    """An untrained CNN of `size` px registered as the classifier's champion (its speed is
    what the serving benchmarks measure, not its answers)."""
    from artflow.classify.cnn import build_cnn
    from artflow.classify.io import register_classifier
    from artflow.config import load_settings
    from artflow.registry import tracking

    model = build_cnn(len(labels), size, dense_units=256)
    with tracking.start_run(experiment, "bench-cnn", load_settings()):
        version = register_classifier(model, labels, size, "cnn", challenger=False).version
    tracking.set_alias(tracking.CLASSIFIER, tracking.CHAMPION, version)
    return version


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(tmp: Path, name: str, env: dict[str, str], cwd: Path) -> tuple[subprocess.Popen, str]:
    """`bentoml serve` of the service in its own process group, with its own BentoML home
    (BentoML clears its Prometheus files at start-up) and log; -> (process, URL) once ready."""
    import httpx

    from artflow.serve.launch import SERVICE, bentoml_exe

    port = free_port()
    full = {
        **os.environ,
        "BENTOML_HOME": str(tmp / f"bentoml-{name}"),
        "BENTOML_DO_NOT_TRACK": "true",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        **env,
    }
    full.pop("ARTFLOW_PROFILE", None)
    log = open(tmp / f"server-{name}.log", "wb")  # noqa: SIM115 - lives as long as the server
    proc = subprocess.Popen(
        [bentoml_exe(), "serve", SERVICE, "--host", "127.0.0.1", "--port", str(port)],
        cwd=cwd,
        env=full,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"server {name} exited: see {log.name}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    stop(proc)
    sys.exit(f"server {name} not ready after 300 s: see {log.name}")


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL what is left: the group and the workers, which BentoML's process
    manager starts in sessions of their own (out of the group's reach)."""
    import psutil

    below = psutil.Process(proc.pid).children(recursive=True) if proc.poll() is None else []
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    for child in psutil.wait_procs(below, timeout=10)[1]:
        child.kill()


def jpeg() -> bytes:
    """A 256 px noise JPEG: the same test image in every serving benchmark."""
    import numpy as np
    from PIL import Image

    arr = np.random.default_rng(0).integers(0, 256, (256, 256, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def latency_summary(ms: list[float]) -> dict[str, float]:
    """Count, p50 and p90 of request latencies in milliseconds."""
    ordered = sorted(ms)
    return {
        "n": len(ms),
        "p50_ms": round(statistics.median(ordered), 2),
        "p90_ms": round(ordered[int(0.9 * (len(ordered) - 1))], 2),
    }
