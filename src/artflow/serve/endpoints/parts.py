"""The parts the service constructs once (artflow.serve.service) and hands to every endpoint
group: models, routing, the serving store and what lives in it, the shared plumbing."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from artflow.config import Settings
from artflow.serve.admin import FailureLimiter
from artflow.serve.endpoints.plumbing import Answers, Callers, Decoder, Worker
from artflow.serve.endpoints.recording import Recorder
from artflow.serve.explain import Explainer
from artflow.serve.family import FamilyModels
from artflow.serve.feedback import FeedbackBook, OnlineAccuracy
from artflow.serve.gatys_jobs import JobBoard
from artflow.serve.gatys_runs import GatysRuns
from artflow.serve.logship import LogShipper
from artflow.serve.metrics import Metrics
from artflow.serve.models import ModelSet
from artflow.serve.predlog import PredictionLog
from artflow.serve.router import Router
from artflow.serve.shared import SharedAdmin
from artflow.serve.store import ServingStore
from artflow.serve.style_answers import StyleAnswers
from artflow.serve.variants import VariantRouting


@dataclass
class Parts:
    settings: Settings
    models: ModelSet
    router: Router
    variants: VariantRouting
    store: ServingStore
    predictions: PredictionLog
    log_shipper: LogShipper | None
    metrics: Metrics
    metrics_study: Any  # artflow.serve.feedback.study_metrics()
    families: FamilyModels
    book: FeedbackBook
    online: OnlineAccuracy
    shared: SharedAdmin
    gatys_jobs: JobBoard
    gatys_settings: Any  # artflow.style.gatys.settings.SettingsCache
    gatys_runs: GatysRuns
    explainer: Explainer
    novelty: Any  # artflow.serve.endpoints.classify.NoveltyCheck
    decoder: Decoder
    worker: Worker
    answers: Answers
    recorder: Recorder
    callers: Callers
    admin_failures: FailureLimiter
    reload: Callable[[], dict[str, Any]]  # re-resolve the aliases on this pod
    style_answers: StyleAnswers  # /stylize and /monet answers: ids, ratings, sampled scores
