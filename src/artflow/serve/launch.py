"""Start `bentoml serve` for the artflow service with the CLI's settings in its environment."""

from __future__ import annotations

import os
import shutil
import subprocess
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
    from artflow import tracking

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
    from artflow import tracking

    if tracking.alias_version(tracking.CLASSIFIER, tracking.CHAMPION) is None:
        where = tracking.tracking_uri()
        return [
            f"[yellow]warning:[/] {tracking.CLASSIFIER} has no champion in {where}: /readyz "
            "stays 503 until one is promoted and POST /admin/reload is called"
        ]
    return []


def run_server(host: str, port: int, params: Path | None, profile: str) -> int:
    """Run `bentoml serve` in the foreground; returns its exit code (Ctrl-C stops it)."""
    cmd = [bentoml_exe(), "serve", SERVICE, "--host", host, "--port", str(port)]
    proc = subprocess.Popen(cmd, cwd=PROJECT_ROOT, env=server_env(params, profile))
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        return proc.wait(timeout=30)
