"""The backup and its restore, rehearsed: the CronJob's own script (infra/k8s/base/backup/
backup-db.sh) dumps the rehearsal's PostgreSQL to the S3 server and restores the dump into
fresh databases, where the rows are back. Uses the session stack; starts nothing."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.prod.conftest import BUCKET, S3_ENV, Stack, _as_postgres

pytestmark = [pytest.mark.prod, pytest.mark.slow]

SCRIPT = Path(__file__).resolve().parents[2] / "infra" / "k8s" / "base" / "backup" / "backup-db.sh"


def backup_db(stack: Stack, *args: str) -> subprocess.CompletedProcess:
    """The script as the CronJob's containers run it: libpq and S3 settings from the
    environment, the password from a file (here trust auth: an empty one)."""
    pg = stack.postgres
    password = stack.root / "pg-password"
    password.write_text("\n")
    env = {
        **os.environ,
        **S3_ENV,
        "PGHOST": "127.0.0.1",
        "PGPORT": str(pg.port),
        "PGUSER": "mlflow",
        "PGPASSWORD_FILE": str(password),
        "PG_BIN": str(pg.bin),
        "PYTHON": sys.executable,
        "AWS_ENDPOINT_URL": stack.s3_url,
        "BACKUP_DATABASES": "mlflow backup_probe",
        "BACKUP_KEEP": "2",
    }
    proc = subprocess.run(
        ["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, f"backup-db.sh {' '.join(args)}:\n{proc.stdout}{proc.stderr}"
    return proc


def test_backup_to_s3_and_restore_into_fresh_databases(prod_stack: Stack, tmp_path: Path):
    pg = prod_stack.postgres
    marker = uuid.uuid4().hex
    _as_postgres(
        [
            str(pg.bin / "createdb"),
            "-h",
            "127.0.0.1",
            "-p",
            str(pg.port),
            "-U",
            "mlflow",
            "backup_probe",
        ]
    )
    probe = pg.uri.rsplit("/", 1)[0] + "/backup_probe"
    import psycopg

    with psycopg.connect(probe, autocommit=True) as conn:
        conn.execute("CREATE TABLE feedback (id text PRIMARY KEY, artist text)")
        conn.execute("INSERT INTO feedback VALUES (%s, 'monet')", (marker,))
    experiments = pg.query("SELECT count(*) FROM experiments")[0][0]

    backup_db(prod_stack, "dump", str(tmp_path / "dump"))
    url = f"s3://{BUCKET}/backups/postgres"
    uploaded = backup_db(prod_stack, "upload", str(tmp_path / "dump"), url).stdout
    stamp = backup_db(prod_stack, "download", url, str(tmp_path / "back")).stdout.split()[-1]
    assert f"{url}/{stamp}/mlflow.dump" in uploaded
    assert sorted(p.name for p in (tmp_path / "back").iterdir()) == [
        "backup_probe.dump",
        "mlflow.dump",
    ]
    backup_db(prod_stack, "restore", str(tmp_path / "back"), "mlflow", "mlflow_restored")
    backup_db(prod_stack, "restore", str(tmp_path / "back"), "backup_probe", "probe_restored")

    restored = pg.uri.rsplit("/", 1)[0]
    with psycopg.connect(f"{restored}/probe_restored") as conn:
        assert conn.execute("SELECT artist FROM feedback WHERE id = %s", (marker,)).fetchall() == [
            ("monet",)
        ]
    with psycopg.connect(f"{restored}/mlflow_restored") as conn:
        assert conn.execute("SELECT count(*) FROM experiments").fetchone()[0] == experiments
    # the newest stamp is the one just uploaded; a bad target name is refused before any SQL
    bad = subprocess.run(
        ["bash", str(SCRIPT), "restore", str(tmp_path / "back"), "mlflow", "x'; DROP"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert bad.returncode != 0 and "not a database name" in bad.stderr
