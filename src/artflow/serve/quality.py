"""Sampled quality scores of served stylizations and Monet paintings, off the request path.

A share of the answers (`serve.quality_sample`; 0 switches scoring off) is scored with the
gate's own measures (artflow.style.metrics): content_loss, style_loss and ssim for /stylize
(label `method`: fast or gatys), monet_distance (to the Monet set's statistics that travel
with the generator's version) with content_loss and ssim against the photo for /monet.

The request only draws the sample and offers the images to a bounded queue: when the queue
is full the sample is dropped and counted, never waited for. One feeder thread shrinks the
images to the metric size and hands them, one at a time, to a worker process of its own
(artflow.serve.quality_worker) that runs at the lowest CPU priority (nice 19, SCHED_IDLE) with
TensorFlow single-threaded: on 2 cores a scoring thread inside the service would share
TensorFlow's thread pool with the requests and slow them (benchmarks/bench_quality.py).
The feeder stores the scores beside their answer (`ServingStore.style_score`) and observes
them in `artflow_style_quality{endpoint, model_version, measure}`.
"""

from __future__ import annotations

import logging
import os
import pickle
import queue
import random
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from typing import IO, Any

import numpy as np

from artflow.serve.quality_pause import PAUSE
from artflow.serve.store import ServingStore, StoreUnavailable

log = logging.getLogger(__name__)

# A measure spans orders of magnitude between a good and a broken model (and between
# weights none and imagenet): log-spaced buckets over 1e-3 .. 1e6.
BUCKETS = tuple(10.0 ** (e / 2) for e in range(-6, 13))
WORKER_TIMEOUT_S = 120.0  # a score taking longer means the worker is stuck: restart it


@dataclass
class Sample:
    """One answer to score: its images (uint8 HxWx3) and what labels its scores."""

    answer_id: str
    endpoint: str  # stylize | monet
    model_name: str
    model_version: str
    method: str  # fast | gatys | cyclegan
    result: np.ndarray
    content: np.ndarray
    style: np.ndarray | None = None  # None for /monet
    reference: dict[str, Any] | None = None  # the Monet statistics, for /monet


@dataclass
class Counts:
    scored: int = 0
    dropped: int = 0  # the queue was full
    failed: int = 0
    max_queued: int = 0


@dataclass
class QualityScorer:
    """Draws the sample, queues it (bounded), scores it in the worker process, stores it."""

    store: ServingStore
    share: float
    weights: str = "none"  # the metric extractor's weights, as the gate's (nst.weights)
    queue_size: int = 8
    seed: int | None = None
    counts: Counts = field(default_factory=Counts)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._queue: queue.Queue[Sample] = queue.Queue(maxsize=self.queue_size)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._worker: subprocess.Popen | None = None

    @property
    def enabled(self) -> bool:
        return self.share > 0

    def wanted(self) -> bool:
        """Draw one answer's sample (cheap: on the request path)."""
        return self.enabled and self._rng.random() < self.share

    def offer(self, sample: Sample) -> bool:
        """Queue `sample` for scoring; False (counted as dropped) when the queue is full."""
        try:
            self._queue.put_nowait(sample)
        except queue.Full:
            self._count("dropped", sample.endpoint)
            return False
        with self._lock:
            self.counts.max_queued = max(self.counts.max_queued, self._queue.qsize())
        self._start()
        return True

    def describe(self) -> dict[str, Any]:
        worker = self._worker
        return {
            "share": self.share,
            "queued": self._queue.qsize(),
            "queue_size": self.queue_size,
            **vars(self.counts),
            "worker_pid": worker.pid if worker is not None and worker.poll() is None else None,
            "worker_paused_s": round(PAUSE.paused_s, 1),
        }

    # ------------------------------------------------------------------ the feeder thread
    def _start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._feed, name="artflow-quality", daemon=True
                )
                self._thread.start()

    def _feed(self) -> None:
        while True:
            sample = self._queue.get()
            try:
                scores = self._score(sample)
            except Exception:  # a broken worker must not stop the feeder: restart it
                log.exception("artflow: scoring answer %s failed", sample.answer_id)
                self._stop_worker()
                self._count("failed", sample.endpoint)
                continue
            self._publish(sample, scores)

    def _score(self, sample: Sample) -> dict[str, float]:
        from artflow.style.images import resize
        from artflow.style.metrics import METRIC_SIZE

        def small(x: np.ndarray | None) -> np.ndarray | None:
            return None if x is None else resize(x, METRIC_SIZE, METRIC_SIZE)

        job = {
            "result": small(sample.result),
            "content": small(sample.content),
            "style": small(sample.style),
            "reference": sample.reference,
        }
        sample.result = sample.content = sample.style = None  # type: ignore[assignment]
        worker = self._ensure_worker()
        assert worker.stdin is not None and worker.stdout is not None
        pickle.dump(job, worker.stdin, protocol=pickle.HIGHEST_PROTOCOL)
        worker.stdin.flush()
        answer = _read_with_timeout(worker.stdout, WORKER_TIMEOUT_S)
        if "error" in answer:
            raise RuntimeError(answer["error"])
        return answer["scores"]

    def _publish(self, sample: Sample, scores: dict[str, float]) -> None:
        # /metrics first: whoever sees the stored row then also finds it in the histogram
        histogram = quality_metrics()["quality"]
        for measure, value in scores.items():
            histogram.labels(
                endpoint=sample.endpoint, model_version=sample.model_version, measure=measure
            ).observe(value)
        self._count("scored", sample.endpoint)
        try:
            self.store.style_score(sample.answer_id, scores)
        except StoreUnavailable as exc:  # the histogram has it; the row stays unscored
            log.warning("artflow: quality scores of %s not stored: %s", sample.answer_id, exc)

    def _count(self, outcome: str, endpoint: str) -> None:
        with self._lock:
            setattr(self.counts, outcome, getattr(self.counts, outcome) + 1)
        quality_metrics()["samples"].labels(endpoint=endpoint, outcome=outcome).inc()

    # ------------------------------------------------------------------ the worker process
    def _ensure_worker(self) -> subprocess.Popen:
        if self._worker is not None and self._worker.poll() is None:
            return self._worker
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "OMP_NUM_THREADS": "1"}
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # the worker exports nothing itself
        self._worker = subprocess.Popen(
            [sys.executable, "-m", "artflow.serve.quality_worker", self.weights],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        log.info("artflow: quality worker started (pid %s)", self._worker.pid)
        PAUSE.attach(self._worker.pid)  # frozen while requests are answered
        return self._worker

    def _stop_worker(self) -> None:
        worker, self._worker = self._worker, None
        PAUSE.attach(None)
        if worker is not None and worker.poll() is None:
            worker.kill()
            worker.wait(timeout=10)

    def close(self) -> None:
        self._stop_worker()


def _read_with_timeout(stream: IO[bytes], timeout_s: float) -> dict[str, Any]:
    """One pickled answer from the worker, or TimeoutError (it is then restarted) after
    `timeout_s` of waiting while it was not frozen (artflow.serve.quality_pause)."""
    import select

    waited = 0.0
    while waited < timeout_s:
        ready, _, _ = select.select([stream], [], [], 1.0)
        if ready:
            return pickle.load(stream)
        if not PAUSE.paused:
            waited += 1.0
    raise TimeoutError(f"the quality worker gave no answer in {timeout_s:g} s")


_METRICS: dict[str, Any] = {}


def quality_metrics() -> dict[str, Any]:
    """Built on first use, after BentoML set PROMETHEUS_MULTIPROC_DIR (artflow.serve.metrics)."""
    if not _METRICS:
        from prometheus_client import Counter, Gauge, Histogram

        _METRICS["quality"] = Histogram(
            "artflow_style_quality",
            "Quality scores of sampled /stylize and /monet answers (serve.quality_sample), the "
            "gate's measures (artflow.style.metrics): content_loss, style_loss, ssim, "
            "monet_distance; by endpoint, model version and measure.",
            ["endpoint", "model_version", "measure"],
            buckets=BUCKETS,
        )
        _METRICS["samples"] = Counter(
            "artflow_quality_samples",
            "Sampled answers by outcome: scored, dropped (the scoring queue was full), failed.",
            ["endpoint", "outcome"],
        )
        _METRICS["ratings"] = Gauge(
            "artflow_style_ratings",
            "User ratings (1..5) of stylizations and Monet paintings, from the serving store "
            "(all pods): their count n and mean, by endpoint and model version.",
            ["endpoint", "model_version", "stat"],
            multiprocess_mode="mostrecent",
        )
    return _METRICS
