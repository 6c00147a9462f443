"""kfp's local runner as artflow uses it: every step in its own empty working directory.

The whole training pipeline runs locally (twice: then restored from the cache) in the
production rehearsal, tests/prod/test_rehearsal.py, from a DVC remote on S3 against the
MLflow server."""

import json
from pathlib import Path


def test_each_step_starts_in_its_own_empty_directory(tmp_path):
    """A step that looks for files outside its artifacts finds nothing (as in a pod)."""
    from kfp import dsl, local
    from kfp.dsl import Artifact, Output

    from pipelines.local_runner import steps_in_empty_dirs

    @dsl.component(base_image="python:3.11", install_kfp_package=False)
    def where(out: Output[Artifact]):
        import json
        import os

        with open(out.path, "w") as f:
            json.dump({"cwd": os.getcwd(), "files": os.listdir(".")}, f)

    local.init(local.SubprocessRunner(use_venv=False), pipeline_root=str(tmp_path / "root"))
    with steps_in_empty_dirs():
        first, second = where(), where()
    seen = [json.loads(Path(t.outputs["out"].path).read_text()) for t in (first, second)]
    assert seen[0]["files"] == seen[1]["files"] == []
    assert seen[0]["cwd"] != seen[1]["cwd"] != str(Path.cwd())
