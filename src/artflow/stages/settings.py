"""A step's settings and its entry: params.yaml + the profile, logging, the MLflow URI."""

from __future__ import annotations

from pathlib import Path

from artflow import logs
from artflow.config import Settings, load_settings


def is_overlay_file(profile: str) -> bool:
    return profile.endswith((".yaml", ".yml"))


def settings_for(profile: str) -> Settings:
    """`profile` names profiles/<name>.yaml, or is the path of an overlay YAML of the same shape
    (a one-off variant, e.g. fewer epochs, without adding a profile to the project)."""
    if not is_overlay_file(profile):
        return load_settings(profile=profile or None)
    import yaml

    from artflow.errors import ConfigError

    path = Path(profile).expanduser()
    if not path.is_file():
        raise ConfigError(f"profile overlay {path} does not exist", "pass a profile name or a file")
    return load_settings(overrides=yaml.safe_load(path.read_text()) or {})


def begin(profile: str, mlflow_uri: str) -> Settings:
    """A step's entry: logging, the MLflow URI parameter, the settings."""
    logs.ensure_configured()  # a pipeline step's entry: its artflow lines show in the step's log
    if mlflow_uri:
        from artflow.registry import tracking

        tracking.use_tracking_uri(mlflow_uri)
    return settings_for(profile)
