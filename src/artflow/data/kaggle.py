"""The real download path: the Kaggle API with the user's own credentials.

`import kaggle` authenticates at import time and prints a page of help (then carries on
half-configured) when there are no credentials, so we look for them first and raise one
clear DataError instead.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

from artflow.errors import DataError

CREDENTIAL_FILES = ("kaggle.json", "access_token", "credentials.json")
HINT = (
    "create an API token at https://www.kaggle.com/settings/api and save it as "
    "~/.kaggle/kaggle.json (or set KAGGLE_USERNAME and KAGGLE_KEY, or KAGGLE_API_TOKEN); "
    "or download the archive yourself and pass --source FILE.zip"
)


def config_dirs() -> list[Path]:
    if os.environ.get("KAGGLE_CONFIG_DIR"):
        return [Path(os.environ["KAGGLE_CONFIG_DIR"]).expanduser()]
    xdg = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return [Path.home() / ".kaggle", xdg / "kaggle"]


def credentials_present() -> bool:
    if os.environ.get("KAGGLE_API_TOKEN"):
        return True
    if os.environ.get("KAGGLE_USERNAME") and os.environ.get("KAGGLE_KEY"):
        return True
    return any((d / f).is_file() for d in config_dirs() for f in CREDENTIAL_FILES)


def download(slug: str, dest: Path) -> Path:
    """Download a data set (`owner/name`) or competition (`name`) into dest, unzipped."""
    if not credentials_present():
        raise DataError(f"cannot download {slug!r}: no Kaggle credentials found", HINT)
    dest.mkdir(parents=True, exist_ok=True)
    try:
        from kaggle.api.kaggle_api_extended import KaggleApi

        api = KaggleApi()
        api.authenticate()
        if "/" in slug:
            api.dataset_download_files(slug, path=str(dest), unzip=True, quiet=False)
        else:  # competitions (gan-getting-started) need their rules accepted on the website
            api.competition_download_files(slug, path=str(dest), quiet=False)
            for archive in dest.glob("*.zip"):
                with zipfile.ZipFile(archive) as zf:
                    zf.extractall(dest)
                archive.unlink()
    except SystemExit:
        raise DataError(f"Kaggle rejected the credentials for {slug!r}", HINT) from None
    except Exception as exc:  # network, 403 (rules not accepted), 404 (wrong slug)
        raise DataError(
            f"Kaggle download of {slug!r} failed: {exc}",
            "check the slug, your network, and that you accepted the data's rules "
            "on kaggle.com; or pass --source with a downloaded zip",
        ) from None
    return dest
