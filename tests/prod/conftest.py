"""The production stack as local processes, started once per session (docs/deploy.md).

PostgreSQL (Debian's binaries, a throw-away data directory), an S3-compatible server
(moto's standalone server on 127.0.0.1) and `mlflow server --app-name artflow` with the
PostgreSQL backend store, S3 artifacts and authentication (users and permissions in a
database of their own): the three parts a cluster runs as services, each its own process
here, so the tests reach them over the network the way pods do.

Every client has an identity (docs/deploy.md, "Identities"): this process is the gate
(it registers and promotes, as the training pipeline's steps do here), the servers it
starts are `serving`, each given its password as a file, as a mounted Secret would be.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from artflow.registry import identities, tracking
from tests.promote.conftest import color_workdir  # noqa: F401 - the gate's frozen test split

BUCKET = "artflow"
S3_ENV = {
    "AWS_ACCESS_KEY_ID": "rehearsal",
    "AWS_SECRET_ACCESS_KEY": "rehearsal-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}
AUTH_DB = "mlflow_auth"  # MLflow's users and permissions, beside the tracking database
ADMIN = ("admin", "rehearsal-admin-password")
READY_S = 240  # generous: the machine may be busy; a healthy start takes ~20 s


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _postgres_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    if not found:
        pytest.fail(
            "PostgreSQL is not installed: apt-get install -y postgresql (.ci/run installs it)"
        )
    return found[-1].parent


def _as_postgres(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    """PostgreSQL refuses to run as root: run its tools as the `postgres` user then."""
    if os.geteuid() == 0:
        args = ["su", "postgres", "-s", "/bin/sh", "-c", " ".join(args)]
    return subprocess.run(args, check=True, capture_output=True, text=True, timeout=60, **kwargs)


@dataclass
class Postgres:
    port: int
    root: Path
    bin: Path

    @property
    def uri(self) -> str:
        return f"postgresql://mlflow@127.0.0.1:{self.port}/mlflow"

    def query(self, sql: str, *args: object) -> list[tuple]:
        import psycopg

        with psycopg.connect(self.uri, connect_timeout=5) as conn:
            return list(conn.execute(sql, args).fetchall())

    def stop(self) -> None:
        _as_postgres(
            [str(self.bin / "pg_ctl"), "-D", str(self.root / "data"), "-m", "fast", "stop"]
        )


def start_postgres() -> Postgres:
    # Under /tmp, not pytest's tmp_path: the postgres user must be able to reach the directory.
    pg = Postgres(free_port(), Path(tempfile.mkdtemp(prefix="artflow-pg-")), _postgres_bin())
    if os.geteuid() == 0:
        shutil.chown(pg.root, "postgres", "postgres")
    data = pg.root / "data"
    _as_postgres([str(pg.bin / "initdb"), "-D", str(data), "-A", "trust", "-U", "mlflow"])
    opts = f"'-p {pg.port} -k {pg.root} -c listen_addresses=127.0.0.1'"
    log = pg.root / "postgres.log"
    _as_postgres(
        [str(pg.bin / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(log), "-w", "start"]
    )
    for db in ("mlflow", AUTH_DB):
        _as_postgres(
            [str(pg.bin / "createdb"), "-h", "127.0.0.1", "-p", str(pg.port), "-U", "mlflow", db]
        )
    return pg


@dataclass
class MlflowServer:
    """`mlflow server` on PostgreSQL + S3, in its own process group (stop() kills workers)."""

    url: str
    args: list[str]
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.args,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_http(f"{self.url}/health", self.proc, self.log_path)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def wait_http(
    url: str, proc: subprocess.Popen, log_path: Path, deadline_s: float = READY_S
) -> None:
    import httpx

    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(
                f"{proc.args[0]} exited with {proc.returncode}:\n{log_path.read_text()[-4000:]}"
            )
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    pytest.fail(f"{url} not 200 after {deadline_s} s:\n{log_path.read_text()[-4000:]}")


@dataclass
class Stack:
    postgres: Postgres
    s3_url: str
    mlflow: MlflowServer
    root: Path
    env: dict[str, str] = field(default_factory=dict)  # what a client pod gets (gate)
    passwords: dict[str, str] = field(default_factory=dict)

    def identity(self, name: str) -> dict[str, str]:
        """The environment of a pod that is `name`: its password in a file (a Secret)."""
        secret = self.root / "secrets" / name
        if not secret.exists():
            secret.parent.mkdir(exist_ok=True)
            secret.write_text(self.passwords[name] + "\n")
            secret.chmod(0o600)
        return {
            "MLFLOW_TRACKING_USERNAME": name,
            "MLFLOW_TRACKING_PASSWORD_FILE": str(secret),
            "MLFLOW_TRACKING_PASSWORD": "",
        }

    def champion_in_db(self, name: str) -> str | None:
        """The alias as stored in PostgreSQL: readable while the MLflow server is down."""
        rows = self.postgres.query(
            "select version from registered_model_aliases where name = %s and alias = %s",
            name,
            "champion",
        )
        return str(rows[0][0]) if rows else None


@pytest.fixture(scope="session")
def prod_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    import boto3
    from moto.server import ThreadedMotoServer

    root = tmp_path_factory.mktemp("prod")
    postgres = start_postgres()
    s3_port = free_port()
    s3 = ThreadedMotoServer(ip_address="127.0.0.1", port=s3_port, verbose=False)
    s3.start()
    s3_url = f"http://127.0.0.1:{s3_port}"
    boto3.client("s3", endpoint_url=s3_url, **_boto_kwargs()).create_bucket(Bucket=BUCKET)
    port = free_port()
    server_env = {
        **os.environ,
        **S3_ENV,
        "MLFLOW_S3_ENDPOINT_URL": s3_url,
        # artflow uses none of the server's job runner (GenAI scoring, trace archival): without
        # it the server starts no huey consumers, eight processes that each import MLflow and
        # then poll PostgreSQL, CPU the tests below need on 2 cores
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    }
    server_env.pop("MLFLOW_TRACKING_URI", None)
    auth_config = root / "auth.ini"
    auth_config.write_text(identities.auth_config(postgres.uri.rsplit("/", 1)[0] + f"/{AUTH_DB}"))
    server_env.update(
        {
            "MLFLOW_AUTH_CONFIG_PATH": str(auth_config),
            "MLFLOW_AUTH_ADMIN_PASSWORD": ADMIN[1],
            "MLFLOW_FLASK_SERVER_SECRET_KEY": "rehearsal-csrf-key",
        }
    )
    mlflow = MlflowServer(
        url=f"http://127.0.0.1:{port}",
        args=[
            str(Path(sys.executable).parent / "mlflow"),
            "server",
            "--app-name",
            "artflow",  # MLflow's basic-auth + the registry lock (artflow.registry.server)
            "--backend-store-uri",
            postgres.uri,
            "--artifacts-destination",
            f"s3://{BUCKET}/mlflow",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        env=server_env,
        log_path=root / "mlflow-server.log",
    )
    stack = Stack(postgres, s3_url, mlflow, root)
    try:
        mlflow.start()
        stack.passwords = _identities(mlflow.url)
        stack.env = {
            **S3_ENV,
            "MLFLOW_TRACKING_URI": mlflow.url,
            "MLFLOW_S3_ENDPOINT_URL": s3_url,
            "MLFLOW_TRACKING_USERNAME": "gate",
            "MLFLOW_TRACKING_PASSWORD": stack.passwords["gate"],
        }
        yield stack
    finally:
        mlflow.stop()
        s3.stop()
        postgres.stop()
        shutil.rmtree(postgres.root, ignore_errors=True)


def _identities(url: str) -> dict[str, str]:
    """Create the identities as the admin; their passwords."""
    passwords = {name: f"{name}-{os.urandom(6).hex()}" for name in identities.ROLES}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MLFLOW_TRACKING_USERNAME", ADMIN[0])
        mp.setenv("MLFLOW_TRACKING_PASSWORD", ADMIN[1])
        identities.bootstrap(url, passwords)
    return passwords


def _boto_kwargs() -> dict[str, str]:
    return {
        "aws_access_key_id": S3_ENV["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": S3_ENV["AWS_SECRET_ACCESS_KEY"],
        "region_name": S3_ENV["AWS_DEFAULT_REGION"],
    }


@pytest.fixture(scope="module")
def prod_env(prod_stack: Stack) -> Iterator[Stack]:
    """This process talks to the stack as a client pod would (restored afterwards)."""
    with pytest.MonkeyPatch.context() as mp:
        for key, value in prod_stack.env.items():
            mp.setenv(key, value)
        mp.delenv("ARTFLOW_ARTIFACT_ROOT", raising=False)
        for key in tracking.CREDENTIAL_FILES.values():
            mp.delenv(key, raising=False)
        yield prod_stack
