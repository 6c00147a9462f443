"""Start `bentoml serve` for the artflow service with the CLI's settings in its environment."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from artflow.config import PROJECT_ROOT
from artflow.errors import ConfigError

SERVICE = "artflow.serve.service:Artflow"


def bentoml_home() -> Path:
    """BENTOML_HOME if set, else ~/bentoml: never inside the project (docs/stack-notes.md: a build
    context that contains the Bento store copies itself until the path is too long)."""
    return Path(os.environ.get("BENTOML_HOME") or Path.home() / "bentoml").expanduser()


def bentoml_exe() -> str:
    local = Path(sys.executable).parent / "bentoml"
    found = str(local) if local.exists() else shutil.which("bentoml")
    if not found:
        raise ConfigError("the bentoml command is not installed", "run `make install`")
    return found


def server_env(params: Path | None, profile: str) -> dict[str, str]:
    env = dict(os.environ)
    from artflow.registry import tracking

    env["MLFLOW_TRACKING_URI"] = tracking.tracking_uri()  # the same registry as the CLI
    env.setdefault("BENTOML_HOME", str(bentoml_home()))
    env.setdefault("BENTOML_DO_NOT_TRACK", "true")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if params:
        env["ARTFLOW_PARAMS"] = str(Path(params).resolve())
    if profile and profile != "default":
        env["ARTFLOW_PROFILE"] = profile
    return env


def preflight() -> list[str]:
    """Warnings worth reading before the server starts (it will start anyway)."""
    from artflow.registry import tracking

    if tracking.alias_version(tracking.CLASSIFIER, tracking.CHAMPION) is None:
        where = tracking.tracking_uri()
        return [
            f"[yellow]warning:[/] {tracking.CLASSIFIER} has no champion in {where}: /readyz "
            "stays 503 until one is promoted and POST /admin/reload is called"
        ]
    return []


def server_command(host: str, port: int, grace_s: int) -> list[str]:
    return [
        bentoml_exe(),
        "serve",
        SERVICE,
        "--host",
        host,
        "--port",
        str(port),
        # SIGTERM: stop accepting, let in-flight requests finish for this long, then exit.
        "--timeout-graceful-shutdown",
        str(grace_s),
    ]


def run_server(host: str, port: int, params: Path | None, profile: str, grace_s: int) -> None:
    """Replace this process with `bentoml serve` (never returns).

    exec rather than a child process: SIGTERM from systemd, a container runtime or `kill`
    (and Ctrl-C) then reach the server itself, which drains and exits; nothing is left
    behind holding the port, and the exit status is the server's.
    """
    cmd = server_command(host, port, grace_s)
    env = server_env(params, profile)
    os.chdir(PROJECT_ROOT)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(cmd[0], cmd, env)
