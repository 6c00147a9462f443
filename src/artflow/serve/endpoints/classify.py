"""POST /classify: which painter made it, from the A/B router's variant, a pod's role, or a
family's best gated version; with the novelty warning, Grad-CAM and nearest paintings.

Request path (after the guard and BentoML's parsing): sticky A/B assignment -> read, header
check, decode at the model's size and resize, in one worker thread (4xx on failure, before
any model) -> the variant's adaptive batching queue (BentoML's batcher, one queue per
variant; a request that timed out is left out of its batch) -> top-k, metrics; drift
features and the prediction log line are computed in the log writer's thread.
"""

import functools
import logging
import time
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
import bentoml
import numpy as np
from pydantic import Field
from starlette.responses import JSONResponse

from artflow import families
from artflow.serve.batching import VariantBatcher
from artflow.serve.endpoints.parts import Parts
from artflow.serve.explain import Wanted, neighbours, upload_size
from artflow.serve.family import FamilyUnavailable
from artflow.serve.feedback import Answer, new_id, unstored_id
from artflow.serve.guard import BODY_KEY
from artflow.serve.inference import Pending, rank, run_live
from artflow.serve.router import CHALLENGER, CHAMPION
from artflow.serve.schemas import ClassifyAnswer
from artflow.serve.validation import ApiError, DecodedImage, Fit

log = logging.getLogger("artflow.serve")

MAX_TOP_K = 100
MAX_NEIGHBOURS = 10
FamilyName = Literal[tuple(families.names("classifier"))]  # declared in artflow.families
NOT_A_PAINTING = "This does not look like a painting: the answer is probably meaningless."
DEFAULT_CLASSIFIER_SIZE = 224  # decode size while no classifier is loaded (the answer is 503)


class NoveltyCheck:
    """The 'does not look like a painting' check of a version that has a novelty model, and
    the nearest training paintings from the same index (artflow.serve.explain)."""

    def __init__(self, enabled: bool) -> None:
        from artflow.monitor.novelty import NoveltyCache

        self.enabled = enabled
        self.cache = NoveltyCache()
        self._none: set[tuple[str, str]] = set()  # (name, version) known to have none

    def skips(self, name: str, version: str) -> bool:
        return (name, str(version)) in self._none

    def clear(self) -> None:
        """Look each version's novelty model up again (admin reload)."""
        self.cache.clear()
        self._none.clear()

    def unresolved(self) -> Any:
        return self.cache.unresolved()

    def __call__(
        self, name: str, version: str, rgb: np.ndarray, embedding: list[float] | None, k: int = 0
    ) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        if not (self.enabled or k) or embedding is None:
            return None, []
        try:
            found = self.cache.get(name, str(version))
            if found is None:
                if self.cache.has_none(name, str(version)):  # later requests skip the hop
                    self._none.add((name, str(version)))
                return None, []
            model, projection = found
            from artflow.monitor.features import describe_image

            projected = projection.transform(np.asarray([embedding], dtype=np.float64))[0]
            verdict = model.check(describe_image(rgb), projected) if self.enabled else None
            return verdict, neighbours(model, projected, k) if k else []
        except Exception:  # never fail an answer because of its warning
            log.exception("artflow: novelty check failed")
            return None, []


class Classifying:
    def __init__(self, parts: Parts) -> None:
        self.serve = parts.settings.serve
        self.models, self.router, self.variants = parts.models, parts.router, parts.variants
        self.families, self.book, self.explainer = parts.families, parts.book, parts.explainer
        self.novelty: NoveltyCheck = parts.novelty
        self.decoder, self.worker, self.answers = parts.decoder, parts.worker, parts.answers
        self.recorder, self.callers = parts.recorder, parts.callers
        self.metrics, self.study = parts.metrics, parts.metrics_study
        self.role = self.variants.role
        self.batchers = {variant: self._batcher(variant) for variant in (CHAMPION, CHALLENGER)}

    def _batcher(self, variant: str) -> VariantBatcher:
        return VariantBatcher(
            functools.partial(self._infer, variant),
            self.serve.max_batch_size,
            self.serve.max_latency_ms,
            on_batch=self.metrics.batch_size.labels(variant=variant).observe,
            concurrent=self.serve.concurrent_batches,
        )

    def shed(self) -> dict[str, int]:
        """Requests each variant's batcher left out (/status)."""
        return {variant: b.shed for variant, b in self.batchers.items()}

    async def classify(
        self,
        ctx: bentoml.Context,
        image: Path,
        top_k: int | None,
        family: str | None,
        explain: bool,
        neighbours: int,
    ) -> Any:
        started, variant = time.perf_counter(), "none"
        request = ctx.request
        try:
            k = top_k or self.serve.top_k
            key = self.callers.client_key(request)
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
            return self.answers.fail(ctx, "classify", variant, exc, started)
        variant = answer["variant"]
        self.answers.count("classify", variant, 200, started)
        ctx.response.status_code = 200
        ctx.response.metadata["X-Artflow-Variant"] = variant
        return JSONResponse(answer)

    async def _slot(self, family: str | None, key: str) -> tuple[str, Any]:
        """(variant, slot) that answers: the family's, the pod's role's, or the router's."""
        if family:
            return f"family:{family}", await self._family_slot(family)
        if self.role:
            return self.role, self.variants.slot()
        variant = self.router.assign(key, self.models.challenger_available())
        return variant, self.models.classifier(variant)

    async def _classify(
        self, upload: Path, top_k: int, family: str | None, key: str, started: float, wants: Wanted
    ) -> dict[str, Any]:
        variant, slot = await self._slot(family, key)
        runner = slot.model
        side = runner.size if runner is not None else DEFAULT_CLASSIFIER_SIZE
        # Both sides at least the model's input: the resize to SxS does the rest, in the same
        # worker thread as the decode (one thread hop per request).
        prepare = runner.prepare if runner is not None else None
        decoded, prepared = await self.decoder.decode_bytes(
            upload, "image", Fit(None, side), prepare
        )
        if runner is None:
            raise ApiError(503, f"classifier {variant} not loaded: {slot.error or 'loading'}")
        item = Pending(prepared)
        if family:
            work = anyio.to_thread.run_sync(self._infer_slot, slot, [item])
            out = (await self.worker.within_timeout(work, "classify", item))[0]
        else:
            work = self._classify_prepared(variant, item)
            out = await self.worker.within_timeout(work, "classify", item)
        ranked = rank(np.asarray(out["probs"], dtype=np.float32), out["labels"], top_k)
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
        novelty = await self._extras(body, slot, out, decoded, prepared, item, wants)
        await self._remember(body, key)
        self.recorder.record(
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
            embedding=out.get("embedding") if self.serve.log_embedding else None,
        )
        self.metrics.predictions.labels(
            variant=variant, model_version=out["version"], artist=ranked[0]["artist"]
        ).inc()
        return body

    async def _extras(
        self,
        body: dict[str, Any],
        slot: Any,
        out: dict[str, Any],
        decoded: DecodedImage,
        prepared: Any,
        item: Pending,
        wants: Wanted,
    ) -> dict[str, Any] | None:
        """Novelty, neighbours and explanation into `body`; the novelty verdict (or None)."""
        novelty, near = None, []
        if not self.novelty.skips(slot.name, out["version"]):
            novelty, near = await anyio.to_thread.run_sync(
                self.novelty,
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
                slot.model.loaded.model, prepared, body["artist"], out["labels"], size
            )
            body["explanation"] = await self.worker.within_timeout(work, "classify", item)
        if novelty is not None:
            body["novelty"] = novelty
            if novelty["novel"]:
                body["warning"] = NOT_A_PAINTING
            self.study.novelty.labels(
                variant=body["variant"], novel=str(novelty["novel"]).lower()
            ).inc()
        return novelty

    async def _remember(self, body: dict[str, Any], key: str) -> None:
        """Store the answer for feedback; record the A/B assignment of a router's answer."""
        model, family = body["model"], body.get("family")
        variant = body["variant"]
        answer = Answer(
            body["prediction_id"],
            variant,
            str(model["version"]),
            body["artist"],
            family,
            model["name"],
        )
        # stored before the answer is sent, so feedback to any pod finds it; a store outage
        # still serves the answer, with an id that says it cannot take feedback
        if not await anyio.to_thread.run_sync(self.book.remember, answer):
            body["prediction_id"] = unstored_id()
            body["feedback"] = {"accepted": False, "reason": "the serving store is unavailable"}
        if not family:  # the A/B assignment, recorded once per client and share, off the path
            self.recorder.assignment(key, variant)

    async def _family_slot(self, family: str) -> Any:
        try:
            return await anyio.to_thread.run_sync(self.families.get, family)
        except FamilyUnavailable as exc:
            raise ApiError(exc.status, str(exc), "family") from None

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
        if self.serve.batching:
            return await self.batchers[variant](item)
        out = await anyio.to_thread.run_sync(self._infer, variant, [item])
        return out[0]


class ClassifyApi:
    """The /classify declaration; its work in `Classifying` (the service's `classifying`)."""

    classifying: Classifying

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
        return await self.classifying.classify(ctx, image, top_k, family, explain, neighbours)
