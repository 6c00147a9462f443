"""Where every stage reads and writes inside one data version directory (`--workdir`).

Paths inside manifests and split CSVs are relative to the workdir root, so a workdir can
be moved or versioned with DVC as a whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from artflow.config import PROJECT_ROOT

if TYPE_CHECKING:
    from artflow.config import Settings


@dataclass(frozen=True)
class Workdir:
    root: Path

    @classmethod
    def at(cls, root: str | Path) -> Workdir:
        return cls(Path(root).expanduser().resolve())

    def abs(self, rel: str | Path) -> Path:
        """Absolute path of a manifest/split entry."""
        p = Path(rel)
        return p if p.is_absolute() else self.root / p

    def rel(self, path: str | Path) -> str:
        return Path(path).resolve().relative_to(self.root).as_posix()

    # raw data, as ingested (never modified after ingest)
    @property
    def raw_artworks(self) -> Path:  # artists.csv + images/<Artist_Name>/*.jpg
        return self.root / "raw" / "artworks"

    @property
    def raw_monet(self) -> Path:  # monet_jpg/ + photo_jpg/
        return self.root / "raw" / "monet"

    # ingest outputs
    @property
    def interim(self) -> Path:
        return self.root / "interim"

    @property
    def manifest(self) -> Path:  # path, artist, sha256, width, height, mode, format
        return self.interim / "manifest.csv"

    @property
    def monet_manifest(self) -> Path:  # path, domain (monet|photo), sha256, size, mode, format
        return self.interim / "monet_manifest.csv"

    @property
    def artists_csv(self) -> Path:
        return self.raw_artworks / "artists.csv"

    @property
    def ingest_report(self) -> Path:
        return self.interim / "ingest_report.json"

    # validation outputs
    @property
    def validation(self) -> Path:
        return self.root / "validation"

    @property
    def validation_summary(self) -> Path:
        return self.validation / "summary.json"

    @property
    def validation_report(self) -> Path:
        return self.validation / "report.html"

    @property
    def quarantine(self) -> Path:  # path, reason
        return self.validation / "quarantine.csv"

    # sampling outputs
    @property
    def splits(self) -> Path:
        return self.root / "splits"

    def split_csv(self, name: str) -> Path:
        """train | val | test: path, artist, label, sha256."""
        return self.splits / f"{name}.csv"

    def style_csv(self, name: str) -> Path:
        """style_train | style_test: path, domain (monet|photo)."""
        return self.splits / f"{name}.csv"

    @property
    def labels(self) -> Path:  # JSON list of artist names, index = label
        return self.splits / "labels.json"

    @property
    def class_weights(self) -> Path:  # JSON {label: weight}
        return self.splits / "class_weights.json"

    # reports, metrics, local model outputs
    @property
    def reports(self) -> Path:
        return self.root / "reports"

    def new_report_folder(self, kind: str) -> Path:
        """`reports/<kind>/<UTC time>` (with a counter when two reports start in one second);
        not created."""
        import datetime as dt

        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        base = self.reports / kind / stamp
        folder, n = base, 1
        while folder.exists():
            folder, n = base.with_name(f"{stamp}-{n}"), n + 1
        return folder

    @property
    def eda(self) -> Path:
        return self.reports / "eda"

    @property
    def metrics(self) -> Path:  # small JSON files, tracked by git via DVC `cache: false`
        return self.root / "metrics"

    @property
    def models(self) -> Path:  # checkpoints and exported models of local runs
        return self.root / "models"


def default_source(settings: Settings, source: str | None = None, local: bool = True) -> str:
    """The ingest step's source, decided here only: as given, else params.yaml's
    `data.source`; a relative local path is made absolute (the steps run in empty
    directories), against the project if needed."""
    value = source or settings.data.source
    if local and "://" not in value and not Path(value).is_absolute():
        path = Path(value) if Path(value).exists() else PROJECT_ROOT / value
        return str(path.resolve())
    return value
