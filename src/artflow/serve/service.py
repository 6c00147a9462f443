"""The artflow HTTP service (BentoML 1.4): classify, stylize, Monet, A/B routing, admin.

Start it with `artflow serve`, or `bentoml serve artflow.serve.service:Artflow`. Settings come
from the environment so a plain `bentoml serve` subprocess is configured like the CLI:
MLFLOW_TRACKING_URI (the registry), ARTFLOW_PARAMS / ARTFLOW_PROFILE (params.yaml and
profile), ARTFLOW_PREDICTION_LOG (log path override), ARTFLOW_ADMIN_TOKEN (admin access).

Request path of /classify: RequestGuard (size, content type, file fields) -> decode and
validate the image (4xx on failure, before any model) -> sticky A/B assignment -> the
variant's adaptive batching queue (BentoML's batcher, one queue per variant) -> top-k,
prediction log, metrics.
"""

from __future__ import annotations

import asyncio
import functools
import io
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
import bentoml
import numpy as np
from PIL import Image
from pydantic import Field
from starlette.responses import JSONResponse, Response

from artflow.config import load_settings
from artflow.errors import ArtflowError
from artflow.serve import admin
from artflow.serve.batching import VariantBatcher
from artflow.serve.guard import RequestGuard
from artflow.serve.inference import rank
from artflow.serve.metrics import metrics
from artflow.serve.models import ModelSet
from artflow.serve.predlog import PredictionLog, resolve_log_path
from artflow.serve.router import CHALLENGER, CHAMPION, Router, client_key
from artflow.serve.validation import ApiError, DecodedImage, decode_upload
from artflow.serve.web import web_app

log = logging.getLogger("artflow.serve")

SETTINGS = load_settings(
    os.environ.get("ARTFLOW_PARAMS") or None, os.environ.get("ARTFLOW_PROFILE") or None
)
SERVE = SETTINGS.serve
UPLOAD_FIELDS = {"/classify": ("image",), "/stylize": ("content", "style"), "/monet": ("photo",)}
ImageFormat = Literal["png", "jpeg"]


@bentoml.service(
    name="artflow",
    workers=1,  # one process: the A/B weight and the prediction log live in it
    traffic={"timeout": SERVE.timeout_s + 15, "max_concurrency": 256},
    endpoints={"livez": "/livez", "readyz": "/readyz"},
)
@bentoml.asgi_app(web_app, path="/")
class Artflow:
    def __init__(self) -> None:
        self.settings = SETTINGS
        self.models = ModelSet(SETTINGS)
        # a pod behind a weighted cluster route serves one variant: the manifests set 0
        weight = os.environ.get("ARTFLOW_CHALLENGER_WEIGHT", "").strip()
        self.router = Router(float(weight) if weight else SERVE.challenger_weight)
        log_path = resolve_log_path(SERVE.prediction_log)
        self.predictions = PredictionLog(log_path, SERVE.log_rotate_mb)
        self.metrics = metrics()
        self.gatys_gate = threading.BoundedSemaphore(1)  # one Gatys run at a time
        self.batchers = {
            variant: VariantBatcher(
                functools.partial(self._infer, variant),
                SERVE.max_batch_size,
                SERVE.max_latency_ms,
                on_batch=self.metrics.batch_size.labels(variant=variant).observe,
            )
            for variant in (CHAMPION, CHALLENGER)
        }
        web_app.state.service = self
        self.models.start_background_load()

    def __is_ready__(self) -> bool:
        """/readyz: 200 only once the classifier champion is loaded."""
        return self.models.ready

    # ------------------------------------------------------------------ public API
    @bentoml.api(route="/classify")
    async def classify(
        self,
        image: Path,
        ctx: bentoml.Context,
        top_k: Annotated[int, Field(ge=1, le=100)] = SERVE.top_k,
    ) -> dict[str, Any]:
        """An image -> top-k artists with probabilities, the variant and model version."""
        started, variant = time.perf_counter(), "none"
        try:
            decoded = await self._decode(image, "image")
            variant = self.router.assign(self._client_key(ctx), self.models.challenger_available())
            slot = self.models.classifier(variant)
            if not slot.loaded:
                raise ApiError(503, f"classifier {variant} not loaded: {slot.error or 'loading'}")
            runner = slot.model
            prepared = await anyio.to_thread.run_sync(runner.prepare, decoded.rgb)
            out = await self._with_timeout(self._classify_prepared(variant, prepared), "classify")
        except ApiError as exc:
            return self._fail(ctx, "classify", variant, exc, started)
        probs = np.asarray(out["probs"], dtype=np.float32)
        ranked = rank(probs, out["labels"], top_k)
        latency_ms = (time.perf_counter() - started) * 1000
        body = {
            "top": ranked,
            "artist": ranked[0]["artist"],
            "confidence": ranked[0]["probability"],
            "variant": variant,
            "model": {"name": slot.name, "version": out["version"]},
            "latency_ms": round(latency_ms, 2),
        }
        self._record(
            "classify",
            variant,
            slot.name,
            out["version"],
            latency_ms,
            decoded,
            artist=ranked[0]["artist"],
            confidence=ranked[0]["probability"],
            embedding=out.get("embedding") if SERVE.log_embedding else None,
        )
        self.metrics.predictions.labels(
            variant=variant, model_version=out["version"], artist=ranked[0]["artist"]
        ).inc()
        return self._ok(ctx, "classify", variant, started, body)

    @bentoml.api(route="/stylize")
    async def stylize(
        self,
        content: Path,
        style: Path,
        ctx: bentoml.Context,
        method: Literal["fast", "gatys"] = "fast",
        strength: Annotated[float, Field(ge=0.0, le=1.0)] = SETTINGS.stylizer.strength,
        size: Annotated[int, Field(ge=32, le=1024)] | None = None,
        steps: Annotated[int, Field(ge=1)] | None = None,
        format: ImageFormat = "png",
    ) -> Image.Image:
        """Content + style images -> the stylized image (fast feed-forward, or bounded Gatys)."""
        started, variant = time.perf_counter(), method
        try:
            content_img = await self._decode(content, "content")
            style_img = await self._decode(style, "style")
            if method == "fast":
                slot = self._style_slot("stylizer")
                name, version = slot.name, slot.version or "?"

                def run() -> np.ndarray:
                    with slot.lock:
                        return slot.model.stylize(
                            content_img.rgb, style_img.rgb, strength=strength, size=size
                        )

                result = await self._with_timeout(_in_thread(run), "stylize")
            else:
                name, version = "gatys", f"{SETTINGS.nst.backbone}-{SETTINGS.nst.weights}"
                result = await self._with_timeout(
                    self._gatys(content_img.rgb, style_img.rgb, size, steps), "stylize"
                )
        except ApiError as exc:
            return self._fail(ctx, "stylize", variant, exc, started)
        latency_ms = (time.perf_counter() - started) * 1000
        self._record("stylize", variant, name, version, latency_ms, content_img, method=method)
        return self._image(ctx, "stylize", variant, started, result, format, version)

    @bentoml.api(route="/monet")
    async def monet(
        self,
        photo: Path,
        ctx: bentoml.Context,
        size: Annotated[int, Field(ge=32, le=1024)] | None = None,
        format: ImageFormat = "png",
    ) -> Image.Image:
        """A photo -> the same scene as a Monet painting (CycleGAN generator)."""
        started, variant = time.perf_counter(), "none"
        try:
            decoded = await self._decode(photo, "photo")
            slot = self._style_slot("monet")
            variant = slot.alias or "none"

            def run() -> np.ndarray:
                with slot.lock:
                    return slot.model.translate(decoded.rgb, size=size)

            result = await self._with_timeout(_in_thread(run), "monet")
        except ApiError as exc:
            return self._fail(ctx, "monet", variant, exc, started)
        latency_ms = (time.perf_counter() - started) * 1000
        self._record("monet", variant, slot.name, slot.version, latency_ms, decoded)
        return self._image(ctx, "monet", variant, started, result, format, slot.version)

    # ------------------------------------------------------------------ classifier calls
    def _infer(self, variant: str, arrays: list[np.ndarray]) -> list[dict[str, Any]]:
        """One forward pass over a batch of prepared arrays of one variant."""
        slot = self.models.classifier(variant)
        with slot.lock:
            runner, version = slot.model, slot.version
            if runner is None:
                raise ApiError(503, f"classifier {variant} not loaded")
            probs, emb = runner.run(arrays)
        labels = list(runner.loaded.labels)
        return [
            {
                "probs": probs[i],
                "labels": labels,
                "version": version,
                "embedding": None if emb is None else np.round(emb[i], 4).tolist(),
            }
            for i in range(len(arrays))
        ]

    async def _classify_prepared(self, variant: str, prepared: np.ndarray) -> dict[str, Any]:
        if SERVE.batching:
            return await self.batchers[variant](prepared)
        out = await anyio.to_thread.run_sync(self._infer, variant, [prepared])
        return out[0]

    # ------------------------------------------------------------------ admin
    @bentoml.api(route="/admin/weight")
    async def admin_weight(
        self, ctx: bentoml.Context, weight: Annotated[float, Field(ge=0.0, le=1.0)]
    ) -> dict[str, Any]:
        """Set the challenger's share of traffic (0..1); sticky keys keep their bucket."""
        if (denied := self._deny(ctx)) is not None:
            return denied
        old = self.router.set_weight(weight)
        log.warning("artflow admin: challenger weight %.3f -> %.3f", old, weight)
        return {"weight": weight, "previous": old}

    @bentoml.api(route="/admin/reload")
    async def admin_reload(self, ctx: bentoml.Context) -> dict[str, Any]:
        """Re-resolve the registry aliases and load what moved."""
        if (denied := self._deny(ctx)) is not None:
            return denied
        return await anyio.to_thread.run_sync(self.models.refresh)

    @bentoml.api(route="/admin/rollback")
    async def admin_rollback(
        self, ctx: bentoml.Context, model: Literal["classifier", "stylizer", "monet"] = "classifier"
    ) -> dict[str, Any]:
        """Restore the previous champion in the registry (the gate's history), then reload."""
        if (denied := self._deny(ctx)) is not None:
            return denied
        from artflow import tracking

        name = {
            "classifier": tracking.CLASSIFIER,
            "stylizer": tracking.STYLIZER,
            "monet": tracking.CYCLEGAN,
        }[model]

        def rollback() -> tuple[str, str]:
            with self.models.registry_lock:  # not while the first load is importing mlflow
                from artflow import promote

                return promote.rollback(name)

        try:
            demoted, restored = await anyio.to_thread.run_sync(rollback)
        except ArtflowError as exc:
            ctx.response.status_code = 409
            return {"error": exc.message, "hint": exc.hint}
        log.warning("artflow admin: rolled back %s v%s -> v%s", name, demoted, restored)
        refreshed = await anyio.to_thread.run_sync(self.models.refresh)
        return {"model": name, "demoted": demoted, "champion": restored, "reload": refreshed}

    @bentoml.api(route="/admin/status")
    async def admin_status(self, ctx: bentoml.Context) -> dict[str, Any]:
        """Loaded models, the A/B weight and the log path (the same as GET /status)."""
        if (denied := self._deny(ctx)) is not None:
            return denied
        return self.public_status()

    def public_status(self) -> dict[str, Any]:
        return {
            **self.models.status(),
            "challenger_weight": self.router.weight,
            "challenger_available": self.models.challenger_available(),
            "batching": SERVE.batching,
            "batches_shed": {variant: b.shed for variant, b in self.batchers.items()},
            "prediction_log": str(self.predictions.path),
            "profile": SETTINGS.profile,
        }

    def _deny(self, ctx: bentoml.Context) -> dict[str, Any] | None:
        """None when the admin token matches; else an error body (status set on ctx)."""
        refused = admin.check(ctx.request.headers)
        if refused is None:
            return None
        status, message = refused
        ctx.response.status_code = status
        if status == 401:
            ctx.response.metadata["WWW-Authenticate"] = "Bearer"
        return {"error": message}

    # ------------------------------------------------------------------ helpers
    async def _decode(self, upload: Path, field: str) -> DecodedImage:
        def read() -> DecodedImage:
            try:
                data = Path(upload).read_bytes()
            except OSError as exc:
                raise ApiError(400, f"{field}: cannot read the upload: {exc}", field) from None
            return decode_upload(data, field, SERVE.max_pixels)

        return await anyio.to_thread.run_sync(read)

    def _style_slot(self, key: str) -> Any:
        slot = self.models.slot(key)
        if not slot.loaded:
            what = "stylizer" if key == "stylizer" else "Monet generator"
            raise ApiError(503, f"model not loaded: no {what} ({slot.error or 'loading'})")
        return slot

    async def _gatys(
        self, content: np.ndarray, style: np.ndarray, size: int | None, steps: int | None
    ) -> np.ndarray:
        """Bounded optimisation: at most gatys_max_steps at gatys_max_size, one run at a time."""
        if not self.gatys_gate.acquire(blocking=False):
            raise ApiError(429, "a Gatys run is in progress; retry later or use method=fast")
        try:
            from artflow.style.inference import stylize_gatys

            side = min(size or SERVE.gatys_max_size, SERVE.gatys_max_size)
            n = min(steps or SERVE.gatys_max_steps, SERVE.gatys_max_steps)

            def run() -> np.ndarray:
                return stylize_gatys(content, style, SETTINGS.nst, steps=n, size=side)

            try:
                return await _in_thread(run)
            except ApiError:
                raise
            except Exception as exc:  # e.g. VGG19 imagenet weights not available offline
                log.exception("artflow: gatys failed")
                raise ApiError(503, f"Gatys style transfer unavailable: {exc}") from None
        finally:
            self.gatys_gate.release()

    async def _with_timeout(self, awaitable: Any, endpoint: str) -> Any:
        try:
            return await asyncio.wait_for(awaitable, timeout=SERVE.timeout_s)
        except TimeoutError:
            raise ApiError(504, f"{endpoint} took longer than {SERVE.timeout_s} s") from None

    @staticmethod
    def _client_key(ctx: bentoml.Context) -> str:
        request = ctx.request
        host = request.client.host if request.client else None
        return client_key(request.headers.get("x-client-key"), host)

    def _record(
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

        try:
            features = describe_image(image.rgb)
            self.predictions.write(
                endpoint,
                variant=variant,
                model_name=name,
                model_version=version,
                latency_ms=round(latency_ms, 2),
                image_format=image.format,
                image_mode=image.mode,
                features=features,
                **{k: v for k, v in extra.items() if v is not None},
            )
        except Exception:  # the log must never fail a prediction that succeeded
            log.exception("artflow: writing the prediction log failed")

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

    def _image(
        self,
        ctx: bentoml.Context,
        endpoint: str,
        variant: str,
        started: float,
        result: np.ndarray,
        fmt: str,
        version: str | None,
    ) -> Response:
        buf = io.BytesIO()
        img = Image.fromarray(np.asarray(result, dtype=np.uint8))
        img.save(buf, format="PNG" if fmt == "png" else "JPEG", quality=92)
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
        return Response(buf.getvalue(), media_type=f"image/{fmt}")


async def _in_thread(fn: Callable[[], Any]) -> Any:
    """Run a model call in a worker thread; an ArtflowError it raises (an image too small for
    the network, ...) is the client's input problem: 422, not a server error."""

    def guarded() -> Any:
        try:
            return fn()
        except ArtflowError as exc:
            raise ApiError(422, exc.message) from None

    return await anyio.to_thread.run_sync(guarded)


def _count_refusal(path: str, status: int) -> None:
    endpoint = path.strip("/").split("/")[0] or "root"
    endpoint = endpoint if endpoint in ("classify", "stylize", "monet", "admin") else "other"
    metrics().rejected.labels(endpoint=endpoint, status=str(status)).inc()


Artflow.add_asgi_middleware(
    RequestGuard,
    on_refuse=_count_refusal,
    max_body_bytes=int(SERVE.max_body_mb * 2**20),
    upload_fields=UPLOAD_FIELDS,
    json_paths=["/admin"],
)
