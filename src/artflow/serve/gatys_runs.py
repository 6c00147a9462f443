"""Gatys runs of one pod: the synchronous `/stylize method=gatys` call and `POST /gatys/jobs`.

One run at a time per pod (`gate`), at most `serve.gatys_max_steps` at
`serve.gatys_max_size` (the upload's own size when smaller); a synchronous run must be
estimated to end within its request (`_fits`, from serve.gatys_step_s), else a job. With a
job id, a job record in the serving store (artflow.serve.gatys_jobs): each step writes its
progress there and reads its cancel flag, so any pod can show and stop it. The service hands
in its threaded runner with the request timeout (`run`, artflow.serve.endpoints.plumbing.Worker)
and its decoder (`decode`).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
from collections.abc import Callable
from typing import Any

import anyio
import numpy as np

from artflow.errors import ArtflowError
from artflow.serve.feedback import new_id
from artflow.serve.gatys_jobs import JobBoard, JobError
from artflow.serve.inference import Cancelled, encode_image
from artflow.serve.store import StoreUnavailable
from artflow.serve.validation import ApiError, Fit

log = logging.getLogger("artflow.serve")

MIN_SIDE = 32  # the style networks pool 3-5 times (as the service's other style endpoints)
SYNC_SHARE = 0.75  # a synchronous run must be estimated to end within this share of its timeout
REFERENCE_SIDE = 256  # serve.gatys_step_s is measured at this side
SMALLEST_SHARE = 0.1  # a step costs at least this share of a 256 px one (fixed overheads)


def step_seconds(step_s: float, side: int) -> float:
    """Estimated seconds of one Gatys step at `side` px, from the one at 256 px."""
    return step_s * max((side / REFERENCE_SIDE) ** 2, SMALLEST_SHARE)


def working_side(asked: int | None, longest: int, cfg: Any) -> int:
    """The side a run works at: `asked` (else serve.gatys_max_size; above it 422), never more
    than the upload's own longest side: a small image is not upscaled first."""
    if asked is not None and asked > cfg.gatys_max_size:
        raise ApiError(
            422,
            f"size: at most {cfg.gatys_max_size} for Gatys (serve.gatys_max_size), not {asked}",
            "size",
            "invalid_parameter",
        )
    return max(MIN_SIDE, min(asked or cfg.gatys_max_size, longest))


class GatysRuns:
    """The pod's Gatys runs; `state` is what /status shows (running, steps_done, cancelled)."""

    def __init__(
        self,
        cfg: Any,  # ServeCfg
        jobs: JobBoard,
        settings_cache: Any,  # artflow.style.gatys.settings.SettingsCache
        run: Callable[..., Any],
        decode: Callable[..., Any],
    ) -> None:
        self.cfg, self.jobs, self.settings_cache = cfg, jobs, settings_cache
        self._run, self._decode = run, decode
        self.gate = threading.BoundedSemaphore(1)  # one Gatys run at a time in this pod
        self.state = {"running": False, "steps_done": 0, "cancelled": 0}

    async def run_sync(
        self,
        content: np.ndarray,
        style: np.ndarray,
        side: int,
        steps: int | None,
        timeout_s: float | None,
        cfg: Any,
        job_id: str | None,
    ) -> np.ndarray:
        """Bounded optimisation: at most gatys_max_steps at gatys_max_size, one run at a time
        per pod; with `job`, a job record in the store (progress and cancel from any pod).

        The gate is released when the optimisation has really ended (a timed-out run stops at
        its next step), not when the request gives up on it."""
        n = steps or self.cfg.gatys_steps
        self._fits(n, side, timeout_s)
        if not self.gate.acquire(blocking=False):
            raise ApiError(429, "a Gatys run is in progress; retry later or use method=fast")
        try:
            if job_id:
                await anyio.to_thread.run_sync(self.jobs.start, job_id, n, cfg.backbone)
        except (JobError, StoreUnavailable) as exc:
            self.gate.release()
            status = exc.status if isinstance(exc, JobError) else 503
            raise ApiError(status, f"job: {exc}", "job") from None
        self.state.update(running=True, steps_done=0)

        def finished() -> None:
            self.state["running"] = False
            self.gate.release()

        run = self._work(content, style, side, n, cfg, job_id)
        try:
            result = await self._run(
                "stylize", run, timeout_s, on_done=finished, on_cancelled=self._count_cancel
            )
        except Cancelled:  # the user's cancel (a timeout answers 504 inside _run)
            await self._finish(job_id, "cancelled")
            raise ApiError(409, f"Gatys run {job_id} was cancelled") from None
        except ApiError as exc:
            await self._finish(job_id, "failed", error=exc.message)
            raise
        await self._finish(job_id, "done")
        return result

    def _count_cancel(self) -> None:
        self.state["cancelled"] += 1  # stopped by a timeout, a dropped request or a cancel

    def _fits(self, steps: int, side: int, timeout_s: float | None) -> None:
        """422 pointing to the job endpoint when `steps` at `side` px cannot end in time."""
        timeout = min(timeout_s or self.cfg.timeout_s, self.cfg.timeout_s)
        per_step = step_seconds(self.cfg.gatys_step_s, side)
        if steps * per_step <= timeout * SYNC_SHARE:
            return
        fits = max(0, int(timeout * SYNC_SHARE / per_step))
        raise ApiError(
            422,
            f"steps: {steps} Gatys steps at {side} px take about {steps * per_step:.0f} s, more "
            f"than a {timeout:g} s request allows (at most {fits} here); run it as a job: "
            "POST /gatys/jobs with the same fields, then poll /gatys/jobs/<id>",
            "steps",
            "use_job",
        )

    def _work(
        self, content: np.ndarray, style: np.ndarray, side: int, n: int, cfg: Any, job_id: Any
    ) -> Callable[[threading.Event], np.ndarray]:
        """The optimisation as `fn(cancel)`: each step writes the job's progress to the store
        and reads its cancel flag there (set by any pod)."""

        def run(cancel: threading.Event) -> np.ndarray:
            from artflow.style.gatys.transfer import run_gatys

            def on_step(i: int, losses: dict[str, float]) -> None:
                self.state["steps_done"] = i + 1
                stop = False
                if job_id:
                    with contextlib.suppress(StoreUnavailable):  # progress unseen; runs on
                        stop = self.jobs.step(job_id, i, losses)
                if cancel.is_set() or stop:
                    raise Cancelled

            try:
                return run_gatys(content, style, cfg, steps=n, size=side, on_step=on_step).image
            except (Cancelled, ArtflowError):
                raise
            except Exception as exc:  # e.g. VGG19 imagenet weights not available offline
                log.exception("artflow: gatys failed")
                raise ApiError(503, f"Gatys style transfer unavailable: {exc}") from None

        return run

    async def _finish(self, job_id: str | None, state: str, **extra: Any) -> None:
        if not job_id:
            return
        try:
            await anyio.to_thread.run_sync(
                functools.partial(self.jobs.finish, job_id, state, **extra)
            )
        except StoreUnavailable:
            log.warning("artflow: job %s ended %s, not recorded: store down", job_id, state)

    async def submit(
        self,
        content_src: Any,
        style_src: Any,
        steps: int | None,
        size: int | None,
        backbone: str | None,
    ) -> dict[str, Any]:
        """POST /gatys/jobs (the service's BentoML API): 202 with the job's id at once; the
        run goes on in this pod's worker thread, up to serve.gatys_max_steps, at the upload's
        own size when smaller than serve.gatys_max_size; progress, result and cancel at
        /gatys/jobs/<id> on any pod. ApiError (4xx, 503) before anything starts."""
        side = size or self.cfg.gatys_max_size
        content = (await self._decode(content_src, "content", _fit(side)))[0]
        side = working_side(size, max(content.rgb.shape[:2]), self.cfg)
        style = (await self._decode(style_src, "style", _fit(side)))[0]
        chosen = await anyio.to_thread.run_sync(self.settings_cache.get, backbone)
        steps = steps or self.cfg.gatys_max_steps
        job_id = new_id()
        try:
            await anyio.to_thread.run_sync(self.jobs.start, job_id, steps, chosen.cfg.backbone)
        except JobError as exc:
            raise ApiError(exc.status, str(exc), "job") from None
        except StoreUnavailable as exc:
            raise ApiError(503, f"jobs cannot be recorded now: {exc}") from None
        work = self._work(content.rgb, style.rgb, side, steps, chosen.cfg, job_id)
        threading.Thread(
            target=self._run_job, args=(job_id, work), name=f"artflow-job-{job_id[:8]}", daemon=True
        ).start()
        base = f"/gatys/jobs/{job_id}"
        return {
            "job": job_id,
            "state": "queued",
            "steps": steps,
            "size": side,
            "progress": base,
            "result": f"{base}/result",
            "cancel": f"{base}/cancel",
        }

    def _run_job(self, job_id: str, work: Callable[[threading.Event], np.ndarray]) -> None:
        """A submitted job in its own thread: one Gatys run at a time in this pod."""
        with self.gate:
            self.state.update(running=True, steps_done=0)
            try:
                image = work(threading.Event())
                self.jobs.finish(job_id, "done", result=encode_image(image, "png"))
            except Cancelled:
                self.state["cancelled"] += 1
                self.jobs.finish(job_id, "cancelled")
            except (ApiError, ArtflowError) as exc:
                self.jobs.finish(job_id, "failed", error=str(exc))
            except StoreUnavailable:
                log.warning("artflow: job %s: its end could not be recorded", job_id)
            except Exception as exc:  # noqa: BLE001 - recorded, never lost silently
                log.exception("artflow: job %s failed", job_id)
                self.jobs.finish(job_id, "failed", error=str(exc))
            finally:
                self.state["running"] = False


def _fit(side: int) -> Fit:
    return Fit(side, MIN_SIDE, True)
