"""CLI error paths: one clear message, non-zero exit, before any training starts."""

from __future__ import annotations

import pytest

from artflow.cli import run


def test_unknown_family(tmp_path, capsys) -> None:
    assert run(["train", "classifier", "--family", "vgg16", "--workdir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "'vgg16' is not one of 'cnn', 'resnet50'" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "classifier", "--family", "cnn"],
        ["tune", "cnn"],
        ["evaluate", "--model-uri", "models:/artflow-artist-classifier/1"],
    ],
)
def test_missing_split_file(argv, tmp_path, capsys) -> None:
    assert run([*argv, "--workdir", str(tmp_path), "--profile", "smoke"]) == 2
    err = capsys.readouterr().err
    assert "splits/" in err and "does not exist" in err and "artflow data sample" in err


def test_missing_weights_path(tmp_path, capsys) -> None:
    missing = tmp_path / "resnet50_notop.h5"
    argv = ["train", "classifier", "--family", "resnet50", "--weights", str(missing)]
    assert run([*argv, "--workdir", str(tmp_path), "--profile", "smoke"]) == 2
    err = capsys.readouterr().err
    assert str(missing) in err and "does not exist" in err and "Traceback" not in err


def test_unknown_split(tmp_path, capsys) -> None:
    assert run(["evaluate", "--split", "holdout", "--workdir", str(tmp_path)]) == 2
    assert "'holdout' is not one of 'train', 'val', 'test'" in capsys.readouterr().err


@pytest.mark.slow
def test_evaluate_command_and_unknown_alias(trained_cnn, classify_workdir, capsys) -> None:
    wd = str(classify_workdir.root)
    uri = trained_cnn["model_uri"]
    assert run(["evaluate", "--model-uri", uri, "--workdir", wd, "--split", "val"]) == 0
    assert "accuracy" in capsys.readouterr().out
    bad = "models:/artflow-artist-classifier@no-such-alias"
    assert run(["evaluate", "--model-uri", bad, "--workdir", wd]) == 2
    err = capsys.readouterr().err
    assert "no-such-alias" in err and "Traceback" not in err
