"""The artflow HTTP service (BentoML 1.4): classify, stylize, Monet, A/B routing, admin.

Start it with `artflow serve`, or `bentoml serve artflow.serve.service:Artflow`. Settings come
from the environment so a plain `bentoml serve` subprocess is configured like the CLI:
MLFLOW_TRACKING_URI (the registry), ARTFLOW_PARAMS / ARTFLOW_PROFILE (params.yaml and
profile), ARTFLOW_PREDICTION_LOG (log path override), ARTFLOW_ADMIN_TOKEN (admin access).

Request path of /classify (a BentoML API, so it is in /docs.json and BentoML's client):
ErrorEnvelope (one error model) -> RequestGuard (body size; the upload's shape; a raw image
body or query-string parameters re-encoded as the multipart form) -> BentoML parses and
validates the parameters against the signature's bounds -> sticky A/B assignment -> read,
header check, decode at the model's size and resize, in one worker thread (4xx on failure,
before any model) -> the
variant's adaptive batching queue (BentoML's batcher, one queue per variant; a request that
timed out is left out of its batch) -> top-k, metrics; drift features and the prediction
log line are computed in the log writer's thread, off the request's path.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
import bentoml
import numpy as np
from PIL import Image
from pydantic import Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from artflow import families
from artflow.config import load_settings
from artflow.errors import ArtflowError
from artflow.serve import admin, routes
from artflow.serve.batching import VariantBatcher
from artflow.serve.envelope import ErrorEnvelope
from artflow.serve.explain import Explainer, Wanted, neighbours, upload_size
from artflow.serve.family import FamilyModels, FamilyUnavailable
from artflow.serve.feedback import (
    Answer,
    FeedbackBook,
    FeedbackError,
    OnlineAccuracy,
    new_id,
    study_metrics,
    unstored_id,
)
from artflow.serve.gatys_jobs import JobBoard
from artflow.serve.gatys_runs import GatysRuns, working_side
from artflow.serve.guard import BODY_KEY, RequestGuard
from artflow.serve.inference import Cancelled, Pending, encode_image, rank, run_live
from artflow.serve.logship import ENV as LOG_SHIP_ENV
from artflow.serve.logship import LogShipper
from artflow.serve.metrics import metrics
from artflow.serve.models import ModelSet, _load_classifier
from artflow.serve.openapi import SchemaDocument
from artflow.serve.predlog import PredictionLog, Retention, pod_name, resolve_log_path
from artflow.serve.router import CHALLENGER, CHAMPION, Router, client_key
from artflow.serve.schemas import ClassifyAnswer, JobSubmitted
from artflow.serve.shared import SharedAdmin, caller_identity
from artflow.serve.store import ServingStore, StoreUnavailable, resolve_url
from artflow.serve.validation import (
    ApiError,
    DecodedImage,
    Fit,
    Limits,
    decode_upload,
    inspect_upload,
)
from artflow.serve.variants import VariantRouting
from artflow.serve.web import CLIENT_COOKIE, web_app

log = logging.getLogger("artflow.serve")

SETTINGS = load_settings(
    os.environ.get("ARTFLOW_PARAMS") or None, os.environ.get("ARTFLOW_PROFILE") or None
)
SERVE = SETTINGS.serve
ImageFormat = Literal["png", "jpeg"]
MAX_TOP_K = 100
MAX_NEIGHBOURS = 10
FamilyName = Literal[tuple(families.names("classifier"))]  # declared in artflow.families
Backbone = Literal["vgg19", "resnet50"]
NOT_A_PAINTING = "This does not look like a painting: the answer is probably meaningless."
LIMITS = Limits(SERVE.max_pixels, SERVE.max_aspect_ratio, SERVE.max_decode_mb)
MIN_SIDE = 32  # the style networks pool 3-5 times (artflow.style.inference.MIN_SIDE)
STYLE_SIDE = 256  # AdaIN reads only the style's channel statistics, at this side
DEFAULT_CLASSIFIER_SIZE = 224  # decode size while no classifier is loaded (the answer is 503)
TRIM_EVERY_S = 5.0  # under traffic, hand freed heap memory back to the OS this often


@bentoml.service(
    name="artflow",
    workers=1,  # one process per pod; state other pods need lives in the serving store
    traffic={"timeout": SERVE.timeout_s + 15, "max_concurrency": 256},
    endpoints={"livez": "/livez", "readyz": "/readyz"},
)
@bentoml.asgi_app(web_app, path="/")
class Artflow:
    def __init__(self) -> None:
        self.settings = SETTINGS
        self.models = ModelSet(SETTINGS)
        weight = os.environ.get("ARTFLOW_CHALLENGER_WEIGHT", "").strip()
        self.router = Router(float(weight) if weight else SERVE.challenger_weight)
        self.variants = VariantRouting.from_env(self.router, self.models, SERVE.timeout_s + 5)
        self.role, self.peers = self.variants.role, self.variants.peers
        log_path = resolve_log_path(SERVE.prediction_log)
        self.store = ServingStore(
            resolve_url(SERVE.store, log_path),
            pod_name(),
            self.role or "single",
            # a cluster migrates with its Job (infra/k8s/base/serving/store.yaml)
            auto_migrate=SERVE.store_migrate
            and os.environ.get("ARTFLOW_STORE_MIGRATE", "").lower() != "false",
        )
        self.predictions = PredictionLog(
            log_path, segment_mb=SERVE.log_rotate_mb, retention=Retention.from_settings(SERVE)
        )
        ship_to = os.environ.get(LOG_SHIP_ENV, "").strip() or SERVE.prediction_log_s3
        self.log_shipper = (
            LogShipper(self.predictions.folder, ship_to, SERVE.log_upload_s) if ship_to else None
        )
        if self.log_shipper is not None:
            self.log_shipper.start()
        self.metrics = metrics()
        # Drift features and the log line are computed here, not on the event loop.
        self.log_writer = ThreadPoolExecutor(1, thread_name_prefix="artflow-predlog")
        self._assigned: dict[tuple[str, str], None] = {}  # (key, experiment) recorded (ordered)
        self._served_since_trim = False
        threading.Thread(target=self._trim_while_serving, name="artflow-trim", daemon=True).start()
        self.gatys_jobs = JobBoard(self.store, SERVE.gatys_jobs_per_deployment, SERVE.job_stale_s)
        self.families = FamilyModels(_load_classifier)
        self.book = FeedbackBook(self.store)
        self.metrics_study = study_metrics()
        self.online = OnlineAccuracy(self.store, SETTINGS.abtest.confidence)
        self.shared = SharedAdmin(
            self.store,
            self.router.set_weight,
            self._reload_now,
            self.online.refresh,
            SERVE.sync_interval_s,
            SERVE.store_retention_days,
        )
        from artflow.monitor.novelty import NoveltyCache
        from artflow.style.gatys.settings import SettingsCache

        self.novelty = NoveltyCache()
        self.explainer = Explainer(SERVE.explanations_at_once)
        self._no_novelty: set[tuple[str, str]] = set()  # (name, version) known to have none
        self.gatys_settings = SettingsCache(SETTINGS.nst)
        self.gatys_runs = GatysRuns(
            SERVE, self.gatys_jobs, self.gatys_settings, self._run, self._decode_bytes
        )
        self.gatys = self.gatys_runs.state  # running, steps_done, cancelled: /status
        self.admin_failures = admin.FailureLimiter(SERVE.admin_max_failures)
        # At most `large_decodes` big decodes at once; created on the event loop, on first use.
        self._decode_gate: asyncio.Semaphore | None = None
        self.batchers = {
            variant: VariantBatcher(
                functools.partial(self._infer, variant),
                SERVE.max_batch_size,
                SERVE.max_latency_ms,
                on_batch=self.metrics.batch_size.labels(variant=variant).observe,
                concurrent=SERVE.concurrent_batches,
            )
            for variant in (CHAMPION, CHALLENGER)
        }
        web_app.state.service = self
        self.models.start_background_load()
        self.shared.start()
        threading.Thread(
            target=self._load_gatys_settings, name="artflow-gatys", daemon=True
        ).start()

    def _load_gatys_settings(self) -> None:
        """Resolve each backbone's registered best Gatys settings at start-up (not on the first
        request); under the registry lock, so never beside the model load's mlflow import."""
        with self.models.registry_lock:
            for backbone in ("vgg19", "resnet50"):
                chosen = self.gatys_settings.get(backbone)
                log.info("artflow: Gatys %s uses %s", backbone, chosen.label)

    def __is_ready__(self) -> bool:
        """/readyz: 200 only once the classifier champion is loaded."""
        return self.models.ready

    # ------------------------------------------------------------------ public API
    @bentoml.api(route="/classify")
    async def classify(
        self,
        image: Path,
        ctx: bentoml.Context,
        top_k: Annotated[int, Field(ge=1, le=MAX_TOP_K)] | None = None,
        family: FamilyName | None = None,
        explain: bool = False,
        neighbours: Annotated[int, Field(ge=0, le=MAX_NEIGHBOURS)] = 0,
    ) -> ClassifyAnswer:
        """An image -> top-k artists with probabilities, variant and model version.

        multipart/form-data with the file field `image`, or the image itself as the body
        (Content-Type image/* or application/octet-stream); parameters as form fields or in
        the query string. `family` (cnn | resnet50): that family's best gated version answers
        instead of the A/B router's choice. `explain=true` adds `explanation` (Grad-CAM of
        the predicted artist); `neighbours=K` adds the K nearest training paintings."""
        started, variant = time.perf_counter(), "none"
        request = ctx.request
        try:
            k = top_k or SERVE.top_k
            key = self._client_key_of(request)
            forward_to = self.variants.target(request, family, key)
            body = request.scope.get(BODY_KEY)
            if forward_to is not None and body is not None:
                forwarded = await self.variants.forward(request, body, forward_to)
                if forwarded is not None:
                    ctx.response.status_code = forwarded.status_code
                    return forwarded
            wants = Wanted(explain, neighbours)
            answer = await self._classify(image, k, family, key, started, wants)
        except ApiError as exc:
            return self._fail(ctx, "classify", variant, exc, started)
        variant = answer["variant"]
        self._count("classify", variant, 200, started)
        ctx.response.status_code = 200
        ctx.response.metadata["X-Artflow-Variant"] = variant
        return JSONResponse(answer)

    async def _classify(
        self,
        upload: Path,
        top_k: int,
        family: str | None,
        key: str,
        started: float,
        wants: Wanted,
    ) -> dict[str, Any]:
        if family:
            variant = f"family:{family}"
            slot = await self._family_slot(family)
        elif self.role:
            variant, slot = self.role, self.variants.slot()
        else:
            variant = self.router.assign(key, self.models.challenger_available())
            slot = self.models.classifier(variant)
        runner = slot.model
        side = runner.size if runner is not None else DEFAULT_CLASSIFIER_SIZE
        # Both sides at least the model's input: the resize to SxS does the rest, in the same
        # worker thread as the decode (one thread hop per request).
        prepare = runner.prepare if runner is not None else None
        decoded, prepared = await self._decode_bytes(upload, "image", Fit(None, side), prepare)
        if runner is None:
            raise ApiError(503, f"classifier {variant} not loaded: {slot.error or 'loading'}")
        item = Pending(prepared)
        if family:
            work = anyio.to_thread.run_sync(self._infer_slot, slot, [item])
            out = (await self._with_timeout(work, "classify", item))[0]
        else:
            out = await self._with_timeout(self._classify_prepared(variant, item), "classify", item)
        probs = np.asarray(out["probs"], dtype=np.float32)
        ranked = rank(probs, out["labels"], top_k)
        latency_ms = (time.perf_counter() - started) * 1000
        body = {
            "top": ranked,
            "artist": ranked[0]["artist"],
            "confidence": ranked[0]["probability"],
            "variant": variant,
            "model": {"name": slot.name, "version": out["version"], "alias": slot.alias},
            "latency_ms": round(latency_ms, 2),
            "prediction_id": new_id(),
        }
        if self.role:
            body["model"]["role"] = self.role
        if family:
            body["family"] = family
        novelty, near = None, []
        if (slot.name, str(out["version"])) not in self._no_novelty:
            novelty, near = await anyio.to_thread.run_sync(
                self._novelty,
                slot.name,
                out["version"],
                decoded.rgb,
                out.get("embedding"),
                wants.neighbours,
            )
        if wants.neighbours:
            body["neighbours"] = near
        if wants.explain:
            size = upload_size(decoded.original_size, decoded.rgb)
            work = self.explainer.explain(
                runner.loaded.model, prepared, body["artist"], out["labels"], size
            )
            body["explanation"] = await self._with_timeout(work, "classify", item)
        if novelty is not None:
            body["novelty"] = novelty
            if novelty["novel"]:
                body["warning"] = NOT_A_PAINTING
            self.metrics_study.novelty.labels(
                variant=variant, novel=str(novelty["novel"]).lower()
            ).inc()
        answer = Answer(
            body["prediction_id"], variant, str(out["version"]), body["artist"], family, slot.name
        )
        # stored before the answer is sent, so feedback to any pod finds it; a store outage
        # still serves the answer, with an id that says it cannot take feedback
        if not await anyio.to_thread.run_sync(self.book.remember, answer):
            body["prediction_id"] = unstored_id()
            body["feedback"] = {"accepted": False, "reason": "the serving store is unavailable"}
        if not family:  # the A/B assignment, recorded once per client and share, off the path
            self.log_writer.submit(self._record_assignment, key, variant)
        self._record(
            "classify",
            variant,
            slot.name,
            out["version"],
            latency_ms,
            decoded,
            artist=ranked[0]["artist"],
            confidence=ranked[0]["probability"],
            prediction_id=body["prediction_id"],
            novelty=None if novelty is None else novelty["score"],
            embedding=out.get("embedding") if SERVE.log_embedding else None,
        )
        self.metrics.predictions.labels(
            variant=variant, model_version=out["version"], artist=ranked[0]["artist"]
        ).inc()
        return body

    @bentoml.api(route="/stylize")
    async def stylize(
        self,
        content: Path,
        style: Path,
        ctx: bentoml.Context,
        method: Literal["fast", "gatys"] = "fast",
        strength: Annotated[float, Field(ge=0.0, le=1.0)] = SETTINGS.stylizer.strength,
        size: Annotated[int, Field(ge=32, le=SERVE.max_output_side)] | None = None,
        steps: Annotated[int, Field(ge=1, le=SERVE.gatys_max_steps)] | None = None,
        format: ImageFormat = "png",
        timeout_s: Annotated[float, Field(gt=0, le=SERVE.timeout_s)] | None = None,  # 504
        backbone: Backbone | None = None,
        job: Annotated[str, Field(max_length=64)] | None = None,
    ) -> Image.Image:
        """Content + style images -> the stylized image (fast feed-forward, or bounded Gatys),
        at the working size: `size`, else the content's, at most serve.max_output_side.

        Gatys: `backbone` picks VGG19 or ResNet50 features (with that backbone's registered
        best settings, artflow.style.gatys.settings); `job` names the run for
        GET /gatys/progress and POST /gatys/cancel."""
        started, variant = time.perf_counter(), method
        try:
            if method == "fast":
                side = min(size or SERVE.max_output_side, SERVE.max_output_side)
                content_img = await self._decode(content, "content", Fit(side, MIN_SIDE, True))
                style_img = await self._decode(style, "style", Fit(STYLE_SIDE, MIN_SIDE, True))
                slot = self._style_slot("stylizer")
                name, version = slot.name, slot.version or "?"

                def run(cancel: threading.Event) -> np.ndarray:
                    with _locked(slot.lock, cancel):
                        return slot.model.stylize(content_img.rgb, style_img.rgb, strength=strength)

                result = await self._run("stylize", run)
            else:
                working_side(size, SERVE.gatys_max_size, SERVE)  # 422 over the maximum
                side = size or SERVE.gatys_max_size
                content_img = await self._decode(content, "content", Fit(side, MIN_SIDE, True))
                side = working_side(size, max(content_img.rgb.shape[:2]), SERVE)
                style_img = await self._decode(style, "style", Fit(side, MIN_SIDE, True))
                chosen = await anyio.to_thread.run_sync(self.gatys_settings.get, backbone)
                name, version = "gatys", chosen.label
                result = await self.gatys_runs.run_sync(
                    content_img.rgb, style_img.rgb, side, steps, timeout_s, chosen.cfg, job
                )
        except ApiError as exc:
            return self._fail(ctx, "stylize", variant, exc, started)
        latency_ms = (time.perf_counter() - started) * 1000
        self._record("stylize", variant, name, version, latency_ms, content_img, method=method)
        return await self._image(ctx, "stylize", variant, started, result, format, version)

    @bentoml.api(route="/gatys/jobs")
    async def gatys_job(
        self,
        content: Path,
        style: Path,
        ctx: bentoml.Context,
        steps: Annotated[int, Field(ge=1, le=SERVE.gatys_max_steps)] | None = None,
        size: Annotated[int, Field(ge=32, le=SERVE.gatys_max_size)] | None = None,
        backbone: Backbone | None = None,
    ) -> JobSubmitted:
        """Start a Gatys job: 202 at once with its id and links; it runs up to
        serve.gatys_max_steps (default) in this pod; progress, result and cancel at
        /gatys/jobs/<id> from any pod (artflow.serve.gatys_runs)."""
        started = time.perf_counter()
        try:
            job = await self.gatys_runs.submit(content, style, steps, size, backbone)
        except ApiError as exc:
            return self._fail(ctx, "gatys_jobs", "gatys", exc, started)
        self._count("gatys_jobs", "gatys", 202, started)
        ctx.response.status_code = 202
        return JSONResponse(job, status_code=202)

    @bentoml.api(route="/monet")
    async def monet(
        self,
        photo: Path,
        ctx: bentoml.Context,
        size: Annotated[int, Field(ge=32, le=SERVE.max_output_side)] | None = None,
        format: ImageFormat = "png",
    ) -> Image.Image:
        """A photo -> the same scene as a Monet painting (CycleGAN generator), at the working
        size: `size`, else the generator's training size, at most serve.max_output_side."""
        started, variant = time.perf_counter(), "none"
        try:
            slot = self.models.slot("monet")
            trained = getattr(slot.model, "image_size", 256)
            side = min(size or trained, SERVE.max_output_side)
            decoded = await self._decode(photo, "photo", Fit(side, MIN_SIDE, True))
            slot = self._style_slot("monet")
            variant = slot.alias or "none"

            def run(cancel: threading.Event) -> np.ndarray:
                with _locked(slot.lock, cancel):
                    return slot.model.translate(decoded.rgb, size=side)

            result = await self._run("monet", run)
        except ApiError as exc:
            return self._fail(ctx, "monet", variant, exc, started)
        latency_ms = (time.perf_counter() - started) * 1000
        self._record("monet", variant, slot.name, slot.version, latency_ms, decoded)
        return await self._image(ctx, "monet", variant, started, result, format, slot.version)

    @bentoml.api(route="/feedback")
    async def feedback(
        self,
        ctx: bentoml.Context,
        prediction_id: Annotated[str, Field(min_length=1, max_length=64)],
        correct: bool | None = None,
        artist: Annotated[str, Field(max_length=200)] | None = None,
    ) -> dict[str, Any]:
        """Was classification `prediction_id` right? `correct`, or the true `artist`."""
        try:
            record = await anyio.to_thread.run_sync(
                functools.partial(self.book.add, prediction_id, correct=correct, artist=artist)
            )
        except FeedbackError as exc:
            ctx.response.status_code = exc.status
            headers = {"Retry-After": "2"} if exc.status == 503 else None
            return JSONResponse({"error": str(exc)}, status_code=exc.status, headers=headers)
        self.online.add(record)
        return {"stored": True, "prediction_id": prediction_id, "correct": record["correct"]}

    # ------------------------------------------------------------------ A/B across pods
    def _client_key_of(self, request: Request) -> str:
        """X-Client-Key, else the cookie the page sets, else the caller's address."""
        header = request.headers.get("x-client-key") or request.cookies.get(CLIENT_COOKIE)
        return client_key(header, self._caller(request))

    # ------------------------------------------------------------------ study helpers
    async def _family_slot(self, family: str) -> Any:
        try:
            return await anyio.to_thread.run_sync(self.families.get, family)
        except FamilyUnavailable as exc:
            raise ApiError(exc.status, str(exc), "family") from None

    def _novelty(
        self,
        name: str,
        version: str,
        rgb: np.ndarray,
        embedding: list[float] | None,
        k: int = 0,
    ) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """The 'does not look like a painting' check, when the version has a novelty model,
        and the `k` nearest training paintings from the same index (artflow.serve.explain)."""
        checking = SETTINGS.novelty.enabled
        if not (checking or k) or embedding is None:
            return None, []
        try:
            found = self.novelty.get(name, str(version))
            if found is None:
                if self.novelty.has_none(name, str(version)):  # later requests skip the hop
                    self._no_novelty.add((name, str(version)))
                return None, []
            model, projection = found
            from artflow.monitor.features import describe_image

            projected = projection.transform(np.asarray([embedding], dtype=np.float64))[0]
            verdict = model.check(describe_image(rgb), projected) if checking else None
            return verdict, neighbours(model, projected, k) if k else []
        except Exception:  # never fail an answer because of its warning
            log.exception("artflow: novelty check failed")
            return None, []

    # ------------------------------------------------------------------ classifier calls
    def _infer(self, variant: str, items: list[Pending]) -> list[dict[str, Any] | None]:
        """One forward pass over a batch of prepared images of one variant."""
        return self._infer_slot(self.models.classifier(variant), items)

    def _infer_slot(self, slot: Any, items: list[Pending]) -> list[dict[str, Any] | None]:
        """Answers in the order of `items`; None for those whose request has timed out
        meanwhile: they are left out of the forward pass."""
        dropped = sum(item.dropped for item in items)
        if dropped:
            self.metrics.cancelled.labels(endpoint="classify").inc(dropped)
        if dropped == len(items):
            return [None] * len(items)
        with slot.lock:
            runner, version = slot.model, slot.version
            if runner is None:
                raise ApiError(503, f"classifier {slot.key} not loaded")
            results = run_live(runner, items)
        labels = list(runner.loaded.labels)
        return [
            None
            if result is None
            else {
                "probs": result[0],
                "labels": labels,
                "version": version,
                "embedding": None if result[1] is None else np.round(result[1], 4).tolist(),
            }
            for result in results
        ]

    async def _classify_prepared(self, variant: str, item: Pending) -> dict[str, Any] | None:
        if SERVE.batching:
            return await self.batchers[variant](item)
        out = await anyio.to_thread.run_sync(self._infer, variant, [item])
        return out[0]

    # ------------------------------------------------------------------ admin
    @bentoml.api(route="/admin/weight")
    async def admin_weight(
        self, ctx: bentoml.Context, weight: Annotated[float, Field(ge=0.0, le=1.0)]
    ) -> dict[str, Any]:
        """Set the challenger's share of traffic (0..1); sticky keys keep their bucket."""
        if (denied := self._deny(ctx)) is not None:
            return denied
        try:  # stored first: every pod applies it within serve.sync_interval_s
            await anyio.to_thread.run_sync(self.shared.publish_weight, weight)
        except StoreUnavailable as exc:
            ctx.response.status_code = 503
            return {"error": f"the share was not changed: {exc}"}
        old = self.router.set_weight(weight)
        log.warning("artflow admin: challenger weight %.3f -> %.3f", old, weight)
        return {"weight": weight, "previous": old, "every_pod_within_s": SERVE.sync_interval_s}

    @bentoml.api(route="/admin/reload")
    async def admin_reload(self, ctx: bentoml.Context) -> dict[str, Any]:
        """Re-resolve the registry aliases and load what moved."""
        if (denied := self._deny(ctx)) is not None:
            return denied
        answer = await anyio.to_thread.run_sync(self._reload_now)
        return {**answer, "every_pod": self._publish_reload()}

    def _reload_now(self) -> dict[str, Any]:
        """Re-resolve the aliases on this pod (the admin call, or a reload from the store)."""
        self.families.clear()
        self.gatys_settings.clear()
        self.novelty.clear()
        self._no_novelty.clear()
        return self.models.refresh()

    def _publish_reload(self) -> str:
        """Ask every other pod to reload (through the store); what the answer says of it."""
        try:
            self.shared.publish_reload()
        except StoreUnavailable as exc:
            return f"not asked: {exc}"
        return f"within {SERVE.sync_interval_s:g} s plus the load time"

    @bentoml.api(route="/admin/rollback")
    async def admin_rollback(
        self, ctx: bentoml.Context, model: Literal["classifier", "stylizer", "monet"] = "classifier"
    ) -> dict[str, Any]:
        """Restore the previous champion: check that it exists and loads, move the alias,
        reload. A failed check moves nothing (409); after the move the answer is 200, with
        the reload's outcome."""
        if (denied := self._deny(ctx)) is not None:
            return denied
        try:
            name, target = await anyio.to_thread.run_sync(self._rollback_check, model)
            demoted, restored = await anyio.to_thread.run_sync(self._rollback_move, name)
        except ArtflowError as exc:
            ctx.response.status_code = 409
            return {"error": exc.message, "hint": exc.hint}
        log.warning("artflow admin: rolled back %s v%s -> v%s", name, demoted, restored)
        try:
            refreshed = await anyio.to_thread.run_sync(self._reload_now)
        except Exception as exc:  # the alias has moved: report, never a 500
            log.exception("artflow admin: reload after rollback failed")
            refreshed = {"error": f"reload failed: {exc}"}
        return {
            "model": name,
            "demoted": demoted,
            "champion": restored,
            "reload": refreshed,
            "every_pod": self._publish_reload(),
        }

    def _rollback_check(self, model: str) -> tuple[str, str]:
        """(registered name, version to restore) once that version is known to load."""
        from artflow import promote
        from artflow.errors import ModelError
        from artflow.serve import models as model_specs

        if self.models.source == model_specs.BENTO:  # moving an alias would change nothing here
            raise ModelError(
                "this service serves the models its Bento carries, not the registry's aliases",
                "roll back by deploying the Bento of the previous champion (artflow bento build)",
            )
        name, key = model_specs.rollback_target(model)
        with self.models.registry_lock:
            versions = promote.history(name)
            if len(versions) < 2:
                return name, ""  # promote.rollback names the problem
            target = versions[-2]
            try:
                self.models.specs[key][2](target)
            except Exception as exc:
                raise ModelError(
                    f"cannot roll {name} back to v{target}: it does not load ({exc})",
                    "nothing was changed; fix or re-register that version first",
                ) from None
        return name, target

    def _rollback_move(self, name: str) -> tuple[str, str]:
        from artflow import promote

        with self.models.registry_lock:  # not while the first load is importing mlflow
            return promote.rollback(name)

    @bentoml.api(route="/admin/status")
    async def admin_status(self, ctx: bentoml.Context) -> dict[str, Any]:
        """Everything GET /status shows with the token: errors, registry, log path, Gatys."""
        if (denied := self._deny(ctx)) is not None:
            return denied
        return self.full_status()

    def public_status(self) -> dict[str, Any]:
        """What a health check needs, and nothing that maps the deployment."""
        models = self.models.status()
        return {
            "state": models["state"],
            "ready": models["ready"],
            "model_source": models["model_source"],  # "registry" or "bento"
            "models": {
                key: {"version": slot.get("version"), "loaded": slot.get("loaded")}
                for key, slot in models["models"].items()
            },
        }

    def full_status(self) -> dict[str, Any]:
        return {
            **self.models.status(),
            "challenger_weight": self.router.weight,
            "challenger_available": self.models.challenger_available(),
            "batching": SERVE.batching,
            "batches_shed": {variant: b.shed for variant, b in self.batchers.items()},
            "gatys": dict(self.gatys),
            "gatys_settings": self.gatys_settings.status(),
            "novelty_unresolved": self.novelty.unresolved(),
            "prediction_log": str(self.predictions.folder),
            "prediction_log_s3": self.log_shipper.describe() if self.log_shipper else None,
            "profile": SETTINGS.profile,
            "families": self.families.status(),
            "online_accuracy": self.online.snapshot(),
            "role": self.role or None,
            "peers": self.peers,
            "serving_store": self.store.describe(),
            "shared_admin": self.shared.describe(),
        }

    def admin_refusal(self, headers: Any, client: str) -> tuple[int, str, dict[str, str]] | None:
        """None when the admin token matches; else (status, message, extra headers).

        `client` is the caller's identity (`_caller`: behind a trusted proxy, the address
        it forwards for). A caller with too many recent failures on ANY pod (counted in the
        serving store; in this pod only while the store is down) gets 429 before its token
        is compared."""
        wait = self._failure_wait(client)
        if wait is not None:
            return (
                429,
                "too many failed admin attempts; retry later",
                {"Retry-After": str(int(wait + 0.999))},
            )
        refused = admin.check(headers)
        if refused is None:
            return None
        status, message = refused
        if "disabled" not in message:
            self.admin_failures.failed(client)
            with contextlib.suppress(StoreUnavailable):  # then counted in this pod only
                self.store.admin_failed(client)
        return status, message, {"WWW-Authenticate": "Bearer"} if status == 401 else {}

    def _deny(self, ctx: bentoml.Context) -> dict[str, Any] | None:
        """None when the admin token matches; else an error body (status set on ctx)."""
        request = ctx.request
        refused = self.admin_refusal(request.headers, self._caller(request))
        if refused is None:
            return None
        status, message, headers = refused
        ctx.response.status_code = status
        ctx.response.metadata.update(headers)
        return {"error": message}

    def _failure_wait(self, caller: str) -> float | None:
        """Seconds until `caller` may try a token again (None: now), over every pod."""
        local = self.admin_failures.retry_after(caller)
        window = self.admin_failures.window_s
        try:
            times = self.store.admin_failures_since(caller, time.time() - window)
        except StoreUnavailable:
            return local
        if len(times) < SERVE.admin_max_failures:
            return local
        return max(1.0, times[0] + window - time.time(), local or 0.0)

    def _caller(self, request: Any) -> str:
        # every X-Forwarded-For line: a proxy may add its own line rather than append
        hops = ", ".join(request.headers.getlist("x-forwarded-for"))
        headers = {"x-forwarded-for": hops} if hops else {}
        return caller_identity(_client_host(request), headers, SERVE.trusted_proxies)

    # ------------------------------------------------------------------ helpers
    def _decode_gate_for(self) -> asyncio.Semaphore:
        if self._decode_gate is None:
            self._decode_gate = asyncio.Semaphore(SERVE.large_decodes)
        return self._decode_gate

    async def _decode(self, upload: Path, field: str, fit: Fit) -> DecodedImage:
        """Read the header, then decode at the size `fit` asks for; decodes estimated over
        serve.large_decode_mb wait for one of serve.large_decodes slots."""
        return (await self._decode_bytes(upload, field, fit))[0]

    async def _decode_bytes(
        self,
        source: bytes | Path,
        field: str,
        fit: Fit,
        then: Callable[[np.ndarray], Any] | None = None,
    ) -> tuple[DecodedImage, Any]:
        """Read (an upload BentoML wrote to a file), header check, decode and `then(rgb)` (the
        classifier's resize) in ONE worker thread hop; a decode estimated over
        serve.large_decode_mb waits for one of serve.large_decodes slots first."""
        data = source if isinstance(source, bytes) else b""

        def small() -> tuple[DecodedImage | None, Any]:
            nonlocal data
            if not isinstance(source, bytes):
                data = _read_upload(source, field)
            header = inspect_upload(data, field, LIMITS, fit)
            if header.decode_mb > SERVE.large_decode_mb:
                return None, None
            decoded = decode_upload(data, field, LIMITS, fit)
            return decoded, then(decoded.rgb) if then is not None else None

        decoded, extra = await anyio.to_thread.run_sync(small)
        if decoded is not None:
            return decoded, extra
        async with self._decode_gate_for():
            try:
                decoded = await anyio.to_thread.run_sync(decode_upload, data, field, LIMITS, fit)
            finally:
                await anyio.to_thread.run_sync(_release_freed_memory)
        extra = await anyio.to_thread.run_sync(then, decoded.rgb) if then is not None else None
        return decoded, extra

    def _style_slot(self, key: str) -> Any:
        slot = self.models.slot(key)
        if not slot.loaded:
            what = "stylizer" if key == "stylizer" else "Monet generator"
            raise ApiError(503, f"model not loaded: no {what} ({slot.error or 'loading'})")
        return slot

    async def _run(
        self,
        endpoint: str,
        fn: Callable[[threading.Event], Any],
        timeout_s: float | None = None,
        on_done: Callable[[], None] | None = None,
    ) -> Any:
        """Run `fn(cancel)` in a worker thread with the endpoint's timeout (504).

        On timeout (or when the request is dropped) `cancel` is set; `fn` checks it between
        steps and stops there. `on_done` runs when the thread has really finished."""
        cancel = threading.Event()

        def guarded() -> Any:
            if cancel.is_set():  # timed out while waiting for a thread
                raise Cancelled
            try:
                return fn(cancel)
            except ArtflowError as exc:  # an image too small for the network, ...: 422
                raise ApiError(422, exc.message) from None

        task = asyncio.ensure_future(anyio.to_thread.run_sync(guarded))

        def done(t: asyncio.Future) -> None:
            if not t.cancelled() and isinstance(t.exception(), Cancelled):
                self.metrics.cancelled.labels(endpoint=endpoint).inc()
                if endpoint == "stylize" and on_done is not None:
                    self.gatys["cancelled"] += 1
            if on_done is not None:
                on_done()

        task.add_done_callback(done)
        timeout = min(timeout_s or SERVE.timeout_s, SERVE.timeout_s)
        try:
            return await asyncio.wait_for(asyncio.shield(task), timeout=timeout)
        except TimeoutError:
            cancel.set()
            raise ApiError(504, f"{endpoint} took longer than {timeout:g} s; stopped") from None
        except asyncio.CancelledError:
            cancel.set()
            raise

    async def _with_timeout(self, awaitable: Any, endpoint: str, item: Pending) -> Any:
        """`awaitable` within serve.timeout_s (504); a request that gives up (timeout, or the
        client went away) marks `item` dropped, so a batch still queued leaves it out."""
        try:
            return await asyncio.wait_for(awaitable, timeout=SERVE.timeout_s)
        except TimeoutError:
            item.dropped = True
            raise ApiError(504, f"{endpoint} took longer than {SERVE.timeout_s} s") from None
        except asyncio.CancelledError:
            item.dropped = True
            raise

    @staticmethod
    def _client_key(ctx: bentoml.Context) -> str:
        request = ctx.request
        return client_key(request.headers.get("x-client-key"), _client_host(request))

    def _record(self, *args: Any, **extra: Any) -> None:
        """Log the prediction off the request's path: one writer thread, in answer order."""
        self.log_writer.submit(self._write_record, *args, **extra)

    def _record_assignment(self, key: str, variant: str) -> None:
        """First assignment of `key` under the current share (its time stamp names the
        experiment) in the store's serving_assignments; each pod remembers what it sent."""
        experiment = f"share@{self.shared.applied.get('challenger_weight', 0.0):.6f}"
        if (key, experiment) in self._assigned:
            return
        try:
            self.store.assignment(key, experiment, variant)
        except StoreUnavailable:
            return  # recorded by a later answer
        self._assigned[(key, experiment)] = None
        while len(self._assigned) > 100_000:  # bounded: the oldest are forgotten
            self._assigned.pop(next(iter(self._assigned)))

    def _trim_while_serving(self) -> None:
        """Every TRIM_EVERY_S, if requests were answered since, hand freed memory back."""
        while True:
            time.sleep(TRIM_EVERY_S)
            if self._served_since_trim:
                self._served_since_trim = False
                _release_freed_memory()

    def _write_record(
        self,
        endpoint: str,
        variant: str,
        name: str,
        version: str | None,
        latency_ms: float,
        image: DecodedImage,
        **extra: Any,
    ) -> None:
        from artflow.monitor.features import describe_image
        from artflow.monitor.records import PredictionRecord

        try:
            record = PredictionRecord(
                endpoint=endpoint,
                variant=variant,
                model_name=name,
                model_version=version or "",
                latency_ms=round(latency_ms, 2),
                image_format=image.format,
                image_mode=image.mode,
                features=describe_image(image.rgb),
                **{k: v for k, v in extra.items() if v is not None},
            )
            self.predictions.write(record)
        except Exception:  # the log must never fail a prediction that succeeded
            log.exception("artflow: writing the prediction log failed")
        self._served_since_trim = True

    def _count(self, endpoint: str, variant: str, status: int, started: float) -> None:
        self.metrics.observe(endpoint, variant, status, time.perf_counter() - started)

    def _ok(self, ctx: bentoml.Context, endpoint: str, variant: str, started: float, body: dict):
        ctx.response.status_code = 200
        ctx.response.metadata["X-Artflow-Variant"] = variant
        self.metrics.observe(endpoint, variant, 200, time.perf_counter() - started)
        return body

    def _fail(
        self, ctx: bentoml.Context, endpoint: str, variant: str, exc: ApiError, started: float
    ) -> JSONResponse:
        ctx.response.status_code = exc.status
        if exc.status in (429, 503):
            ctx.response.metadata["Retry-After"] = "1"
        self.metrics.observe(endpoint, variant, exc.status, time.perf_counter() - started)
        return JSONResponse(exc.body(), status_code=exc.status)

    async def _image(
        self,
        ctx: bentoml.Context,
        endpoint: str,
        variant: str,
        started: float,
        result: np.ndarray,
        fmt: str,
        version: str | None,
    ) -> Response:
        body = await anyio.to_thread.run_sync(encode_image, result, fmt)
        latency_ms = (time.perf_counter() - started) * 1000
        ctx.response.status_code = 200
        ctx.response.metadata.update(
            {
                "X-Artflow-Variant": variant,
                "X-Artflow-Model-Version": str(version),
                "X-Artflow-Latency-Ms": f"{latency_ms:.1f}",
            }
        )
        self.metrics.observe(endpoint, variant, 200, time.perf_counter() - started)
        return Response(body, media_type=f"image/{fmt}")


class _locked:  # noqa: N801 - a context manager that reads like a function
    """Hold `lock`, giving up (Cancelled) if the request times out while waiting for it."""

    def __init__(self, lock: threading.Lock, cancel: threading.Event) -> None:
        self.lock, self.cancel = lock, cancel

    def __enter__(self) -> None:
        while not self.lock.acquire(timeout=0.1):
            if self.cancel.is_set():
                raise Cancelled
        if self.cancel.is_set():
            self.lock.release()
            raise Cancelled

    def __exit__(self, *_exc: object) -> None:
        self.lock.release()


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim
        return None


def _release_freed_memory() -> None:
    """Hand the freed pages of a large decode back to the OS.

    glibc keeps freed heap memory in its arenas (one per thread that allocated) for reuse;
    after a burst of 40-megapixel decodes the process stayed ~0.5 GiB larger for good, and
    under sustained load it kept growing (benchmarks/bench_serve_memory.py). malloc_trim
    returns it; it costs a few ms: run after decodes over serve.large_decode_mb, and every
    TRIM_EVERY_S while requests are answered (so also once after the last one).
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def _read_upload(path: Path, field: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ApiError(400, f"{field}: cannot read the upload: {exc}", field) from None


def _client_host(request: Any) -> str:
    return request.client.host if request.client else "unknown"


def _count_refusal(path: str, status: int) -> None:
    metrics().rejected.labels(endpoint=routes.label(path), status=str(status)).inc()


# /docs.json corrected in one place (artflow.serve.openapi); BentoML's generated spec as input
Artflow.add_asgi_middleware(SchemaDocument, spec=lambda: Artflow.openapi_spec.asdict())
Artflow.add_asgi_middleware(ErrorEnvelope)  # before the guard: it sees what the guard refuses
Artflow.add_asgi_middleware(
    RequestGuard,
    on_refuse=_count_refusal,
    max_body_bytes=int(SERVE.max_body_mb * 2**20),
    upload_fields=routes.upload_fields(),  # all three from one table (artflow.serve.routes)
    raw_fields=routes.raw_fields(),
    json_paths=routes.json_paths(),
)
