"""The promotion gate on real registered models, evaluated on a real frozen test split."""

from __future__ import annotations

import json

import pytest

from artflow.cli import run as cli
from artflow.config import load_settings
from artflow.errors import GateFailed
from artflow.promote import history, promote
from artflow.registry import tracking

from .conftest import register_color_model


def _champion(name: str) -> str:
    return str(tracking.client().get_model_version_by_alias(name, "champion").version)


def test_first_model_needs_only_thresholds(smoke_settings, color_workdir, model_name):
    v1 = register_color_model(smoke_settings, model_name)
    decision = promote(smoke_settings, color_workdir, model_name, "challenger")
    assert decision.passed and decision.promoted and decision.champion is None
    assert {c.name for c in decision.checks} == {
        "accuracy",
        "macro_f1",
        "latency_ms",
        "model_size_mb",
    }
    assert decision.evaluations["candidate"]["accuracy"] == pytest.approx(1.0)
    assert _champion(model_name) == v1
    assert tracking.alias_version(model_name, "challenger") is None  # it became champion
    saved = json.loads((color_workdir.reports / "gate" / f"{model_name}-v{v1}.json").read_text())
    assert saved["passed"] and saved["promoted"]
    mv = tracking.client().get_model_version(model_name, v1)
    assert mv.tags["gate.decision"] == "passed"
    assert "# Model card" in mv.description and "Promotion gate" in mv.description
    assert "Intended use" in mv.description and "Limitations" in mv.description
    gate_run = tracking.client().get_run(decision.gate_run_id)
    assert gate_run.data.metrics["passed"] == 1.0


def test_worse_challenger_is_refused_and_champion_stays(
    smoke_settings, color_workdir, model_name, tmp_path, capsys
):
    v1 = register_color_model(smoke_settings, model_name)
    promote(smoke_settings, color_workdir, model_name, v1)
    v2 = register_color_model(smoke_settings, model_name, swap=((0, 1),))  # accuracy 1/3
    argv = [
        "promote",
        model_name,
        "--candidate",
        "challenger",
        "--workdir",
        str(color_workdir.root),
        "--profile",
        "smoke",
        "--report-dir",
        str(tmp_path),
    ]
    assert cli(argv) == 1
    err = capsys.readouterr().err
    assert f"v{v2} refused" in err and "accuracy_vs_champion" in err
    assert _champion(model_name) == v1  # models:/NAME@champion still resolves to v1
    report = json.loads((tmp_path / f"{model_name}-v{v2}.json").read_text())
    assert not report["passed"] and not report["promoted"]
    failed = {c["name"] for c in report["checks"] if not c["passed"]}
    assert failed == {"accuracy_vs_champion", "macro_f1_vs_champion"}
    assert "**FAIL**" in (tmp_path / f"{model_name}-v{v2}.md").read_text()
    assert tracking.client().get_model_version(model_name, v2).tags["gate.decision"] == "refused"


def test_significance_then_rollback(color_workdir, model_name, capsys):
    settings = load_settings(profile="smoke", overrides={"gate": {"require_significance": True}})
    v1 = register_color_model(settings, model_name, swap=((0, 1),))  # 1/3 >= smoke min 0.2
    assert promote(settings, color_workdir, model_name, v1).promoted
    same = register_color_model(settings, model_name, swap=((0, 1),))
    with pytest.raises(GateFailed, match="mcnemar_p"):  # equal, so not significantly better
        promote(settings, color_workdir, model_name, same)
    better = register_color_model(settings, model_name)
    decision = promote(settings, color_workdir, model_name, better)
    assert decision.promoted and decision.mcnemar["c"] == 16 and decision.mcnemar["b"] == 0
    assert decision.mcnemar["method"] == "exact" and decision.mcnemar["p_value"] < 1e-4
    assert history(model_name) == [v1, better] and _champion(model_name) == better

    assert cli(["rollback", model_name]) == 0
    assert _champion(model_name) == v1
    assert cli(["rollback", model_name]) == 2  # nothing earlier than the first champion
    assert "nothing to roll back" in capsys.readouterr().err
    assert _champion(model_name) == v1


def test_unknown_model_and_version_are_clear_errors(color_workdir, model_name, capsys):
    wd = ["--workdir", str(color_workdir.root)]
    assert cli(["promote", "no-such-model", *wd]) == 2
    assert "no registered model named 'no-such-model'" in capsys.readouterr().err
    register_color_model(load_settings(profile="smoke"), model_name)
    assert cli(["promote", model_name, "--candidate", "99", *wd]) == 2
    assert "has no version '99'" in capsys.readouterr().err
    assert cli(["promote", model_name, "--candidate", "champion", *wd]) == 2
    assert "has no alias 'champion'" in capsys.readouterr().err
    assert cli(["rollback", model_name]) == 2
    assert cli(["models", "compare", "no-such-model"]) == 2


def test_compare_shows_versions_aliases_metrics(
    smoke_settings, color_workdir, model_name, tmp_path
):
    from artflow.registry.views import compare

    v1 = register_color_model(smoke_settings, model_name, family="cnn")
    promote(smoke_settings, color_workdir, model_name, v1)
    v2 = register_color_model(smoke_settings, model_name, swap=((1, 2),), family="resnet50")
    table = compare(model_name)
    assert [r.version for r in table.rows] == [v2, v1]
    # v1 passed the gate's absolute thresholds, so it is also the best CNN (model choice)
    assert table.rows[0].aliases == ["challenger"]
    assert sorted(table.rows[1].aliases) == ["best-cnn", "champion"]
    assert table.rows[1].metrics["test_accuracy"] == 1.0
    out = tmp_path / "compare.md"
    assert cli(["models", "compare", model_name, "--markdown", str(out)]) == 0
    md = out.read_text()
    assert "| version | family | aliases | test_accuracy" in md
    assert f"| {v1} | cnn | **best-cnn** **champion** | 1.0000" in md
    assert f"| {v2} | resnet50 | **challenger** | 0.3333" in md
    assert cli(["models", "list"]) == 0
