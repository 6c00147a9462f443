"""POST /admin/weight, /admin/reload, /admin/rollback, /admin/status behind the admin token
(artflow.serve.admin), the failed-token limit over every pod, and the status views that
GET /status (artflow.serve.web) and /admin/status show."""

import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from typing import Annotated, Any, Literal

import anyio
import bentoml
from pydantic import Field

from artflow import families
from artflow.errors import ArtflowError
from artflow.serve import admin
from artflow.serve.endpoints.parts import Parts
from artflow.serve.models import ModelSet
from artflow.serve.store import StoreUnavailable

log = logging.getLogger("artflow.serve")
# what /admin/rollback may name: every served model of the table (artflow.families)
ServedModel = Literal[families.served_shorts()]

Refusal = tuple[int, str, dict[str, str]]  # status, message, extra headers


class Reload:
    """Re-resolve the aliases on this pod (the admin call, or a reload from the store): the
    caches in `clears` forget what they resolved, then the model slots refresh."""

    def __init__(self, models: ModelSet, clears: Iterable[Any]) -> None:
        self.models, self.clears = models, tuple(clears)

    def __call__(self) -> dict[str, Any]:
        for cache in self.clears:
            cache.clear()
        return self.models.refresh()


class Admin:
    def __init__(self, parts: Parts, status: "StatusViews") -> None:
        self.serve = parts.settings.serve
        self.models, self.router, self.store = parts.models, parts.router, parts.store
        self.shared, self.failures, self.reload = parts.shared, parts.admin_failures, parts.reload
        self.callers, self.status = parts.callers, status

    async def weight(self, ctx: bentoml.Context, weight: float) -> dict[str, Any]:
        if (denied := self.deny(ctx)) is not None:
            return denied
        try:  # stored first: every pod applies it within serve.sync_interval_s
            await anyio.to_thread.run_sync(self.shared.publish_weight, weight)
        except StoreUnavailable as exc:
            ctx.response.status_code = 503
            return {"error": f"the share was not changed: {exc}"}
        old = self.router.set_weight(weight)
        log.warning("artflow admin: challenger weight %.3f -> %.3f", old, weight)
        return {"weight": weight, "previous": old, "every_pod_within_s": self.serve.sync_interval_s}

    async def reload_all(self, ctx: bentoml.Context) -> dict[str, Any]:
        if (denied := self.deny(ctx)) is not None:
            return denied
        answer = await anyio.to_thread.run_sync(self.reload)
        return {**answer, "every_pod": self._publish_reload()}

    def _publish_reload(self) -> str:
        """Ask every other pod to reload (through the store); what the answer says of it."""
        try:
            self.shared.publish_reload()
        except StoreUnavailable as exc:
            return f"not asked: {exc}"
        return f"within {self.serve.sync_interval_s:g} s plus the load time"

    async def rollback(self, ctx: bentoml.Context, model: str) -> dict[str, Any]:
        if (denied := self.deny(ctx)) is not None:
            return denied
        try:
            name, _target = await anyio.to_thread.run_sync(self._rollback_check, model)
            demoted, restored = await anyio.to_thread.run_sync(self._rollback_move, name)
        except ArtflowError as exc:
            ctx.response.status_code = 409
            return {"error": exc.message, "hint": exc.hint}
        log.warning("artflow admin: rolled back %s v%s -> v%s", name, demoted, restored)
        try:
            refreshed = await anyio.to_thread.run_sync(self.reload)
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

    async def full_status(self, ctx: bentoml.Context) -> dict[str, Any]:
        if (denied := self.deny(ctx)) is not None:
            return denied
        return self.status.full()

    def refusal(self, headers: Any, client: str) -> Refusal | None:
        """None when the admin token matches; else (status, message, extra headers).

        `client` is the caller's identity (artflow.serve.endpoints.plumbing.Callers: behind
        a trusted proxy, the address it forwards for). A caller with too many recent failures
        on ANY pod (counted in the serving store; in this pod only while the store is down)
        gets 429 before its token is compared."""
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
            self.failures.failed(client)
            with contextlib.suppress(StoreUnavailable):  # then counted in this pod only
                self.store.admin_failed(client)
        return status, message, {"WWW-Authenticate": "Bearer"} if status == 401 else {}

    def request_refusal(self, request: Any) -> Refusal | None:
        """`refusal` of a request's headers, from its caller (the page app's GET /status)."""
        return self.refusal(request.headers, self.callers.caller(request))

    def deny(self, ctx: bentoml.Context) -> dict[str, Any] | None:
        """None when the admin token matches; else an error body (status set on ctx)."""
        refused = self.request_refusal(ctx.request)
        if refused is None:
            return None
        status, message, headers = refused
        ctx.response.status_code = status
        ctx.response.metadata.update(headers)
        return {"error": message}

    def _failure_wait(self, caller: str) -> float | None:
        """Seconds until `caller` may try a token again (None: now), over every pod."""
        local = self.failures.retry_after(caller)
        window = self.failures.window_s
        try:
            times = self.store.admin_failures_since(caller, time.time() - window)
        except StoreUnavailable:
            return local
        if len(times) < self.serve.admin_max_failures:
            return local
        return max(1.0, times[0] + window - time.time(), local or 0.0)


class StatusViews:
    """GET /status for anyone (`public`), and with the admin token (`full`)."""

    def __init__(self, parts: Parts, shed: Callable[[], dict[str, int]]) -> None:
        self.parts, self.shed = parts, shed

    def public(self) -> dict[str, Any]:
        """What a health check needs, and nothing that maps the deployment."""
        models = self.parts.models.status()
        return {
            "state": models["state"],
            "ready": models["ready"],
            "model_source": models["model_source"],  # "registry" or "bento"
            "models": {
                key: {"version": slot.get("version"), "loaded": slot.get("loaded")}
                for key, slot in models["models"].items()
            },
        }

    def full(self) -> dict[str, Any]:
        p = self.parts
        return {
            **p.models.status(),
            "challenger_weight": p.router.weight,
            "challenger_available": p.models.challenger_available(),
            "batching": p.settings.serve.batching,
            "batches_shed": self.shed(),
            "gatys": dict(p.gatys_runs.state),
            "gatys_settings": p.gatys_settings.status(),
            "novelty_unresolved": p.novelty.unresolved(),
            "prediction_log": str(p.predictions.folder),
            "prediction_log_s3": p.log_shipper.describe() if p.log_shipper else None,
            "profile": p.settings.profile,
            "families": p.families.status(),
            "online_accuracy": p.online.snapshot(),
            "quality": p.style_answers.describe(),
            "role": p.variants.role or None,
            "peers": p.variants.peers,
            "serving_store": p.store.describe(),
            "shared_admin": p.shared.describe(),
        }


class AdminApi:
    """The /admin/... declarations; their work in `Admin` (the service's `admin`)."""

    admin: Admin

    @bentoml.api(route="/admin/weight")
    async def admin_weight(
        self, ctx: bentoml.Context, weight: Annotated[float, Field(ge=0.0, le=1.0)]
    ) -> dict[str, Any]:
        """Set the challenger's share of traffic (0..1); sticky keys keep their bucket."""
        return await self.admin.weight(ctx, weight)

    @bentoml.api(route="/admin/reload")
    async def admin_reload(self, ctx: bentoml.Context) -> dict[str, Any]:
        """Re-resolve the registry aliases and load what moved."""
        return await self.admin.reload_all(ctx)

    @bentoml.api(route="/admin/rollback")
    async def admin_rollback(
        self, ctx: bentoml.Context, model: ServedModel = "classifier"
    ) -> dict[str, Any]:
        """Restore the previous champion: check that it exists and loads, move the alias,
        reload. A failed check moves nothing (409); after the move the answer is 200, with
        the reload's outcome."""
        return await self.admin.rollback(ctx, model)

    @bentoml.api(route="/admin/status")
    async def admin_status(self, ctx: bentoml.Context) -> dict[str, Any]:
        """Everything GET /status shows with the token: errors, registry, log path, Gatys."""
        return await self.admin.full_status(ctx)
