"""Scale-out fixtures: three `artflow serve` replicas behind HAProxy on the production stack.

Two champion replicas and one challenger (ARTFLOW_ROLE), each its own process as pods are,
share the serving store in the stack's PostgreSQL (its own database and role, handed to
them as a file like a mounted Secret) and the registry of the stack's `mlflow server`.
HAProxy (Debian's) balances round-robin with no affinity over all three on one port, and
serves each role's Service on two more (what the replicas forward the other variant's users
to). Started in parallel and stopped by the fixture; the stack is the session's own
(tests/prod/conftest.py), never a second one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

STORE_DB, STORE_ROLE = "artflow_serving", "artflow_serving"
MAX_FAILURES = 5  # serve.admin_max_failures: failed tokens per caller, over every replica
SYNC_S = 1.0  # serve.sync_interval_s of the replicas: the bound the tests check against
ROLES = ("champion", "champion", "challenger")


@dataclass
class Balancer:
    url: str  # round-robin over every replica (the Gateway's route)
    champion_url: str  # the champion Service
    challenger_url: str  # the challenger Service
    proc: subprocess.Popen
    config: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


@dataclass
class Replicas:
    servers: list  # tests.serve.conftest.Server, in ROLES order
    roles: tuple[str, ...]
    balancer: Balancer
    store_url: str
    versions: dict[str, str] = field(default_factory=dict)
    startup_s: float = 0.0
    pods: list[str] = field(default_factory=list)  # POD_NAME of each server

    def query(self, sql: str, *args: object) -> list[tuple]:
        import psycopg

        with psycopg.connect(self.store_url, connect_timeout=5) as conn:
            return list(conn.execute(sql, args).fetchall())


def _create_store_database(stack) -> str:  # noqa: ANN001 - tests.prod.conftest.Stack
    """The serving store's own database and role beside MLflow's (as on a cluster)."""
    import psycopg

    with psycopg.connect(stack.postgres.uri, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f"CREATE ROLE {STORE_ROLE} LOGIN PASSWORD 'rehearsal-store'")
        conn.execute(f"CREATE DATABASE {STORE_DB} OWNER {STORE_ROLE}")
    return f"postgresql://{STORE_ROLE}:rehearsal-store@127.0.0.1:{stack.postgres.port}/{STORE_DB}"


def _haproxy_config(ports: list[int], front: dict[str, int], roles: tuple[str, ...]) -> str:
    """Round-robin, no affinity; a replica that stops answering /readyz leaves within ~1 s,
    and a request whose replica died under it is retried on another one."""

    def backend(name: str, members: list[int]) -> str:
        lines = [f"backend {name}", "  balance roundrobin", "  option httpchk GET /readyz"]
        lines += [f"  server r{p} 127.0.0.1:{p} check inter 500ms fall 2 rise 1" for p in members]
        return "\n".join(lines)

    by_role = {r: [p for p, role in zip(ports, roles, strict=True) if role == r] for r in roles}
    parts = [
        "global\n  maxconn 4000",
        "defaults\n  mode http\n  timeout connect 2s\n  timeout client 180s\n"
        "  timeout server 180s\n  retries 3\n  option redispatch 1\n"
        "  retry-on conn-failure empty-response response-timeout\n  option forwardfor",
    ]
    for name in ("all", *by_role):
        parts.append(f"frontend {name}\n  bind 127.0.0.1:{front[name]}\n  default_backend b_{name}")
    parts.append(backend("b_all", ports))
    parts += [backend(f"b_{r}", members) for r, members in by_role.items()]
    return "\n\n".join(parts) + "\n"


def _wait_ready(url: str, proc: subprocess.Popen, deadline_s: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, "haproxy exited"
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    pytest.fail(f"{url}/readyz not 200 through haproxy after {deadline_s} s")


def register_versions(settings) -> dict[str, str]:  # noqa: ANN001 - artflow.config.Settings
    """v_old and v_champion (right on every colour, history [old, champion]) and a challenger
    that swaps two of the three classes: a planted difference the feedback will show."""
    import json

    from artflow import promote
    from artflow.registry import tracking
    from tests.promote.conftest import register_color_model

    name = tracking.CLASSIFIER
    old = register_color_model(settings, name)
    champion = register_color_model(settings, name)
    challenger = register_color_model(settings, name, swap=((0, 1),))
    client = tracking.client()
    client.set_registered_model_tag(name, promote.HISTORY_TAG, json.dumps([old, champion]))
    tracking.set_alias(name, tracking.CHAMPION, champion)
    tracking.set_alias(name, tracking.CHALLENGER, challenger)
    return {"old": old, "champion": champion, "challenger": challenger}


@pytest.fixture(scope="module")
def replicas(prod_env, smoke_settings, tmp_path_factory) -> Iterator[Replicas]:
    """Three replicas (champion, champion, challenger) behind HAProxy, ready to serve."""
    import httpx

    from tests.serve.conftest import ADMIN_TOKEN, _wait, params_with, start_server, stop_server

    started = time.monotonic()
    if not prod_env.mlflow.running:  # an earlier rehearsal test stops it on purpose
        prod_env.mlflow.start()
    root = tmp_path_factory.mktemp("replicas")
    store_url = _create_store_database(prod_env)
    secret = Path(tempfile.mkdtemp(prefix="artflow-store-secret-")) / "url"
    secret.write_text(store_url + "\n")  # as a mounted Secret: a file, never in the env
    os.chmod(secret, 0o600)
    params = params_with(
        root,
        admin_max_failures=MAX_FAILURES,
        sync_interval_s=SYNC_S,
        trusted_proxies=["127.0.0.1/32"],
    )
    from tests.prod.conftest import free_port

    ports = [free_port() for _ in ROLES]
    lb_ports = {"champion": free_port(), "challenger": free_port()}
    servers = []
    balancer = None
    try:
        for i, role in enumerate(ROLES):
            env = {
                "ARTFLOW_ROLE": role,
                "ARTFLOW_CHAMPION_URL": f"http://127.0.0.1:{lb_ports['champion']}",
                "ARTFLOW_CHALLENGER_URL": f"http://127.0.0.1:{lb_ports['challenger']}",
                "ARTFLOW_SERVING_STORE_FILE": str(secret),
                "POD_NAME": pod_name(i, role),
                **prod_env.identity("serving"),  # reads the registry, writes nothing there
            }
            servers.append(
                start_server(root / f"r{i}", env, params=params, port=ports[i])
            )  # all three import TensorFlow at once
        versions = register_versions(smoke_settings)
        for server in servers:
            server.versions = versions
            _wait(server, "/livez")
        auth = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        # one reload on one replica: the others pick it up from the store
        r = httpx.post(f"{servers[0].url}/admin/reload", headers=auth, timeout=240)
        assert r.status_code == 200, r.text
        for server in servers:
            _wait(server, "/readyz")
        balancer = start_balancer(root, ports, lb_ports)
        _wait_ready(balancer.url, balancer.proc)
        startup = time.monotonic() - started
        print(f"\nreplicas: 3 servers + haproxy ready in {startup:.1f} s")
        pods = [pod_name(i, role) for i, role in enumerate(ROLES)]
        yield Replicas(servers, ROLES, balancer, store_url, versions, startup, pods)
    finally:
        if balancer is not None:
            balancer.stop()
        for server in servers:
            stop_server(server)
        shutil.rmtree(secret.parent, ignore_errors=True)


def start_balancer(root: Path, ports: list[int], lb_ports: dict[str, int]) -> Balancer:
    """The balancer on the role ports the replicas were told at start (ARTFLOW_*_URL)."""
    from tests.prod.conftest import free_port

    exe = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not Path(exe).exists():
        pytest.fail("haproxy is not installed: apt-get install -y haproxy (.ci/run installs it)")
    front = {"all": free_port(), **lb_ports}
    config = root / "haproxy.cfg"
    config.write_text(_haproxy_config(ports, front, ROLES))
    log = (root / "haproxy.log").open("wb")
    proc = subprocess.Popen([exe, "-f", str(config), "-db"], stdout=log, stderr=subprocess.STDOUT)
    url = {name: f"http://127.0.0.1:{port}" for name, port in front.items()}
    return Balancer(url["all"], url["champion"], url["challenger"], proc, config)


def pod_name(i: int, role: str) -> str:
    return f"replica-{i}-{role}"


def kill_replica(server) -> None:  # noqa: ANN001 - tests.serve.conftest.Server
    """SIGKILL the replica and every worker below it, as a node loss would."""
    from tests.serve.conftest import kill_tree

    kill_tree(server.proc)
