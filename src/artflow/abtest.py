"""The online A/B test: per-variant accuracy from user feedback, and when it may conclude.

Each answered prediction can get one feedback ("correct" or the true artist), so each variant
has n labelled predictions of which k were right. Per variant: the accuracy k/n with a
Wilson score interval (good coverage at small n and near 0 or 1, unlike the Wald interval).

The difference is judged with a two-sided two-proportion z-test (pooled variance). Why this
and not McNemar (the gate's test) or a Bayesian posterior: the two variants answer different
users, so the samples are independent, not paired; the z-test's false-positive rate is a
number (`abtest.alpha`) that the promote workflow and a simulation can check directly, which
a posterior probability threshold does not give without the same simulation.

Stopping rule (`abtest.min_samples`, `abtest.alpha`): the verdict is a fixed-horizon test on
the first `min_samples` labelled outcomes of each variant (in time order). Checking the report
every day therefore does not inflate the false-positive rate (no "peeking": later feedback
cannot turn an earlier "keep" into "promote"); until both variants have `min_samples`
outcomes the verdict is "not enough data".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from artflow.config import AbTestCfg

KEEP, PROMOTE, NOT_ENOUGH = "keep champion", "promote challenger", "not enough data"
CHAMPION, CHALLENGER = "champion", "challenger"


@dataclass(frozen=True)
class Accuracy:
    n: int
    correct: int
    accuracy: float | None
    lower: float | None
    upper: float | None


@dataclass(frozen=True)
class Verdict:
    champion: Accuracy  # over all feedback received
    challenger: Accuracy
    decision: str  # KEEP | PROMOTE | NOT_ENOUGH
    reason: str
    z: float | None  # of the test on the first min_samples outcomes per variant
    p_value: float | None
    difference: float | None  # challenger minus champion accuracy (tested samples)
    min_samples: int
    alpha: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def wilson(correct: int, n: int, confidence: float) -> tuple[float | None, float | None]:
    """Wilson score interval of a proportion; (None, None) without observations."""
    if n == 0:
        return None, None
    from scipy.stats import binomtest

    ci = binomtest(correct, n).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


def accuracy(outcomes: Iterable[bool], confidence: float) -> Accuracy:
    values = [bool(x) for x in outcomes]
    return counted(sum(values), len(values), confidence)


def counted(k: int, n: int, confidence: float) -> Accuracy:
    """The accuracy of `k` right out of `n`, with its Wilson interval."""
    low, high = wilson(k, n, confidence)
    return Accuracy(n=n, correct=k, accuracy=k / n if n else None, lower=low, upper=high)


def z_test(k1: Any, n1: Any, k2: Any, n2: Any) -> tuple[Any, Any]:
    """Two-sided pooled two-proportion z-test of p2 - p1; vectorised over numpy arrays.

    Written out (a few lines) because scipy has no two-proportion test and statsmodels'
    would be a dependency for one function; numpy arrays make the simulation fast.
    """
    from scipy.special import ndtr

    k1, n1, k2, n2 = (np.asarray(x, dtype=np.float64) for x in (k1, n1, k2, n2))
    pooled = (k1 + k2) / (n1 + n2)
    se = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, (k2 / n2 - k1 / n1) / np.where(se > 0, se, 1.0), 0.0)
    return z, 2 * ndtr(-np.abs(z))


def decide(k_champ: Any, k_chall: Any, n: int, alpha: float) -> tuple[Any, Any, Any]:
    """(promote?, z, p) for `n` outcomes per variant; vectorised like z_test."""
    z, p = z_test(k_champ, n, k_chall, n)
    return (p < alpha) & (z > 0), z, p


def verdict(champion: list[bool], challenger: list[bool], cfg: AbTestCfg) -> Verdict:
    """The report's conclusion from each variant's outcomes (True = right), oldest first."""
    acc = {
        v: accuracy(o, cfg.confidence) for v, o in ((CHAMPION, champion), (CHALLENGER, challenger))
    }
    common = dict(
        champion=acc[CHAMPION],
        challenger=acc[CHALLENGER],
        min_samples=cfg.min_samples,
        alpha=cfg.alpha,
    )
    short = min(len(champion), len(challenger))
    if short < cfg.min_samples:
        reason = (
            f"{short} of {cfg.min_samples} labelled predictions in the smaller variant "
            f"(champion {len(champion)}, challenger {len(challenger)})"
        )
        return Verdict(
            decision=NOT_ENOUGH, reason=reason, z=None, p_value=None, difference=None, **common
        )
    m = cfg.min_samples
    k1, k2 = sum(champion[:m]), sum(challenger[:m])
    promote, z, p = decide(k1, k2, m, cfg.alpha)
    diff = (k2 - k1) / m
    if bool(promote):
        decision, reason = (
            PROMOTE,
            f"challenger better by {diff:+.3f} (p = {float(p):.3g} < {cfg.alpha})",
        )
    elif float(p) < cfg.alpha:
        decision, reason = KEEP, f"challenger worse by {diff:+.3f} (p = {float(p):.3g})"
    else:
        decision, reason = (
            KEEP,
            f"no significant difference ({diff:+.3f}, p = {float(p):.3g} >= {cfg.alpha})",
        )
    return Verdict(
        decision=decision, reason=reason, z=float(z), p_value=float(p), difference=diff, **common
    )


def simulate(
    p_champion: float, p_challenger: float, cfg: AbTestCfg, experiments: int, seed: int = 0
) -> dict[str, float]:
    """Share of `experiments` simulated A/B tests ending in each decision (fixed horizon)."""
    rng = np.random.default_rng(seed)
    k1 = rng.binomial(cfg.min_samples, p_champion, experiments)
    k2 = rng.binomial(cfg.min_samples, p_challenger, experiments)
    promote, _, p = decide(k1, k2, cfg.min_samples, cfg.alpha)
    return {
        "promote": float(np.mean(promote)),
        "significant": float(np.mean(p < cfg.alpha)),
        "keep": float(np.mean(~promote)),
    }


def markdown(v: Verdict, title: str = "A/B test") -> str:
    """The report as Markdown (for the promote workflow's evidence and the job summary)."""

    def row(name: str, a: Accuracy) -> str:
        if a.accuracy is None:
            return f"| {name} | 0 | - | - |"
        return f"| {name} | {a.n} | {a.accuracy:.3f} | [{a.lower:.3f}, {a.upper:.3f}] |"

    lines = [
        f"## {title}: **{v.decision}**",
        "",
        v.reason,
        "",
        "| variant | labelled | online accuracy | Wilson interval |",
        "|---|---|---|---|",
        row(CHAMPION, v.champion),
        row(CHALLENGER, v.challenger),
        "",
        f"Two-sided two-proportion z-test on the first {v.min_samples} labelled predictions "
        f"of each variant, alpha {v.alpha}"
        + ("" if v.p_value is None else f": z = {v.z:.3f}, p = {v.p_value:.3g}."),
    ]
    return "\n".join(lines) + "\n"


def rating_summary(rows: Iterable[dict[str, Any]], alpha: float) -> list[dict[str, Any]]:
    """User ratings of stylizations and Monet paintings per model and version (the serving
    store's style answers in a window, `ServingStore.style_window`), and, for a model that
    served two or more versions, the newest two compared.

    The comparison is a two-sided Mann-Whitney U test: ratings 1..5 are ordinal, and the two
    versions answered different users (independent samples)."""
    by_model: dict[str, dict[str, dict[str, Any]]] = {}
    for r in rows:
        versions = by_model.setdefault(r["model_name"], {})
        seen = versions.setdefault(
            str(r["model_version"]),
            {"version": str(r["model_version"]), "answers": 0, "ratings": [], "last": 0.0},
        )
        seen["answers"] += 1
        seen["last"] = max(seen["last"], float(r["at"]))
        if r.get("rating") is not None:
            seen["ratings"].append(int(r["rating"]))
    out = []
    for model, versions in sorted(by_model.items()):
        ordered = sorted(versions.values(), key=lambda v: v["last"])
        entry: dict[str, Any] = {"model_name": model, "versions": [], "comparison": None}
        for v in ordered:
            rated = v["ratings"]
            entry["versions"].append(
                {
                    "version": v["version"],
                    "answers": v["answers"],
                    "n": len(rated),
                    "mean": float(np.mean(rated)) if rated else None,
                }
            )
        if len(ordered) >= 2:
            entry["comparison"] = _compare_ratings(ordered[-2], ordered[-1], alpha)
        out.append(entry)
    return out


def _compare_ratings(older: dict[str, Any], newer: dict[str, Any], alpha: float) -> dict:
    a, b = older["ratings"], newer["ratings"]
    result: dict[str, Any] = {"older": older["version"], "newer": newer["version"]}
    if len(a) < 2 or len(b) < 2:
        return {**result, "p_value": None, "verdict": "not enough ratings"}
    from scipy.stats import mannwhitneyu

    p = float(mannwhitneyu(b, a, alternative="two-sided").pvalue)
    diff = float(np.mean(b) - np.mean(a))
    if p >= alpha or diff == 0:
        verdict = "no significant difference"
    else:
        verdict = f"v{newer['version']} rated {'higher' if diff > 0 else 'lower'}"
    return {**result, "difference": diff, "p_value": p, "verdict": verdict}


def ratings_markdown(summary: list[dict[str, Any]], days: float) -> str:
    """rating_summary as Markdown: one table per model, the comparison under it."""
    if not summary:
        return (
            f"\n## Ratings of stylizations\n\nNo stylization answers in the last {days:g} days.\n"
        )
    lines = ["", f"## Ratings of stylizations (last {days:g} days)", ""]
    for entry in summary:
        lines += [f"**{entry['model_name']}**", "", "| version | answers | rated | mean rating |"]
        lines.append("|---|---|---|---|")
        for v in entry["versions"]:
            mean = "-" if v["mean"] is None else f"{v['mean']:.2f}"
            lines.append(f"| v{v['version']} | {v['answers']} | {v['n']} | {mean} |")
        c = entry["comparison"]
        if c:
            p = "" if c["p_value"] is None else f" (Mann-Whitney U, p = {c['p_value']:.3g})"
            lines += ["", f"v{c['newer']} against v{c['older']}: {c['verdict']}{p}."]
        lines.append("")
    return "\n".join(lines)
