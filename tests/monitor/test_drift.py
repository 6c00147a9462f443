"""Drift end to end on the demo data: reference in MLflow, false alarms, flagged shifts, CLI.

Real parts only: a registered (untrained, seeded) Keras classifier, the sqlite MLflow store of
the session, Evidently 0.7 reports and the artflow CLI in-process.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pandas as pd
import pytest

from artflow import cli
from artflow.errors import DataError
from artflow.monitor import quality
from artflow.monitor.check import EXPERIMENT, check_drift, current_frame
from artflow.monitor.features import FEATURE_NAMES
from artflow.monitor.records import read_log, select_window
from artflow.monitor.reference import TAG
from artflow.monitor.report import compare, quick_verdict
from artflow.registry import tracking
from tests.monitor.helpers import SHIFTS, WINDOW, write_log


def _current(path: Path, reference) -> pd.DataFrame:
    frame, embeddings = select_window(read_log(path), str(WINDOW))
    return current_frame(frame, embeddings, reference.projection)


def smoke_min_window() -> int:
    from artflow.config import load_settings

    return load_settings(profile="smoke").drift.min_window


def test_reference_is_logged_with_the_model_version(
    drift_reference, drift_classifier, drift_wd, smoke_settings
) -> None:
    client = tracking.client()
    mv = client.get_model_version(drift_classifier.name, drift_classifier.version)
    assert mv.tags[TAG] == f"runs:/{drift_classifier.run_id}/drift"
    logged = {f.path for f in client.list_artifacts(drift_classifier.run_id, "drift")}
    assert {"drift/reference.parquet", "drift/projection.json"} <= logged
    frame, proj = drift_reference.frame, drift_reference.projection
    assert len(frame) == len(pd.read_csv(drift_wd.split_csv("train")))
    assert set(FEATURE_NAMES) <= set(frame.columns) and {"artist", "confidence"} <= set(frame)
    assert proj.k == smoke_settings.drift.embedding_components
    assert proj.dim == smoke_settings.cnn.dense_units  # the penultimate Dense layer
    assert list(frame.columns[-proj.k :]) == proj.columns
    assert frame["artist"].isin(drift_classifier.labels).all()


def test_same_distribution_windows_are_rarely_flagged(
    tmp_path: Path, traffic, drift_reference, smoke_settings
) -> None:
    """False-alarm rate over 20 random windows of held-out paintings: at most 5% (1 of 20)."""
    share = smoke_settings.drift.drift_share
    rng = random.Random(smoke_settings.seed)
    flagged, shares = 0, []
    for i in range(20):
        log = write_log(tmp_path, f"same{i}", rng.sample(traffic["paintings"], WINDOW))
        current = _current(log, drift_reference)
        assert "emb_0" in current.columns  # the embedding is part of every comparison
        verdict = quick_verdict(current, drift_reference.frame, share)
        if i == 0:  # the fast path is the Evidently report's own verdict, column by column
            assert compare(current, drift_reference.frame, share).verdict == verdict
        flagged += verdict["drifted"]
        shares.append(round(verdict["share"], 2))
    print(f"false alarms {flagged}/20, drifted-column shares {shares}")
    assert flagged <= 1


@pytest.mark.parametrize("kind", SHIFTS)
def test_shifted_traffic_is_flagged_and_reported(kind: str, verdicts) -> None:
    verdict, expected_records, _ = verdicts[kind]
    assert verdict["drifted"], verdict["drifted_features"]
    assert verdict["share"] >= verdict["drift_share_threshold"]
    assert verdict["drifted_columns"] == len(verdict["drifted_features"])
    assert verdict["window"]["records"] == expected_records >= smoke_min_window()
    assert verdict["embedding"] == "compared"
    for test in verdict["tests"]:
        assert {"column", "kind", "test", "score", "threshold", "drifted"} <= set(test)
    kinds = {t["kind"] for t in verdict["tests"] if t["drifted"]}
    assert {"feature", "embedding"} <= kinds  # new looks move the pixels and the model's view
    expected = {"photos": "aspect_ratio", "darkened": "brightness", "other_artists": "contrast"}
    assert expected[kind] in verdict["drifted_features"]


def test_report_files_and_mlflow_run(verdicts) -> None:
    verdict, _, _ = verdicts["darkened"]
    html, saved = Path(verdict["report"]["html"]), Path(verdict["report"]["json"])
    page = html.read_text()  # Evidently's page: the dataset verdict and a tab per column
    assert "Dataset Drift is detected" in page
    assert all(column in page for column in verdict["drifted_features"])
    assert json.loads(saved.read_text())["drifted_features"] == verdict["drifted_features"]
    client = tracking.client()
    run = client.get_run(verdict["mlflow_run_id"])
    assert client.get_experiment(run.info.experiment_id).name == EXPERIMENT
    assert run.data.tags["artflow.drifted"] == "true"
    assert run.data.metrics["drift_share"] == pytest.approx(verdict["share"])
    files = {f.path for f in client.list_artifacts(run.info.run_id, "drift_report")}
    assert files == {"drift_report/report.html", "drift_report/verdict.json"}


def test_too_small_empty_or_foreign_windows_are_clear_errors(
    tmp_path: Path, traffic, drift_wd, drift_classifier, drift_reference, smoke_settings, capsys
) -> None:
    few = write_log(tmp_path, "few", traffic["paintings"][:5])
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    foreign = write_log(
        tmp_path,
        "foreign",
        [r.model_copy(update={"model_version": "999"}) for r in traffic["paintings"]],
    )
    for log in (few, empty):
        with pytest.raises(DataError, match="fewer than drift.min_window=20"):
            check_drift(smoke_settings, drift_wd, log, "x", reference=drift_reference)
    with pytest.raises(DataError, match=r"other versions \['999'\]"):
        check_drift(smoke_settings, drift_wd, foreign, "x", reference=drift_reference)
    args = ["--workdir", str(drift_wd.root), "--model-uri", drift_classifier.uri, "-p", "smoke"]
    code = cli.run(["drift", "--log", str(few), *args])
    err = capsys.readouterr().err
    assert code == 2 and "fewer than drift.min_window" in err and "Traceback" not in err
    assert cli.run(["drift", "--log", str(tmp_path / "missing.jsonl"), *args]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_cli_builds_a_missing_reference_and_fails_on_drift(
    tmp_path: Path, demo_source: Path, traffic, drift_wd, drift_classifier, smoke_settings, capsys
) -> None:
    """A new version has no reference: `artflow drift` builds and logs it, then reports.

    The new version reuses the session's weights (registering is what matters here), and its
    photo traffic is logged offline by `artflow drift simulate`'s code path. Then a canary's
    window: the champion's paintings beside the new version's photos, each version checked
    against its own reference and labelled in one verdict."""
    import dataclasses
    import shutil

    from artflow.classify.io import register_classifier
    from artflow.monitor.simulate import image_paths, log_images
    from artflow.serve.predlog import PredictionLog

    with tracking.start_run("artflow-drift-tests", "new-version", smoke_settings):
        reg = register_classifier(
            drift_classifier.model,
            drift_classifier.labels,
            drift_classifier.image_size,
            "cnn",
            challenger=False,
        )
    fresh = dataclasses.replace(drift_classifier, version=reg.version, run_id=reg.run_id)
    log = tmp_path / "photos"
    writer = PredictionLog(log, pod="simulate")
    logged = log_images(fresh, image_paths(demo_source / "monet" / "photo_jpg"), writer)
    assert logged["logged"] == smoke_settings.data.demo.photos
    args = ["--workdir", str(drift_wd.root), "--model-uri", reg.uri, "-p", "smoke"]
    code = cli.run(["drift", "--log", str(log), "--window", "1d", "--fail-on-drift", *args])
    captured = capsys.readouterr()
    assert code == 1 and "DRIFT" in captured.out and "aspect_ratio" in captured.out
    assert "drift detected" in captured.err
    mv = tracking.client().get_model_version(reg.name, reg.version)
    assert mv.tags[TAG] == f"runs:/{reg.run_id}/drift"

    mixed = write_log(tmp_path, "mixed", traffic["paintings"])
    shutil.copytree(log / "simulate", mixed / "simulate")
    # The style check's verdict of the same run rides along (artflow drift's default --check).
    style = quality.judge([], {}, {}, smoke_settings.drift.style_quality, 500)
    verdict = check_drift(
        smoke_settings,
        drift_wd,
        mixed,
        drift_classifier.uri,
        log_to_mlflow=False,
        style_quality=style,
    )
    assert verdict["style_quality"]["kind"] == "style_quality"
    assert "Style quality of served answers" in Path(verdict["report"]["html"]).read_text()
    canary = verdict["other_versions"][reg.version]
    assert not verdict["drifted"] and verdict["model"]["version"] == drift_classifier.version
    assert canary["checked"] is True and canary["drifted"] is True
    assert canary["records"] == logged["logged"] and verdict["drifted_any_version"] is True


def test_every_version_in_the_window_is_labelled_in_the_verdict(
    tmp_path: Path, traffic, drift_wd, drift_classifier, drift_reference, smoke_settings
) -> None:
    """A canary's traffic (another version) beside the champion's: the champion's is checked
    against its reference, the other version is listed with its own outcome (here: it has
    no registered reference, said so) instead of silently ignored."""
    ours = traffic["paintings"]
    other = [r.model_copy(update={"model_version": "999"}) for r in traffic["darkened"][:30]]
    log = write_log(tmp_path, "mixed", ours + other)
    verdict = check_drift(
        smoke_settings, drift_wd, log, drift_classifier.uri, reference=drift_reference
    )
    assert verdict["window"]["other_versions_ignored"] == ["999"]
    assert verdict["other_versions"]["999"]["checked"] is False
    assert "999" in verdict["other_versions"]["999"]["reason"]
    assert verdict["drifted_any_version"] == bool(verdict["drifted"])
