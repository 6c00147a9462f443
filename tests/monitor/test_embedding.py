"""The PCA projection: same numbers as sklearn, stored as plain JSON."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from artflow.errors import DataError, ModelError
from artflow.monitor.embedding import Projection


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    rng = np.random.default_rng(0)
    basis = rng.normal(size=(3, 16))
    return rng.normal(size=(200, 3)) @ basis + 0.01 * rng.normal(size=(200, 16)) + 5.0


def test_projection_matches_sklearn_and_survives_json(vectors: np.ndarray, tmp_path: Path) -> None:
    from sklearn.decomposition import PCA

    proj = Projection.fit(vectors, k=4, model_name="m", model_version="2")
    expected = PCA(n_components=4, random_state=0).fit(vectors).transform(vectors)
    np.testing.assert_allclose(proj.transform(vectors), expected, atol=1e-8)
    assert proj.explained_variance_ratio[:3].sum() > 0.99  # three real directions
    path = proj.save(tmp_path / "projection.json")
    data = json.loads(path.read_text())  # plain JSON, nothing to unpickle
    assert data["k"] == 4 and data["dim"] == 16 and data["model_version"] == "2"
    np.testing.assert_allclose(Projection.load(path).transform(vectors), expected, atol=1e-8)


def test_fewer_components_than_asked_when_the_reference_is_small(vectors: np.ndarray) -> None:
    assert Projection.fit(vectors[:5], k=8).k == 4


def test_wrong_width_and_malformed_json_are_clear_errors(
    vectors: np.ndarray, tmp_path: Path
) -> None:
    proj = Projection.fit(vectors, k=2)
    with pytest.raises(DataError, match="different model version"):
        proj.transform(np.zeros((3, 7)))
    (tmp_path / "bad.json").write_text(json.dumps({"mean": [0, 1], "components": [[1, 2, 3]]}))
    with pytest.raises(ModelError):
        Projection.load(tmp_path / "bad.json")
    with pytest.raises(DataError):
        Projection.fit(vectors[:1], k=2)
