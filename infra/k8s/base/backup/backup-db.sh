#!/usr/bin/env bash
# Backups of the cluster's PostgreSQL databases (MLflow's `mlflow` and `mlflow_auth`, the
# serving store's `artflow_serving`) to object storage, and their restore. The CronJob artflow-db-backup runs
# `dump` (PostgreSQL image: pg_dump) then `upload` (MLflow image: Python + boto3); the test
# suite runs the same file against the production rehearsal (tests/prod/test_backup.py).
#
#   backup-db.sh dump DIR                       pg_dump -Fc of each of $BACKUP_DATABASES
#   backup-db.sh upload DIR s3://BUCKET/PREFIX  to PREFIX/<UTC stamp>/, keeps $BACKUP_KEEP
#   backup-db.sh download s3://BUCKET/PREFIX[/STAMP] DIR   the newest stamp, or the one named
#   backup-db.sh restore DIR DB [TARGET]        DIR/DB.dump into TARGET (default DB), created
#                                               if missing, objects replaced (--clean)
#
# Connection: the libpq variables (PGHOST, PGPORT, PGUSER, PGPASSWORD); PGUSER_FILE and
# PGPASSWORD_FILE read them from mounted Secret files. S3: boto3's own chain
# (AWS_SHARED_CREDENTIALS_FILE, a mounted Secret) and AWS_ENDPOINT_URL. PG_BIN: where the
# PostgreSQL client programs are (default: PATH); PYTHON: an interpreter with boto3.
set -euo pipefail

[[ -n "${PGUSER_FILE:-}" ]] && PGUSER="$(cat "$PGUSER_FILE")" && export PGUSER
[[ -n "${PGPASSWORD_FILE:-}" ]] && PGPASSWORD="$(cat "$PGPASSWORD_FILE")" && export PGPASSWORD
pg() { "${PG_BIN:+$PG_BIN/}$1" "${@:2}"; }
die() { echo "backup-db: $*" >&2; exit 1; }

# S3 transfers in Python (boto3): the PostgreSQL image has no S3 client, the MLflow one has.
s3() {
  "${PYTHON:-python3}" - "$@" <<'PY'
import os, sys
from pathlib import Path

import boto3

action, url, folder = sys.argv[1], sys.argv[2], Path(sys.argv[3])
bucket, _, prefix = url.removeprefix("s3://").partition("/")
prefix = prefix.strip("/")
s3 = boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None)


def stamps() -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/")
    keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
    return sorted({k[len(prefix) + 1 :].split("/")[0] for k in keys})


if action == "upload":
    stamp = sys.argv[4]
    for path in sorted(folder.iterdir()):
        s3.upload_file(str(path), bucket, f"{prefix}/{stamp}/{path.name}")
        print(f"uploaded s3://{bucket}/{prefix}/{stamp}/{path.name}")
    keep = int(os.environ.get("BACKUP_KEEP", "14"))
    for old in stamps()[:-keep] if keep > 0 else []:
        listing = s3.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/{old}/")
        for obj in listing.get("Contents", []):
            s3.delete_object(Bucket=bucket, Key=obj["Key"])
        print(f"expired backup {old}")
elif action == "download":
    found = stamps()
    if not found:
        sys.exit(f"backup-db: no backup under s3://{bucket}/{prefix}/")
    stamp = found[-1]
    if len(sys.argv) > 4 and sys.argv[4]:  # a stamp named in the URL
        stamp = sys.argv[4]
    listing = s3.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/{stamp}/")
    folder.mkdir(parents=True, exist_ok=True)
    for obj in listing.get("Contents", []):
        s3.download_file(bucket, obj["Key"], str(folder / obj["Key"].rsplit("/", 1)[1]))
    print(stamp)
PY
}

cmd="${1:-}"
case "$cmd" in
  dump)
    dir="${2:?dump DIR}"
    mkdir -p "$dir"
    for db in ${BACKUP_DATABASES:-mlflow mlflow_auth artflow_serving}; do
      pg pg_dump --format=custom --no-owner --no-privileges --file "$dir/$db.dump" "$db"
      pg pg_restore --list "$dir/$db.dump" >/dev/null  # a readable archive, or fail here
      echo "dumped $db ($(wc -c <"$dir/$db.dump") bytes)"
    done
    ;;
  upload)
    [[ "${3:-}" == s3://* ]] || die "upload DIR s3://BUCKET/PREFIX"
    s3 upload "$3" "${2:?upload DIR}" "$(date -u +%Y%m%dT%H%M%SZ)"
    ;;
  download)
    [[ "${2:-}" == s3://* ]] || die "download s3://BUCKET/PREFIX[/STAMP] DIR"
    url="$2" stamp=""
    if [[ "$url" =~ /([0-9]{8}T[0-9]{6}Z)/?$ ]]; then
      stamp="${BASH_REMATCH[1]}" url="${url%/}" url="${url%/*}"
    fi
    s3 download "$url" "${3:?download URL DIR}" "$stamp"
    ;;
  restore)
    dir="${2:?restore DIR DB [TARGET]}" db="${3:?restore DIR DB [TARGET]}" target="${4:-$3}"
    [[ -f "$dir/$db.dump" ]] || die "no $dir/$db.dump"
    [[ "$target" =~ ^[a-z_][a-z0-9_]{0,62}$ ]] || die "not a database name: '$target'"
    exists=$(pg psql -d postgres -Atc "SELECT 1 FROM pg_database WHERE datname = '$target'")
    [[ "$exists" == 1 ]] || pg createdb "$target"
    pg pg_restore --clean --if-exists --no-owner --no-privileges --exit-on-error \
      --dbname "$target" "$dir/$db.dump"
    echo "restored $db into $target"
    ;;
  *)
    die "usage: backup-db.sh dump DIR | upload DIR s3://B/P | download s3://B/P[/STAMP] DIR | restore DIR DB [TARGET]"
    ;;
esac
