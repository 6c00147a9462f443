"""McNemar's test against textbook values."""

from __future__ import annotations

import pytest

from artflow.errors import ModelError
from artflow.stats import mcnemar, mcnemar_from_counts


def test_wikipedia_example_chi_square() -> None:
    # Wikipedia "McNemar's test": a=101, b=121, c=59, d=33. Uncorrected chi2 = 21.35;
    # with Edwards' continuity correction (|121-59|-1)^2/180 = 20.672, p = 5.45e-6.
    r = mcnemar_from_counts(b=121, c=59, both_right=101, both_wrong=33)
    assert r.n == 314 and r.discordant == 180
    assert r.method == "chi2"
    assert r.chi2 == pytest.approx(20.6722, abs=1e-4)
    assert r.p_value == pytest.approx(5.45e-6, rel=0.01)
    assert not r.candidate_better and not r.significant(0.05)


def test_exact_binomial_small_counts() -> None:
    # b=2, c=10: two-sided exact p = 2 * P(X <= 2 | n=12, 1/2) = 2 * 79/4096 = 0.038574
    r = mcnemar_from_counts(b=2, c=10, both_right=30, both_wrong=5)
    assert r.method == "exact"
    assert r.p_exact == pytest.approx(158 / 4096, rel=1e-9)
    assert r.p_value == r.p_exact
    assert r.candidate_better and r.significant(0.05) and not r.significant(0.01)


def test_exact_all_one_side() -> None:
    # 5 discordant pairs all in the candidate's favour: p = 2 / 2^5 = 0.0625, not significant
    r = mcnemar_from_counts(b=0, c=5, both_right=10)
    assert r.p_value == pytest.approx(0.0625)
    assert not r.significant(0.05)


def test_no_discordant_pairs() -> None:
    r = mcnemar([True, False, True], [True, False, True])
    assert r.discordant == 0 and r.p_value == 1.0 and not r.candidate_better


def test_lengths_must_match() -> None:
    with pytest.raises(ModelError, match="same images"):
        mcnemar([True, False], [True])
