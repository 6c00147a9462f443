"""Paired significance test for the promotion gate: McNemar on per-image correctness.

Two classifiers scored on the same frozen test images give, per image, "right" or "wrong".
Only the discordant pairs carry evidence: b = champion right / candidate wrong and
c = champion wrong / candidate right. Under H0 (equal error rates) b ~ Binomial(b + c, 1/2).

Both versions are reported; `p_value` (the one that decides) is the exact binomial test
when b + c < EXACT_BELOW (the chi-square approximation is poor for few discordant pairs),
otherwise the chi-square test with Edwards' continuity correction. Both come from
statsmodels' `mcnemar`; this module counts the 2x2 table and keeps the report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

from artflow.errors import ModelError

EXACT_BELOW = 25  # discordant pairs; the usual rule of thumb (e.g. statsmodels' docs)


@dataclass(frozen=True)
class McNemar:
    n: int  # paired observations
    both_right: int
    b: int  # champion right, candidate wrong
    c: int  # champion wrong, candidate right
    both_wrong: int
    chi2: float  # with continuity correction
    p_chi2: float
    p_exact: float  # two-sided exact binomial
    method: str  # "exact" | "chi2": which p-value decides
    p_value: float

    @property
    def discordant(self) -> int:
        return self.b + self.c

    @property
    def candidate_better(self) -> bool:
        return self.c > self.b

    def significant(self, alpha: float) -> bool:
        """The candidate is significantly better (not merely different) at level alpha."""
        return self.candidate_better and self.p_value < alpha

    def to_dict(self) -> dict[str, float | int | str]:
        return asdict(self)


def mcnemar(champion_correct: Sequence[bool], candidate_correct: Sequence[bool]) -> McNemar:
    """McNemar's test on two models' correctness over the same images (same order)."""
    from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar

    if len(champion_correct) != len(candidate_correct):
        raise ModelError(
            f"paired test needs the same images: {len(champion_correct)} vs "
            f"{len(candidate_correct)} predictions",
            "evaluate both models on the same frozen test split",
        )
    pairs = [(bool(a), bool(b)) for a, b in zip(champion_correct, candidate_correct, strict=True)]
    both_right = sum(a and b for a, b in pairs)
    b = sum(a and not c for a, c in pairs)
    c = sum(c and not a for a, c in pairs)
    both_wrong = len(pairs) - both_right - b - c
    n_disc = b + c
    if n_disc == 0:  # identical correctness: no evidence either way (statsmodels gives nan)
        stat, p_chi2, p_exact = 0.0, 1.0, 1.0
    else:
        table = [[both_right, b], [c, both_wrong]]  # rows: champion right/wrong
        chi = sm_mcnemar(table, exact=False, correction=True)
        stat, p_chi2 = float(chi.statistic), float(chi.pvalue)
        p_exact = float(sm_mcnemar(table, exact=True).pvalue)
    method = "exact" if n_disc < EXACT_BELOW else "chi2"
    return McNemar(
        n=len(pairs),
        both_right=both_right,
        b=b,
        c=c,
        both_wrong=both_wrong,
        chi2=float(stat),
        p_chi2=p_chi2,
        p_exact=p_exact,
        method=method,
        p_value=p_exact if method == "exact" else p_chi2,
    )


def mcnemar_from_counts(b: int, c: int, both_right: int = 0, both_wrong: int = 0) -> McNemar:
    """The same test from a 2x2 table's counts (textbook examples are given this way)."""
    champ = [True] * both_right + [True] * b + [False] * c + [False] * both_wrong
    cand = [True] * both_right + [False] * b + [True] * c + [False] * both_wrong
    return mcnemar(champ, cand)
