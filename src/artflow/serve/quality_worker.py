"""The quality scorer's worker process: `python -m artflow.serve.quality_worker WEIGHTS`.

Started by artflow.serve.quality, one per service process. It lowers its own priority to
nice 19 and the idle scheduling class (SCHED_IDLE) and runs TensorFlow on one thread before
anything else, so on a busy pod it only gets the CPU the requests leave. It reads pickled
jobs from stdin (from its parent only) and writes one pickled answer per job to stdout:
{"scores": {...}} or {"error": "..."}. End of input (the parent closed or died) ends it.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import sys
from typing import Any


def score(job: dict[str, Any], weights: str) -> dict[str, float]:
    from artflow.style.metrics import monet_distance, style_metrics

    result, content, style = job["result"], job["content"], job["style"]
    if style is not None:  # /stylize: the gate's three measures
        return style_metrics(result, content, style, weights)
    # /monet: content preservation against the photo, and the distance to the Monet set
    measures = style_metrics(result, content, content, weights)
    scores = {"content_loss": measures["content_loss"], "ssim": measures["ssim"]}
    if job.get("reference"):
        scores["monet_distance"] = monet_distance(result, job["reference"])
    return scores


def main(weights: str) -> None:
    _die_with_parent()
    os.nice(19)
    # SCHED_IDLE: the CPU only when no other task wants it, weaker than nice 19 (which still
    # takes ~1.5% beside a busy task and more on an oversubscribed machine)
    with contextlib.suppress(AttributeError, OSError):  # not Linux: nice 19 alone
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # stray prints (TensorFlow's, Keras') go to stderr, not into the answers
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    source = sys.stdin.buffer
    while True:
        try:
            job = pickle.load(source)
        except EOFError:
            return
        try:
            answer: dict[str, Any] = {"scores": score(job, weights)}
        except Exception as exc:  # noqa: BLE001 - reported to the parent, which counts it
            answer = {"error": f"{type(exc).__name__}: {exc}"}
        pickle.dump(answer, out, protocol=pickle.HIGHEST_PROTOCOL)
        out.flush()
        _release_freed_memory()


def _die_with_parent() -> None:
    """SIGKILL this process when the thread that started it ends (its service process exits,
    is killed, or stops): a worker busy importing TensorFlow would not see its input close."""
    import ctypes
    import signal

    pr_set_pdeathsig = 1
    with contextlib.suppress(OSError, AttributeError):  # not Linux: the closed input ends it
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() == 1:  # the parent died before prctl took effect
        sys.exit(0)


def _release_freed_memory() -> None:
    """glibc keeps freed heap pages (the seeded VGG19's initial weights, each job's tensors)
    for reuse; hand them back, so the worker's resident memory stays what it uses."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to trim
        ctypes.CDLL("libc.so.6").malloc_trim(0)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "none")
