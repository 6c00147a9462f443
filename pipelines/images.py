"""The image every task runs: an immutable reference from one setting, never `latest`.

Kubeflow's cache key covers the image reference, not the image's content, so a new image
pushed under the same tag would replay old results: the reference must change with the code.
`pipeline.image_tag` names it (a tag, or `sha256:<digest>`); left empty, it is the git commit
being compiled: build and push the images of infra/docker/ under that tag
(`docker build -t ghcr.io/artflow/artflow:$(git rev-parse HEAD) ...`).

Locally the steps run in this virtual environment whatever image the spec names, and the
code digest in each task's key (artflow.stages.keys) stands in for the image: the local
build uses the fixed tag `local`, so a commit that changes no code re-runs nothing.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from artflow.config import PROJECT_ROOT, PipelineCfg
from artflow.errors import ConfigError

LOCAL_TAG = "local"


def git_commit(root: str | Path = PROJECT_ROOT) -> str:
    """The commit checked out at `root`; a clear error outside a git checkout."""
    try:
        out = subprocess.run(
            # safe.directory: CI containers check the repository out as another user
            ["git", "-c", "safe.directory=*", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        raise ConfigError(
            f"no git commit at {root} to tag the pipeline's images with",
            "set pipeline.image_tag to the images' tag or sha256:<digest>",
        ) from None
    return out.stdout.strip()


def image_tag(cfg: PipelineCfg, local: bool = False, root: str | Path = PROJECT_ROOT) -> str:
    """The images' tag: the local one, `pipeline.image_tag`, else the git commit."""
    if local:
        return LOCAL_TAG
    tag = cfg.image_tag.strip() or git_commit(root)
    if tag == "latest" or (":" in tag and not tag.startswith("sha256:")):
        raise ConfigError(
            f"pipeline.image_tag {tag!r} is not an immutable reference",
            "use the commit the images were built from, or sha256:<digest>",
        )
    return tag


def reference(repository: str, tag: str) -> str:
    """`repository:tag`, or `repository@sha256:...` for a digest."""
    if ":" in repository.rsplit("/", 1)[-1] or "@" in repository:
        raise ConfigError(
            f"pipeline image {repository!r} carries its own tag",
            "name the repository only (ghcr.io/artflow/artflow); the tag is pipeline.image_tag",
        )
    return f"{repository}@{tag}" if tag.startswith("sha256:") else f"{repository}:{tag}"
