"""The ingest step's sources: a DVC repository and revision, fetched with `dvc get`."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from artflow.data import sources
from artflow.errors import DataError


def _run(*cmd: str, cwd: Path) -> None:
    subprocess.run(cmd, cwd=cwd, check=True, capture_output=True, text=True)


@pytest.fixture
def dvc_repo(tmp_path: Path) -> tuple[Path, str]:
    """A git repository whose data folder is versioned with `dvc add` and pushed to a remote
    (a folder here; S3 in the production rehearsal), the working copy's data then changed."""
    from dvc.repo import Repo

    repo, remote = tmp_path / "repo", tmp_path / "remote"
    repo.mkdir()
    _run("git", "init", "-q", cwd=repo)
    _run("git", "config", "user.email", "t@example.com", cwd=repo)
    _run("git", "config", "user.name", "t", cwd=repo)
    dvc = Repo.init(str(repo))
    with dvc.config.edit() as config:
        config["core"] = {"analytics": "false", "remote": "store"}
        config["remote"] = {"store": {"url": str(remote)}}
    data = repo / "data" / "source"
    data.mkdir(parents=True)
    (data / "artists.csv").write_text("id,name\n0,Titian\n")
    dvc.add(str(data))
    _run("git", "add", "-A", cwd=repo)
    _run("git", "commit", "-qm", "data v1", cwd=repo)
    _run("git", "tag", "v1", cwd=repo)
    dvc.push()
    dvc.close()
    (data / "artists.csv").write_text("changed after v1\n")  # v1 must come from the remote
    return repo, "v1"


def test_a_dvc_source_is_fetched_at_its_revision(dvc_repo, tmp_path):
    repo, rev = dvc_repo
    got = sources.fetch_source(f"dvc://{repo}?path=data/source&rev={rev}", tmp_path / "out")
    assert (Path(got) / "artists.csv").read_text() == "id,name\n0,Titian\n"
    assert sources.source_key(f"dvc://{repo}?path=data/source&rev={rev}").startswith("dvc://")
    with pytest.raises(DataError, match="dvc get .* failed"):
        sources.fetch_source(f"dvc://{repo}?path=data/missing&rev={rev}", tmp_path / "x")


def test_a_local_sources_key_follows_its_content_not_its_file_times(tmp_path):
    """`make demo` rewrites the same demo bytes each time: the ingest step's key must hold."""
    folder = tmp_path / "source"
    (folder / "a").mkdir(parents=True)
    (folder / "a" / "x.jpg").write_bytes(b"same bytes")
    first = sources.source_key(str(folder))
    (folder / "a" / "x.jpg").write_bytes(b"same bytes")  # rewritten: new mtime
    assert sources.source_key(str(folder)) == first
    (folder / "a" / "x.jpg").write_bytes(b"other bytes")
    assert sources.source_key(str(folder)) != first
    changed = sources.source_key(str(folder))
    (folder / "a" / "x.jpg").rename(folder / "a" / "y.jpg")  # same bytes, another name
    assert sources.source_key(str(folder)) not in (first, changed)
