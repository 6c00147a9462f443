"""The serving store's style answers on the rehearsal's PostgreSQL: the same round
trip as on SQLite (tests/serve/test_store.py), in a database of its own. Uses the session
stack; starts nothing."""

from __future__ import annotations

import pytest

from tests.prod.conftest import Stack, _as_postgres
from tests.serve.test_store import style_round_trip

pytestmark = [pytest.mark.prod, pytest.mark.slow]


def test_style_answers_on_postgresql(prod_stack: Stack) -> None:
    pg = prod_stack.postgres
    db = "style_store_probe"
    _as_postgres(
        [str(pg.bin / "createdb"), "-h", "127.0.0.1", "-p", str(pg.port), "-U", "mlflow", db]
    )
    style_round_trip(pg.uri.rsplit("/", 1)[0] + f"/{db}")
