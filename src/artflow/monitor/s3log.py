"""Read a prediction log that the serving pods shipped to object storage.

`artflow drift --log s3://BUCKET/PREFIX` downloads the objects `PREFIX/<pod>/<segment>.jsonl`
(artflow.serve.logship) that can hold the window into a temporary folder of the same
layout, each file stamped with its object's time, and reads that folder like the local
log (artflow.monitor.records): every pod, every version.
"""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from artflow.errors import DataError
from artflow.monitor.records import parse_window

SLACK = dt.timedelta(hours=1)  # objects written up to this long after their last record


def is_s3(location: str | Path) -> bool:
    # A Path collapses "s3://" to "s3:/": both spellings name the bucket
    return str(location).startswith("s3:/")


def normalize(location: str | Path) -> str:
    text = str(location)
    return "s3://" + text[len("s3:/") :].lstrip("/") if is_s3(text) else text


def split_url(url: str) -> tuple[str, str]:
    """('bucket', 'prefix') of s3://bucket/prefix; ValueError for anything else."""
    if not url.startswith("s3://") or len(url) <= 5:
        raise ValueError(f"not an s3://BUCKET/PREFIX URL: {url!r}")
    bucket, _, prefix = url[5:].partition("/")
    return bucket, prefix.strip("/")


def s3_client() -> Any:
    import boto3

    return boto3.client("s3")  # AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, ... from the environment


@contextmanager
def local_copy(location: str | Path, window: str) -> Iterator[Path]:
    """The log at `location` as a local folder: itself, or the window's S3 objects."""
    if not is_s3(location):
        yield Path(location)
        return
    url = normalize(location)
    bucket, prefix = split_url(url)
    spec = parse_window(window)
    since = None if isinstance(spec, int) else dt.datetime.now(dt.UTC) - spec - SLACK
    client = s3_client()
    with tempfile.TemporaryDirectory(prefix="artflow-log-") as tmp:
        root, found = Path(tmp), 0
        pages = client.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=f"{prefix}/" if prefix else ""
        )
        for page in pages:
            for obj in page.get("Contents", []):
                key, stamp = obj["Key"], obj["LastModified"]
                if not key.endswith(".jsonl") or (since is not None and stamp < since):
                    continue
                rel = key[len(prefix) :].lstrip("/") if prefix else key
                path = root / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                client.download_file(bucket, key, str(path))
                os.utime(path, (stamp.timestamp(), stamp.timestamp()))
                found += 1
        if not found:
            raise DataError(
                f"prediction log {url} holds no segments for the window {window!r}",
                "check serve.prediction_log_s3 of the serving pods and the S3 credentials",
            )
        yield root
