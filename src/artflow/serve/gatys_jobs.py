"""Gatys runs as jobs any pod can answer for: the job record lives in the serving store.

A run is named by a job id: one the page chose (`/stylize ... job=<id>`, the synchronous
call), or one the service gave (`POST /gatys/jobs`, answered 202 at once). The pod that runs
it writes each step's progress to the store (`serving_jobs`) and, in the same transaction,
reads the job's cancel flag: `POST /gatys/cancel?job=<id>` or `POST /gatys/jobs/<id>/cancel`
on ANY pod sets the flag, and the run stops at its next step. Progress and the result are
read from the store by whichever pod the balancer picks. A job not heard from for
`serve.job_stale_s` (its pod was killed) reads as `lost`. Polling rather than a server-sent
events stream: one short GET per second works through every proxy.
"""

from __future__ import annotations

import re
import time
from typing import Any

from artflow.serve.store import Duplicate, ServingStore

JOB_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
KIND = "gatys"
ACTIVE = ("queued", "running")


class JobError(ValueError):
    """A job request that cannot be served; `status` is the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class JobBoard:
    """The store's Gatys jobs, seen from one pod (StoreUnavailable passes up: 503)."""

    def __init__(self, store: ServingStore, per_deployment: int, stale_s: float) -> None:
        self.store = store
        self.per_deployment = per_deployment
        self.stale_s = stale_s

    def start(self, job_id: str, steps: int, backbone: str) -> str:
        """Record a new job of this pod's Deployment; 429 when N of its runs are active."""
        if not JOB_ID.match(job_id):
            raise JobError(422, "job must be 8-64 letters, digits, '-' or '_'")
        active = self.store.jobs_active(self.store.role, KIND, self.stale_s)
        if active >= self.per_deployment:
            raise JobError(
                429,
                f"{active} Gatys run(s) in progress in this Deployment (at most "
                f"{self.per_deployment}, serve.gatys_jobs_per_deployment); retry later or use "
                "method=fast",
            )
        try:
            self.store.job_create(job_id, KIND, steps, backbone)
        except Duplicate:
            raise JobError(409, f"job {job_id} already exists: use a new random id") from None
        return job_id

    def step(self, job_id: str, step: int, losses: dict[str, float]) -> bool:
        """The per-step callback's part: progress in; True when a cancel was asked for."""
        rounded = {k: round(float(v), 6) for k, v in losses.items()}
        return self.store.job_update(job_id, state="running", step=step + 1, losses=rounded)

    def finish(self, job_id: str, state: str, result: bytes | None = None, error: str = "") -> None:
        self.store.job_update(job_id, state=state, result=result, error=error or None)

    def describe(self, job_id: str) -> dict[str, Any] | None:
        job = self.store.job(job_id) if JOB_ID.match(job_id or "") else None
        if job is None:
            return None
        state = job["state"]
        if state in ACTIVE and time.time() - job["updated"] > self.stale_s:
            state = "lost"  # its pod stopped writing: killed or restarted mid-run
        return {
            "job": job["id"],
            "state": state,
            "step": job["step"],
            "steps": job["steps"],
            "backbone": job["backbone"],
            "loss": job["losses"].get("total"),
            "losses": job["losses"],
            "cancel_requested": bool(job["cancel_requested"]),
            "pod": job["pod"],
            "error": job["error"],
            "seconds": round(job["updated"] - job["created"], 2),
        }

    def cancel(self, job_id: str) -> dict[str, Any] | None:
        if not JOB_ID.match(job_id or "") or self.store.job(job_id) is None:
            return None
        self.store.job_cancel(job_id)
        return self.describe(job_id)

    def result(self, job_id: str) -> bytes:
        job = self.store.job(job_id, with_result=True) if JOB_ID.match(job_id or "") else None
        if job is None:
            raise JobError(404, f"unknown job {job_id!r}")
        if job["state"] != "done" or job["result"] is None:
            raise JobError(409, f"job {job_id} is {job['state']}: no result")
        return bytes(job["result"])
