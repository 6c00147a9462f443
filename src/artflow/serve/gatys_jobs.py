"""Live progress and cancellation of the service's Gatys runs.

The page names its run with a random job id (`/stylize ... job=<id>`); while that request
is open it polls GET /gatys/progress?job=<id> (step, steps, losses) and may POST
/gatys/cancel?job=<id>. The service's per-step callback records the progress and stops the
run when a cancel was asked for, so the optimisation ends at the next step boundary and the
/stylize request answers 409. Polling rather than a server-sent-events stream: one short
GET per second works through every proxy and needs no open connection beside the request.
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

JOB_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


@dataclass
class Job:
    id: str
    steps: int
    backbone: str
    step: int = 0
    losses: dict[str, float] = field(default_factory=dict)
    state: str = "running"  # running | done | cancelled | failed
    started: float = field(default_factory=time.time)
    cancel_requested: threading.Event = field(default_factory=threading.Event, repr=False)

    def describe(self) -> dict[str, Any]:
        return {
            "job": self.id,
            "state": self.state,
            "step": self.step,
            "steps": self.steps,
            "backbone": self.backbone,
            "loss": self.losses.get("total"),
            "losses": self.losses,
            "seconds": round(time.time() - self.started, 2),
        }


class Jobs:
    """The last `keep` jobs of this worker (finished ones stay readable for a while)."""

    def __init__(self, keep: int = 64) -> None:
        self.keep = keep
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.Lock()

    def start(self, job_id: str, steps: int, backbone: str) -> Job:
        if not JOB_ID.match(job_id):
            raise ValueError("job must be 8-64 letters, digits, '-' or '_'")
        with self._lock:
            if job_id in self._jobs:
                raise ValueError(f"job {job_id} already exists: use a new random id")
            job = self._jobs[job_id] = Job(job_id, steps, backbone)
            while len(self._jobs) > self.keep:
                self._jobs.popitem(last=False)
        return job

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def cancel(self, job_id: str) -> Job | None:
        job = self.get(job_id)
        if job is not None and job.state == "running":
            job.cancel_requested.set()
        return job

    @staticmethod
    def record(job: Job, step: int, losses: dict[str, float]) -> None:
        """The per-step callback's part: progress for GET /gatys/progress."""
        job.step, job.losses = step + 1, {k: round(v, 6) for k, v in losses.items()}
