"""The serving store: what another request, another pod or a later job needs to see.

Answers (id, variant, model, family, predicted artist, time), feedback, A/B assignments,
Gatys jobs, the admin state, and the stylization and Monet answers with their sampled quality
scores and user ratings live in one database through SQLAlchemy, its schema made by
Alembic migrations (`artflow/serve/migrations`): an SQLite file beside the prediction log by
default (nothing to start for `artflow serve` or `make demo`), PostgreSQL on a cluster (its
own database and role beside MLflow's, `serve.store` or ARTFLOW_SERVING_STORE[_FILE]).

Every write is committed before the client is told it succeeded, so it survives the pod
being killed (`kill -9`): SQLite runs in WAL mode with synchronous=FULL, PostgreSQL commits
durably by default. A store that cannot be reached raises `StoreUnavailable` (HTTP 503 on the
paths that need it) and is not asked again for `RETRY_S`, so an outage costs one connect
timeout, not one per request.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from artflow.config import PROJECT_ROOT

log = logging.getLogger(__name__)

URL_ENV, URL_FILE_ENV = "ARTFLOW_SERVING_STORE", "ARTFLOW_SERVING_STORE_FILE"
MIGRATIONS = Path(__file__).parent / "migrations"
HEAD = "0002"
RETRY_S = 2.0  # after a failure, answer "unavailable" at once for this long
T = TypeVar("T")

metadata = sa.MetaData()
answers = sa.Table(
    "serving_answers",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("created", sa.Float),
    sa.Column("variant", sa.String(64)),
    sa.Column("model_name", sa.String(200)),
    sa.Column("model_version", sa.String(64)),
    sa.Column("family", sa.String(32)),
    sa.Column("artist", sa.String(200)),
    sa.Column("pod", sa.String(128)),
)
feedback = sa.Table(
    "serving_feedback",
    metadata,
    sa.Column("prediction_id", sa.String(64), primary_key=True),
    sa.Column("created", sa.Float),
    sa.Column("variant", sa.String(64)),
    sa.Column("model_name", sa.String(200)),
    sa.Column("model_version", sa.String(64)),
    sa.Column("family", sa.String(32)),
    sa.Column("artist", sa.String(200)),
    sa.Column("correct", sa.Boolean),
    sa.Column("true_artist", sa.String(200)),
    sa.Column("pod", sa.String(128)),
)
assignments = sa.Table(
    "serving_assignments",
    metadata,
    sa.Column("client", sa.String(64), primary_key=True),
    sa.Column("experiment", sa.String(200), primary_key=True),
    sa.Column("variant", sa.String(32)),
    sa.Column("created", sa.Float),
)
jobs = sa.Table(
    "serving_jobs",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(32)),
    sa.Column("state", sa.String(16)),
    sa.Column("step", sa.Integer),
    sa.Column("steps", sa.Integer),
    sa.Column("backbone", sa.String(32)),
    sa.Column("losses", sa.Text),
    sa.Column("cancel_requested", sa.Boolean),
    sa.Column("pod", sa.String(128)),
    sa.Column("role", sa.String(32)),
    sa.Column("error", sa.Text),
    sa.Column("result", sa.LargeBinary),
    sa.Column("created", sa.Float),
    sa.Column("updated", sa.Float),
)
admin_state = sa.Table(
    "serving_admin",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text),
    sa.Column("updated", sa.Float),
)
admin_failures = sa.Table(
    "serving_admin_failures",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("caller", sa.String(128)),
    sa.Column("at", sa.Float),
)
style_answers = sa.Table(
    "serving_style_answers",
    metadata,
    sa.Column("answer_id", sa.String(64), primary_key=True),
    sa.Column("at", sa.Float),
    sa.Column("endpoint", sa.String(32)),
    sa.Column("model_name", sa.String(200)),
    sa.Column("model_version", sa.String(64)),
    sa.Column("method", sa.String(32)),
    sa.Column("pod", sa.String(128)),
    sa.Column("scores", sa.Text),
    sa.Column("scored_at", sa.Float),
    sa.Column("rating", sa.Integer),
    sa.Column("rated_at", sa.Float),
)
RATINGS = (1, 5)  # a rating's bounds (the page's stars)


class StoreUnavailable(Exception):
    """The serving store could not be reached or answered with an error (HTTP 503)."""


class Duplicate(Exception):
    """An insert whose key exists already (a second feedback for one answer: 409)."""


class UnknownAnswer(LookupError):
    """No stylization or Monet answer has that id (expired or never answered: 404)."""


class NotStyleAnswer(ValueError):
    """The id is a classification's, rated through /feedback instead (409)."""


def resolve_url(configured: str, prediction_log: Path) -> str:
    """ARTFLOW_SERVING_STORE, else the URL in the file ARTFLOW_SERVING_STORE_FILE (a mounted
    Secret), else `serve.store`, else an SQLite file beside the prediction log's folder.
    A relative SQLite path is relative to the project root."""
    url = os.environ.get(URL_ENV, "").strip()
    if not url and os.environ.get(URL_FILE_ENV):
        url = Path(os.environ[URL_FILE_ENV]).read_text().strip()
    url = url or configured.strip()
    if not url:
        return f"sqlite:///{prediction_log.parent / 'serving.db'}"
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
        return f"sqlite:///{PROJECT_ROOT / url[len('sqlite:///') :]}"
    return url


def masked(url: str) -> str:
    """The URL with its password hidden, for logs and /admin/status."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa_exc.ArgumentError:
        return "<unparsable store URL>"


def client_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def make_engine(url: str) -> sa.Engine:
    if url.startswith("sqlite"):
        path = sa.engine.make_url(url).database
        if path:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 30})

        @sa.event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")  # a commit is on disk before we answer
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

        return engine
    return sa.create_engine(
        url, pool_pre_ping=True, pool_size=5, max_overflow=5, connect_args={"connect_timeout": 3}
    )


def migrate(url: str) -> str:
    """Upgrade the store at `url` to the newest schema (idempotent); returns the revision."""
    from alembic import command
    from alembic.config import Config

    engine = make_engine(url)
    try:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
        return current_revision(engine) or "none"
    finally:
        engine.dispose()


def current_revision(engine: sa.Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"version_table": "serving_alembic_version"})
        return ctx.get_current_revision()


class StoreConnection:
    """The store's engine, made (and migrated) on first use; after a failure every call is
    refused at once for RETRY_S. `ServingStore` adds the tables' rows."""

    def __init__(self, url: str, pod: str, role: str, auto_migrate: bool = True) -> None:
        self.url, self.pod, self.role = url, pod, role
        self.auto_migrate = auto_migrate
        self._engine: sa.Engine | None = None
        self._lock = threading.Lock()
        self._down_until = 0.0
        self.last_error: str | None = None

    def _ready_engine(self) -> sa.Engine:
        with self._lock:
            if self._engine is not None:
                return self._engine
            if time.monotonic() < self._down_until:
                raise StoreUnavailable(f"serving store unavailable: {self.last_error}")
            try:
                if self.auto_migrate:
                    migrate(self.url)
                engine = make_engine(self.url)
                revision = current_revision(engine)
                if revision != HEAD:
                    engine.dispose()
                    raise StoreUnavailable(
                        f"serving store {masked(self.url)} is at schema {revision}, not {HEAD}: "
                        "run `artflow store migrate` (the migration Job on a cluster)"
                    )
            except StoreUnavailable as exc:
                self._failed(str(exc))
                raise
            except Exception as exc:  # noqa: BLE001 - any driver error is an outage here
                self._failed(f"{masked(self.url)}: {_short(exc)}")
                raise StoreUnavailable(f"serving store unavailable: {self.last_error}") from None
            self._engine = engine
            return engine

    def _failed(self, message: str) -> None:
        self.last_error = message
        self._down_until = time.monotonic() + RETRY_S
        log.warning("artflow serving store: %s", message)

    @contextmanager
    def _tx(self) -> Iterator[sa.Connection]:
        engine = self._ready_engine()
        if time.monotonic() < self._down_until:
            raise StoreUnavailable(f"serving store unavailable: {self.last_error}")
        try:
            with engine.begin() as conn:
                yield conn
        except sa_exc.IntegrityError:
            raise Duplicate() from None
        except sa_exc.SQLAlchemyError as exc:
            self._failed(f"{masked(self.url)}: {_short(exc)}")
            raise StoreUnavailable(f"serving store unavailable: {self.last_error}") from None
        self.last_error = None

    def _run(self, fn: Callable[[sa.Connection], T]) -> T:
        with self._tx() as conn:
            return fn(conn)

    def ping(self) -> bool:
        try:
            self._run(lambda c: c.execute(sa.text("SELECT 1")))
            return True
        except StoreUnavailable:
            return False

    def describe(self) -> dict[str, Any]:
        return {"url": masked(self.url), "error": self.last_error, "pod": self.pod}


class JobRows(StoreConnection):
    """The Gatys jobs' records (artflow.serve.gatys_jobs): progress and cancel from any pod."""

    def job_create(self, job_id: str, kind: str, steps: int, backbone: str | None) -> None:
        now = time.time()
        row = dict(
            id=job_id,
            kind=kind,
            state="queued",
            step=0,
            steps=steps,
            backbone=backbone,
            losses="{}",
            cancel_requested=False,
            pod=self.pod,
            role=self.role,
            created=now,
            updated=now,
        )
        self._run(lambda c: c.execute(jobs.insert().values(**row)))

    def job_update(self, job_id: str, **values: Any) -> bool:
        """Update a job's fields; returns whether a cancel was requested meanwhile."""
        if "losses" in values:
            values["losses"] = json.dumps(values["losses"])

        def put(c: sa.Connection) -> bool:
            c.execute(
                jobs.update().where(jobs.c.id == job_id).values(**values, updated=time.time())
            )
            flag = c.execute(sa.select(jobs.c.cancel_requested).where(jobs.c.id == job_id))
            return bool(flag.scalar())

        return self._run(put)

    def job(self, job_id: str, with_result: bool = False) -> dict[str, Any] | None:
        cols = [c for c in jobs.c if with_result or c.name != "result"]

        def get(c: sa.Connection) -> dict[str, Any] | None:
            row = c.execute(sa.select(*cols).where(jobs.c.id == job_id)).first()
            if row is None:
                return None
            out = dict(row._mapping)
            out["losses"] = json.loads(out.get("losses") or "{}")
            return out

        return self._run(get)

    def job_cancel(self, job_id: str) -> dict[str, Any] | None:
        """Ask the job's worker (on whichever pod) to stop at its next step."""

        def put(c: sa.Connection) -> None:
            c.execute(
                jobs.update()
                .where((jobs.c.id == job_id) & jobs.c.state.in_(("queued", "running")))
                .values(cancel_requested=True, updated=time.time())
            )

        self._run(put)
        return self.job(job_id)

    def jobs_active(self, role: str, kind: str, stale_s: float) -> int:
        """Jobs of this Deployment (role) queued or running and heard from within stale_s."""
        since = time.time() - stale_s

        def get(c: sa.Connection) -> int:
            q = sa.select(sa.func.count()).where(
                (jobs.c.role == role)
                & (jobs.c.kind == kind)
                & jobs.c.state.in_(("queued", "running"))
                & (jobs.c.updated > since)
            )
            return int(c.execute(q).scalar() or 0)

        return self._run(get)


class ServingStore(JobRows):
    """Thread-safe access to the store; every method raises StoreUnavailable on an outage."""

    # ------------------------------------------------------------------ answers, feedback
    def add_answer(self, row: dict[str, Any]) -> None:
        values = {**row, "created": row.get("created") or time.time(), "pod": self.pod}
        self._run(lambda c: c.execute(answers.insert().values(**values)))

    def answer(self, prediction_id: str) -> dict[str, Any] | None:
        def get(c: sa.Connection) -> dict[str, Any] | None:
            row = c.execute(answers.select().where(answers.c.id == prediction_id)).first()
            return dict(row._mapping) if row else None

        return self._run(get)

    def is_style_answer(self, answer_id: str) -> bool:
        query = style_answers.select().where(style_answers.c.answer_id == answer_id)
        return self._run(lambda c: c.execute(query).first()) is not None

    def add_feedback(self, row: dict[str, Any]) -> None:
        """Insert one outcome; raises Duplicate when that answer has one already."""
        values = {**row, "created": time.time(), "pod": self.pod}
        self._run(lambda c: c.execute(feedback.insert().values(**values)))

    def feedback_rows(self, variants: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
        """Feedback records, oldest first (optionally only those variants)."""

        def get(c: sa.Connection) -> list[dict[str, Any]]:
            query = feedback.select().order_by(feedback.c.created, feedback.c.prediction_id)
            if variants:
                query = query.where(feedback.c.variant.in_(variants))
            return [
                {**dict(r._mapping), "timestamp": r.created} for r in c.execute(query).fetchall()
            ]

        return self._run(get)

    def feedback_counts(self, variants: tuple[str, ...]) -> list[dict[str, Any]]:
        """Per (variant, model version): labelled n, correct k and the newest feedback's time,
        one aggregate query (what every pod's sync loop reads for /metrics)."""
        right = sa.func.sum(sa.case((feedback.c.correct, 1), else_=0))
        q = (
            sa.select(
                feedback.c.variant,
                feedback.c.model_version,
                sa.func.count().label("n"),
                right.label("k"),
                sa.func.max(feedback.c.created).label("last"),
            )
            .where(feedback.c.variant.in_(variants))
            .group_by(feedback.c.variant, feedback.c.model_version)
        )
        return self._run(lambda c: [dict(r._mapping) for r in c.execute(q).fetchall()])

    # ------------------------------------------------------------------ A/B assignments
    def assignment(self, key: str, experiment: str, proposed: str) -> str:
        """The variant this client has in `experiment`: the stored one, else `proposed`
        (stored now; when two pods race, the first insert wins and both answer it)."""
        client = client_hash(key)
        where = (assignments.c.client == client) & (assignments.c.experiment == experiment)

        def get(c: sa.Connection) -> str | None:
            return c.execute(sa.select(assignments.c.variant).where(where)).scalar()

        found = self._run(get)
        if found:
            return found
        try:
            row = dict(client=client, experiment=experiment, variant=proposed, created=time.time())
            self._run(lambda c: c.execute(assignments.insert().values(**row)))
            return proposed
        except Duplicate:
            return self._run(get) or proposed

    # ------------------------------------------------------------------ admin state
    def admin_get(self) -> dict[str, tuple[str, float]]:
        def get(c: sa.Connection) -> dict[str, tuple[str, float]]:
            rows = c.execute(admin_state.select()).fetchall()
            return {r.key: (r.value, r.updated) for r in rows}

        return self._run(get)

    def admin_set(self, key: str, value: Any) -> float:
        """Set one admin value (JSON); returns its time stamp."""
        now, text = time.time(), json.dumps(value)

        def put(c: sa.Connection) -> None:
            done = c.execute(
                admin_state.update().where(admin_state.c.key == key).values(value=text, updated=now)
            ).rowcount
            if not done:
                c.execute(admin_state.insert().values(key=key, value=text, updated=now))

        try:
            self._run(put)
        except Duplicate:  # another pod inserted it first: update it now
            self._run(put)
        return now

    def admin_failed(self, caller: str) -> None:
        now = time.time()
        self._run(lambda c: c.execute(admin_failures.insert().values(caller=caller, at=now)))

    def admin_failures_since(self, caller: str, since: float) -> list[float]:
        def get(c: sa.Connection) -> list[float]:
            q = (
                sa.select(admin_failures.c.at)
                .where((admin_failures.c.caller == caller) & (admin_failures.c.at > since))
                .order_by(admin_failures.c.at)
            )
            return [float(x) for x in c.execute(q).scalars()]

        return self._run(get)

    # ------------------------------------------------------------------ style answers
    def style_answer(
        self, answer_id: str, endpoint: str, model_name: str, model_version: str, method: str
    ) -> None:
        """Remember a stylization or Monet answer before it is sent (a rating to any pod
        finds it); raises Duplicate for an id already stored."""
        row = dict(
            answer_id=answer_id,
            at=time.time(),
            endpoint=endpoint,
            model_name=model_name,
            model_version=str(model_version),
            method=method,
            pod=self.pod,
        )
        self._run(lambda c: c.execute(style_answers.insert().values(**row)))

    def style_score(self, answer_id: str, scores: dict[str, float]) -> None:
        """Store the sampled scorer's measures beside their answer (an unknown id, pruned
        meanwhile, changes nothing)."""
        text = json.dumps({k: float(v) for k, v in scores.items()})
        where = style_answers.c.answer_id == answer_id
        values = dict(scores=text, scored_at=time.time())
        self._run(lambda c: c.execute(style_answers.update().where(where).values(**values)))

    def style_rating(self, answer_id: str, rating: int) -> dict[str, Any]:
        """Store a user's rating (RATINGS, one per answer); returns the rated answer's row.
        Raises ValueError out of range, UnknownAnswer, NotStyleAnswer for a classification's
        id, Duplicate when it was rated already."""
        low, high = RATINGS
        if isinstance(rating, bool) or not isinstance(rating, int) or not low <= rating <= high:
            raise ValueError(f"rating must be an integer from {low} to {high}, not {rating!r}")
        where = style_answers.c.answer_id == answer_id

        def put(c: sa.Connection) -> dict[str, Any] | None:
            now = time.time()
            done = c.execute(
                style_answers.update()
                .where(where & style_answers.c.rating.is_(None))
                .values(rating=rating, rated_at=now)
            ).rowcount
            row = c.execute(style_answers.select().where(where)).first()
            if row is None:
                return None
            if not done:
                raise _AlreadyRated()
            return _style_row(row)

        try:
            found = self._run(put)
        except _AlreadyRated:
            raise Duplicate(f"answer {answer_id} was already rated") from None
        if found is not None:
            return found
        if self.answer(answer_id) is not None:
            raise NotStyleAnswer(
                f"{answer_id} is a classification's prediction_id: send it to POST /feedback"
            )
        raise UnknownAnswer(f"unknown answer_id {answer_id!r} (expired or never answered)")

    def style_window(self, since: float, model_name: str | None = None) -> list[dict[str, Any]]:
        """Style answers since `since` (epoch s), oldest first, optionally of one model:
        {answer_id, at, endpoint, model_name, model_version, method, scores, rating}."""

        def get(c: sa.Connection) -> list[dict[str, Any]]:
            q = style_answers.select().where(style_answers.c.at >= since)
            if model_name is not None:
                q = q.where(style_answers.c.model_name == model_name)
            q = q.order_by(style_answers.c.at, style_answers.c.answer_id)
            return [_style_row(r) for r in c.execute(q).fetchall()]

        return self._run(get)

    def style_rating_counts(self) -> list[dict[str, Any]]:
        """Per (endpoint, model name, version): ratings n and their sum, one aggregate query
        (what every pod's sync loop reads for /metrics)."""
        cols = style_answers.c
        q = (
            sa.select(
                cols.endpoint,
                cols.model_name,
                cols.model_version,
                sa.func.count(cols.rating).label("n"),
                sa.func.sum(cols.rating).label("total"),
            )
            .where(cols.rating.is_not(None))
            .group_by(cols.endpoint, cols.model_name, cols.model_version)
        )
        return self._run(lambda c: [dict(r._mapping) for r in c.execute(q).fetchall()])

    # ------------------------------------------------------------------ retention
    def prune(self, max_age_days: float) -> dict[str, int]:
        """Delete answers, feedback, assignments, finished jobs and failures older than
        `max_age_days` (serve.store_retention_days)."""
        cutoff = time.time() - max_age_days * 86400

        def delete(c: sa.Connection) -> dict[str, int]:
            return {
                "answers": c.execute(answers.delete().where(answers.c.created < cutoff)).rowcount,
                "feedback": c.execute(
                    feedback.delete().where(feedback.c.created < cutoff)
                ).rowcount,
                "assignments": c.execute(
                    assignments.delete().where(assignments.c.created < cutoff)
                ).rowcount,
                "jobs": c.execute(jobs.delete().where(jobs.c.updated < cutoff)).rowcount,
                "style_answers": c.execute(
                    style_answers.delete().where(style_answers.c.at < cutoff)
                ).rowcount,
                "admin_failures": c.execute(
                    admin_failures.delete().where(admin_failures.c.at < time.time() - 3600)
                ).rowcount,
            }

        return self._run(delete)


class _AlreadyRated(Exception):
    """Inside the rating's transaction: roll back, answer Duplicate."""


def _style_row(row: Any) -> dict[str, Any]:
    out = {k: v for k, v in row._mapping.items() if k not in ("pod", "scored_at", "rated_at")}
    out["scores"] = json.loads(out["scores"]) if out.get("scores") else None
    return out


def _short(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]
