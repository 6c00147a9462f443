"""Config errors a user can make: one message naming the key and the allowed range."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from artflow.config import DEFAULT_PARAMS, load_settings
from artflow.errors import ConfigError


def _params_with(tmp_path: Path, section: str, key: str, value) -> Path:
    raw = yaml.safe_load(DEFAULT_PARAMS.read_text())
    raw[section][key] = value
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize(
    ("section", "key", "value", "expected"),
    [
        ("sample", "train_share", 1.5, "sample.train_share: Input should be less than 1"),
        ("sample", "min_paintings", 0, "sample.min_paintings: Input should be greater than or"),
        ("validate", "max_quarantine_share", -0.1, "validate.max_quarantine_share"),
        ("validate", "min_side", "big", "validate.min_side: Input should be a valid integer"),
    ],
)
def test_bad_value_names_key_and_range(tmp_path: Path, section, key, value, expected) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(_params_with(tmp_path, section, key, value))
    assert expected in str(err.value) and repr(value) in str(err.value)


def test_unknown_key_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"sample.min_painting: Extra inputs"):
        load_settings(_params_with(tmp_path, "sample", "min_painting", 200))


def test_unknown_profile_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="unknown profile 'tiny'") as err:
        load_settings(profile="tiny")
    assert "smoke" in str(err.value) and "full" in str(err.value)


def test_profile_overlay_and_overrides() -> None:
    smoke = load_settings(profile="smoke")
    assert smoke.sample.min_paintings == 20 and smoke.profile == "smoke"
    assert smoke.sample.train_share == 0.8  # untouched keys keep params.yaml values
    assert load_settings().sample.min_paintings == 200
    assert load_settings(overrides={"sample": {"min_paintings": 5}}).sample.min_paintings == 5


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("sample: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(bad)
