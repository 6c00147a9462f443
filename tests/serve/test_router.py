"""A/B router: split share, stickiness and monotonicity, without a server."""

from __future__ import annotations

import pytest

from artflow.serve.router import CHALLENGER, CHAMPION, Router, bucket, client_key


def test_weight_point_three_splits_thirty_percent_over_1000_keys():
    router = Router(0.3)
    picks = [router.assign(f"user-{i}") for i in range(1000)]
    share = picks.count(CHALLENGER) / len(picks)
    assert 0.25 <= share <= 0.35, share


def test_assignment_is_sticky_per_key():
    router = Router(0.5)
    first = {f"k{i}": router.assign(f"k{i}") for i in range(200)}
    again = {key: Router(0.5).assign(key) for key in first}  # a fresh router, e.g. a restart
    assert first == again
    assert set(first.values()) == {CHAMPION, CHALLENGER}


def test_raising_the_weight_only_moves_users_to_the_challenger():
    low, high = Router(0.2), Router(0.6)
    for i in range(500):
        key = f"c{i}"
        if low.assign(key) == CHALLENGER:
            assert high.assign(key) == CHALLENGER


def test_edges_and_missing_challenger():
    assert all(Router(0.0).assign(f"x{i}") == CHAMPION for i in range(100))
    assert all(Router(1.0).assign(f"x{i}") == CHALLENGER for i in range(100))
    assert Router(1.0).assign("x", challenger_available=False) == CHAMPION


def test_bucket_is_a_stable_fraction():
    values = [bucket(f"k{i}") for i in range(100)]
    assert all(0.0 <= v < 1.0 for v in values)
    assert bucket("same") == bucket("same") != bucket("other")


@pytest.mark.parametrize("weight", [-0.1, 1.5, float("nan")])
def test_invalid_weight_is_refused(weight):
    with pytest.raises(ValueError, match="between 0 and 1"):
        Router(weight)
    router = Router(0.1)
    with pytest.raises(ValueError):
        router.set_weight(weight)
    assert router.weight == 0.1


def test_set_weight_returns_the_previous_one():
    router = Router(0.1)
    assert router.set_weight(0.4) == 0.1
    assert router.weight == 0.4


def test_client_key_prefers_the_header_then_the_address():
    assert client_key("alice", "10.0.0.1") == "alice"
    assert client_key("  ", "10.0.0.1") == "addr:10.0.0.1"
    assert client_key(None, None) == "addr:unknown"
    assert len(client_key("x" * 10_000, None)) == 256
