"""What every benchmark records beside its numbers: the machine and its load, and the JSON.

Timings on a shared machine move with the load, so each result file carries the CPU model,
the core count, the load average before and after, and the accelerators TensorFlow saw.
"""

from __future__ import annotations

import json
import os
import platform
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
