"""The artflow HTTP service (BentoML 1.4): classify, stylize, Monet, A/B routing, admin.

Start it with `artflow serve`, or `bentoml serve artflow.serve.service:Artflow`. Settings come
from the environment so a plain `bentoml serve` subprocess is configured like the CLI:
MLFLOW_TRACKING_URI (the registry), ARTFLOW_PARAMS / ARTFLOW_PROFILE (params.yaml and
profile), ARTFLOW_PREDICTION_LOG (log path override), ARTFLOW_ADMIN_TOKEN (admin access).

This module only reads the settings (once, here) and wires: it constructs the parts
(`artflow.serve.endpoints.parts.Parts`) and the endpoint groups of `artflow.serve.endpoints`,
whose `@bentoml.api` declarations `Artflow` inherits, and the middleware in front of them.
Request path of an upload: ErrorEnvelope (one error model) -> RequestGuard (body size; the
upload's shape; a raw image body or query-string parameters re-encoded as the multipart
form; its fields from artflow.serve.routes) -> BentoML parses and validates the parameters
against the signature's bounds -> the endpoint group.
"""

from __future__ import annotations

import logging
import os
import threading

import bentoml

from artflow.config import Settings, load_settings
from artflow.serve import admin, gallery, routes
from artflow.serve.endpoints import style
from artflow.serve.endpoints.admin import Admin, AdminApi, Reload, StatusViews
from artflow.serve.endpoints.classify import ClassifyApi, Classifying, NoveltyCheck
from artflow.serve.endpoints.feedback import FeedbackApi, FeedbackTaking
from artflow.serve.endpoints.parts import Parts
from artflow.serve.endpoints.plumbing import Answers, Callers, Decoder, Trimmer, Worker
from artflow.serve.endpoints.ratings import RatingsApi, RatingTaking
from artflow.serve.endpoints.recording import Recorder
from artflow.serve.envelope import ErrorEnvelope
from artflow.serve.explain import Explainer
from artflow.serve.family import FamilyModels
from artflow.serve.feedback import FeedbackBook, OnlineAccuracy, study_metrics
from artflow.serve.gatys_jobs import JobBoard
from artflow.serve.gatys_runs import GatysRuns
from artflow.serve.guard import RequestGuard
from artflow.serve.logship import ENV as LOG_SHIP_ENV
from artflow.serve.logship import LogShipper
from artflow.serve.metrics import metrics
from artflow.serve.models import ModelSet, _load_classifier
from artflow.serve.openapi import SchemaDocument
from artflow.serve.predlog import PredictionLog, Retention, pod_name, resolve_log_path
from artflow.serve.quality_pause import PauseWhileServing
from artflow.serve.router import Router
from artflow.serve.shared import SharedAdmin
from artflow.serve.store import ServingStore, resolve_url
from artflow.serve.style_answers import StyleAnswers
from artflow.serve.variants import VariantRouting
from artflow.serve.web import PageBackend, web_app

log = logging.getLogger("artflow.serve")

SETTINGS = load_settings(
    os.environ.get("ARTFLOW_PARAMS") or None, os.environ.get("ARTFLOW_PROFILE") or None
)
SERVE = SETTINGS.serve


def build_parts(settings: Settings) -> Parts:
    """Every part the endpoints share, from the settings and the environment."""
    serve = settings.serve
    models = ModelSet(settings)
    weight = os.environ.get("ARTFLOW_CHALLENGER_WEIGHT", "").strip()
    router = Router(float(weight) if weight else serve.challenger_weight)
    variants = VariantRouting.from_env(router, models, serve.timeout_s + 5)
    log_path = resolve_log_path(serve.prediction_log)
    store = ServingStore(
        resolve_url(serve.store, log_path),
        pod_name(),
        variants.role or "single",
        # a cluster migrates with its Job (infra/k8s/base/serving/store.yaml)
        auto_migrate=serve.store_migrate
        and os.environ.get("ARTFLOW_STORE_MIGRATE", "").lower() != "false",
    )
    predictions = PredictionLog(
        log_path, segment_mb=serve.log_rotate_mb, retention=Retention.from_settings(serve)
    )
    ship_to = os.environ.get(LOG_SHIP_ENV, "").strip() or serve.prediction_log_s3
    shipper = LogShipper(predictions.folder, ship_to, serve.log_upload_s) if ship_to else None
    from artflow.style.gatys.settings import SettingsCache

    families = FamilyModels(_load_classifier)
    gatys_settings = SettingsCache(settings.nst)
    novelty = NoveltyCheck(settings.novelty.enabled)
    reload = Reload(models, (families, gatys_settings, novelty))
    online = OnlineAccuracy(store, settings.abtest.confidence)
    style_answers = StyleAnswers(
        store, serve.quality_sample, serve.quality_queue, settings.nst.weights
    )

    def refresh_from_store() -> None:  # the sync loop's reads for /metrics
        online.refresh()
        style_answers.ratings.refresh()

    shared = SharedAdmin(
        store,
        router.set_weight,
        reload,
        refresh_from_store,
        serve.sync_interval_s,
        serve.store_retention_days,
    )
    trimmer = Trimmer()
    trimmer.start()
    served = metrics()
    worker, decoder = Worker(serve.timeout_s, served), Decoder(serve)
    gatys_jobs = JobBoard(store, serve.gatys_jobs_per_deployment, serve.job_stale_s)
    return Parts(
        settings=settings,
        models=models,
        router=router,
        variants=variants,
        store=store,
        predictions=predictions,
        log_shipper=shipper,
        metrics=served,
        metrics_study=study_metrics(),
        families=families,
        book=FeedbackBook(store),
        online=online,
        shared=shared,
        gatys_jobs=gatys_jobs,
        gatys_settings=gatys_settings,
        gatys_runs=GatysRuns(serve, gatys_jobs, gatys_settings, worker.run, decoder.decode_bytes),
        explainer=Explainer(serve.explanations_at_once),
        novelty=novelty,
        decoder=decoder,
        worker=worker,
        answers=Answers(served),
        recorder=Recorder(predictions, store, shared, trimmer),
        callers=Callers(serve.trusted_proxies),
        admin_failures=admin.FailureLimiter(serve.admin_max_failures),
        reload=reload,
        style_answers=style_answers,
    )


@bentoml.service(
    name="artflow",
    workers=1,  # one process per pod; state other pods need lives in the serving store
    traffic={"timeout": SERVE.timeout_s + 15, "max_concurrency": 256},
    endpoints={"livez": "/livez", "readyz": "/readyz"},
)
@bentoml.asgi_app(web_app, path="/")
class Artflow(ClassifyApi, style.api(SETTINGS), FeedbackApi, RatingsApi, AdminApi):
    def __init__(self) -> None:
        self.settings = SETTINGS
        self.parts = parts = build_parts(SETTINGS)
        self.models = parts.models
        self.classifying = Classifying(parts)
        self.styling = style.Styling(parts)
        self.feedback_taking = FeedbackTaking(parts)
        self.rating_taking = RatingTaking(parts)
        status = StatusViews(parts, self.classifying.shed)
        self.admin = Admin(parts, status)
        web_app.state.backend = PageBackend(
            public_status=status.public,
            full_status=status.full,
            refusal=self.admin.request_refusal,
            gatys_jobs=parts.gatys_jobs,
            # beside the prediction log's root folder (which holds one sub-folder per pod),
            # where `artflow gallery` writes it
            gallery=parts.predictions.root.parent / gallery.FOLDER,
        )
        if parts.log_shipper is not None:
            parts.log_shipper.start()
        self.models.start_background_load()
        parts.shared.start()
        threading.Thread(
            target=self._load_gatys_settings, name="artflow-gatys", daemon=True
        ).start()

    def _load_gatys_settings(self) -> None:
        """Resolve each backbone's registered best Gatys settings at start-up (not on the first
        request); under the registry lock, so never beside the model load's mlflow import."""
        with self.models.registry_lock:
            for backbone in ("vgg19", "resnet50"):
                chosen = self.parts.gatys_settings.get(backbone)
                log.info("artflow: Gatys %s uses %s", backbone, chosen.label)

    def __is_ready__(self) -> bool:
        """/readyz: 200 only once the classifier champion is loaded."""
        return self.models.ready


def _count_refusal(path: str, status: int) -> None:
    metrics().rejected.labels(endpoint=routes.label(path), status=str(status)).inc()


# /docs.json corrected in one place (artflow.serve.openapi); BentoML's generated spec as input
Artflow.add_asgi_middleware(SchemaDocument, spec=lambda: Artflow.openapi_spec.asdict())
Artflow.add_asgi_middleware(ErrorEnvelope)  # before the guard: it sees what the guard refuses
if SERVE.quality_pause:  # the quality worker waits while requests run
    Artflow.add_asgi_middleware(PauseWhileServing)
Artflow.add_asgi_middleware(
    RequestGuard,
    on_refuse=_count_refusal,
    max_body_bytes=int(SERVE.max_body_mb * 2**20),
    upload_fields=routes.upload_fields(),  # all three from one table (artflow.serve.routes)
    raw_fields=routes.raw_fields(),
    json_paths=routes.json_paths(),
)
