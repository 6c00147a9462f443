"""The champion/challenger gate: only a candidate that earns it becomes `champion`.

Classifier: champion and candidate are evaluated now, on the same frozen test split. The
candidate must pass the absolute thresholds in `settings.gate`, must not be worse than the
champion, and (when `gate.require_significance`) must be significantly better on a paired
McNemar test to replace it; the p-value is always recorded. The first model with no
champion only needs the thresholds. Style models compare the style metrics logged on each
version's run: a loss may grow by at most `gate.style_max_loss_ratio`, SSIM may shrink by
at most its inverse.

Every decision is written as JSON and Markdown, logged as a run in experiment
"artflow-gate", tagged on the candidate version and written into its model card. Moving the
alias is the last step and happens only on pass, as a compare-and-swap: under the registry
lock (`tracking.registry_lock`) the gate reads `champion` again and refuses when it is no
longer the one it compared against. Each move is pushed on a registered-model tag
`champion_history` so that `rollback` can restore the previous champion; the alias is the
source of truth and the history is reconciled with it on every read (docs/deploy.md).

A registry that cannot be asked stops the gate with RegistryUnavailable (exit 3): only an
alias that is really not set means "first model, no champion".
"""

from __future__ import annotations

import datetime as dt
import json
import math
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from artflow.config import Settings
from artflow.data.layout import Workdir
from artflow.errors import AliasChanged, GateFailed, LockLost, ModelError
from artflow.registry import tracking
from artflow.registry.views import HIGHER_IS_BETTER, STYLE_METRICS, is_style_model, resolve_version

GATE_EXPERIMENT = "artflow-gate"
HISTORY_TAG = "champion_history"  # JSON list of versions, oldest first; the top is champion
LOG_TAG = "champion_log"  # JSON list of recent moves: pending until the move is complete
HISTORY_MAX = 50

Evaluator = Callable[[Settings, Workdir, str], dict[str, Any]]


@dataclass
class Check:
    name: str
    value: float | str | None
    threshold: float | str | None
    op: str  # how value is compared with threshold, as text: ">=", "<=", "p <", ...
    passed: bool
    note: str = ""
    required: bool = True  # False: recorded for people, never decides

    @property
    def verdict(self) -> str:
        return "recorded" if not self.required else ("pass" if self.passed else "FAIL")


@dataclass
class Decision:
    model: str
    candidate: str
    champion: str | None
    passed: bool
    promoted: bool
    reason: str
    checks: list[Check] = field(default_factory=list)
    mcnemar: dict[str, Any] | None = None
    evaluations: dict[str, dict[str, Any]] = field(default_factory=dict)
    created: str = ""
    reports: dict[str, str] = field(default_factory=dict)
    gate_run_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def markdown(self) -> str:
        verdict = "PASSED" if self.passed else "REFUSED"
        champ = f"v{self.champion}" if self.champion else "none (first model)"
        lines = [
            f"## Promotion gate: `{self.model}` v{self.candidate} {verdict}",
            "",
            f"- champion before: {champ}",
            f"- promoted: {'yes' if self.promoted else 'no'}",
            f"- reason: {self.reason}",
            f"- decided: {self.created}",
            "",
            "| check | value | threshold | result |",
            "|---|---|---|---|",
        ]
        for c in self.checks:
            mark = "**FAIL**" if c.verdict == "FAIL" else c.verdict
            note = f" ({c.note})" if c.note else ""
            lines.append(
                f"| {c.name} | {_show(c.value)} | {c.op} {_show(c.threshold)} | {mark}{note} |"
            )
        if self.mcnemar:
            m = self.mcnemar
            lines += [
                "",
                f"McNemar on {m['n']} paired test images: champion-only right b={m['b']}, "
                f"candidate-only right c={m['c']}; exact p={m['p_exact']:.4g}, "
                f"chi2={m['chi2']:.3f} p={m['p_chi2']:.4g}; deciding: {m['method']} "
                f"p={m['p_value']:.4g}.",
            ]
        return "\n".join(lines + self._slice_lines()) + "\n"

    def _slice_lines(self) -> list[str]:
        """Test-split accuracy per slice, candidate beside champion (the report the Kubeflow UI
        shows for the gate step; floors and max_slice_drop are judged in the checks above)."""
        cand = (self.evaluations.get("candidate") or {}).get("slices") or {}
        champ = (self.evaluations.get("champion") or {}).get("slices") or {}
        if not cand:
            return []
        lines = ["", "| slice | images | candidate accuracy | champion accuracy |"]
        lines.append("|---|---|---|---|")
        for name, m in cand.items():
            theirs = champ.get(name, {}).get("accuracy")
            lines.append(f"| {name} | {m['n']} | {_show(m['accuracy'])} | {_show(theirs)} |")
        return lines


def _show(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "-" if value is None else str(value)


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


# --------------------------------------------------------------------------- evaluation


def _evaluate(settings: Settings, wd: Workdir, model_ref: str) -> dict[str, Any]:
    """The classifier helper's evaluation on the frozen test split (imported lazily: TF)."""
    from artflow.classify.evaluate import evaluate

    result = evaluate(settings, wd, model_ref, split="test", log=False)  # the gate run logs
    result.setdefault("latency_ms", result.get("latency_ms_per_image"))
    return result


def _correct(result: dict[str, Any]) -> list[bool]:
    for key in ("correct", "per_image_correct", "correctness"):
        if key in result:
            return [bool(x) for x in result[key]]
    raise ModelError("the evaluation returned no per-image correctness; cannot pair the models")


def _summary(result: dict[str, Any]) -> dict[str, Any]:
    """The scalars of an evaluation and its slices (the per-image lists stay out of reports)."""
    out = {k: v for k, v in result.items() if isinstance(v, int | float | str | bool)}
    if result.get("slices"):
        out["slices"] = {
            n: {"n": m["n"], "accuracy": m["accuracy"]} for n, m in result["slices"].items()
        }
    return out


def _ge(name: str, value: float, threshold: float, note: str = "") -> Check:
    return Check(name, value, threshold, ">=", value >= threshold, note)


def _le(name: str, value: float, threshold: float, note: str = "") -> Check:
    return Check(name, value, threshold, "<=", value <= threshold, note)


def classifier_checks(
    settings: Settings,
    wd: Workdir,
    name: str,
    candidate: str,
    champion: str | None,
    evaluator: Evaluator,
) -> tuple[list[Check], dict[str, Any] | None, dict[str, dict[str, Any]]]:
    from artflow.stats import mcnemar

    gate = settings.gate
    cand = evaluator(settings, wd, tracking.model_uri(name, candidate))
    evaluations = {"candidate": _summary(cand)}
    checks = [
        _ge("accuracy", float(cand["accuracy"]), gate.min_accuracy),
        _ge("macro_f1", float(cand["macro_f1"]), gate.min_macro_f1),
        _le("latency_ms", float(cand["latency_ms"]), gate.max_latency_ms),
        _le("model_size_mb", float(cand["model_size_mb"]), gate.max_model_size_mb),
    ]
    checks += floor_checks(gate, cand)
    if champion is None:
        return checks, None, evaluations
    champ = evaluator(settings, wd, tracking.model_uri(name, champion))
    evaluations["champion"] = _summary(champ)
    vs = f"champion v{champion}"
    checks += [
        _ge("accuracy_vs_champion", float(cand["accuracy"]), float(champ["accuracy"]), vs),
        _ge("macro_f1_vs_champion", float(cand["macro_f1"]), float(champ["macro_f1"]), vs),
    ]
    checks += slice_drop_checks(gate, cand, champ, champion)
    if champ.get("paths") != cand.get("paths"):  # pairing needs the same images, same order
        raise ModelError("champion and candidate were not evaluated on the same test images")
    test = mcnemar(_correct(champ), _correct(cand))
    if gate.require_significance:
        note = f"{test.method}; candidate must be right more often (c={test.c} > b={test.b})"
        checks.append(
            Check("mcnemar_p", test.p_value, gate.alpha, "p <", test.significant(gate.alpha), note)
        )
    else:
        better = "candidate" if test.candidate_better else "champion"
        note = f"{test.method}; {better} right more often; gate.require_significance is false"
        checks.append(Check("mcnemar_p", test.p_value, gate.alpha, "p <", True, note, False))
    return checks, test.to_dict(), evaluations


def _named(check: str, subject: str) -> str:
    """`check:subject`, spelled as MLflow accepts metric names (the gate run logs checks)."""
    from artflow.classify.slices import safe_name

    return f"{check}:{safe_name(subject)}"


def _floor(floors: dict[str, float], name: str) -> float | None:
    return floors.get(name, floors.get("*"))


def floor_checks(gate: Any, result: dict[str, Any]) -> list[Check]:
    """gate.artist_min_f1 and gate.slice_min_accuracy on one evaluation. A floor naming an
    artist or slice the evaluation lacks is recorded (it decides nothing); so is a slice with
    fewer than gate.slice_min_images images."""
    checks = []
    per_class, slices = result.get("per_class") or {}, result.get("slices") or {}
    for artist, m in per_class.items():
        if (floor := _floor(gate.artist_min_f1, artist)) is not None:
            checks.append(
                _ge(_named("f1", artist), float(m["f1"]), floor, f"{m['support']} images")
            )
    for name, m in slices.items():
        if (floor := _floor(gate.slice_min_accuracy, name)) is not None:
            check = _ge(_named("accuracy", name), float(m["accuracy"]), floor, f"{m['n']} images")
            checks.append(_small_slice(check, m, gate))
    known = {"*", *per_class, *slices}
    for name in sorted((set(gate.artist_min_f1) | set(gate.slice_min_accuracy)) - known):
        checks.append(
            Check(f"floor[{name}]", None, None, "in", True, "not in this evaluation", False)
        )
    return checks


def slice_drop_checks(
    gate: Any, cand: dict[str, Any], champ: dict[str, Any], champion: str
) -> list[Check]:
    """gate.max_slice_drop: on every slice both evaluations have, the candidate's accuracy
    is at least the champion's minus the margin."""
    if gate.max_slice_drop is None:
        return []
    checks = []
    theirs = champ.get("slices") or {}
    for name, m in (cand.get("slices") or {}).items():
        if name not in theirs:
            continue
        floor = float(theirs[name]["accuracy"]) - gate.max_slice_drop
        note = f"champion v{champion} {theirs[name]['accuracy']:.3f} - {gate.max_slice_drop:g}"
        check = _ge(_named("slice_vs_champion", name), float(m["accuracy"]), round(floor, 6), note)
        checks.append(_small_slice(check, m, gate))
    return checks


def _small_slice(check: Check, m: dict[str, Any], gate: Any) -> Check:
    if int(m["n"]) < gate.slice_min_images:
        below = "" if check.passed else ", below the threshold"
        check.required, check.passed = False, True
        check.note += f"; under gate.slice_min_images ({gate.slice_min_images}): recorded{below}"
    return check


def _style_metric(metrics: dict[str, float], key: str) -> float | None:
    for name in (key, f"test_{key}", f"final_{key}", f"val_{key}"):
        if name in metrics and math.isfinite(metrics[name]):
            return float(metrics[name])
    return None


def _version_metrics(name: str, version: str) -> dict[str, float]:
    mv = resolve_version(name, version)
    run = tracking.get_run(mv.run_id) if mv.run_id else None
    return dict(run.data.metrics) if run is not None else {}


def style_checks(
    settings: Settings, name: str, candidate: str, champion: str | None
) -> tuple[list[Check], dict[str, dict[str, Any]]]:
    ratio = settings.gate.style_max_loss_ratio
    cand_all = _version_metrics(name, candidate)
    cand = {k: v for k in STYLE_METRICS if (v := _style_metric(cand_all, k)) is not None}
    evaluations = {"candidate": cand}
    if not cand:
        missing = Check("style_metrics", "none", ", ".join(STYLE_METRICS), "any of", False)
        missing.note = "the version's run logged no style metrics"
        return [missing], evaluations
    checks = [Check(f"{k}_finite", v, "finite", "is", True) for k, v in cand.items()]
    if champion is None:
        return checks, evaluations
    champ_all = _version_metrics(name, champion)
    champ = {k: v for k in STYLE_METRICS if (v := _style_metric(champ_all, k)) is not None}
    evaluations["champion"] = champ
    vs = f"champion v{champion} x {ratio:g}"
    for key in sorted(set(cand) & set(champ)):
        if key in HIGHER_IS_BETTER:
            checks.append(_ge(f"{key}_vs_champion", cand[key], champ[key] / ratio, vs))
        else:
            checks.append(_le(f"{key}_vs_champion", cand[key], champ[key] * ratio, vs))
    if not set(cand) & set(champ):
        checks.append(Check("comparable_metrics", 0, 1, ">=", False, "no metric in common"))
    return checks, evaluations


# --------------------------------------------------------------------------- the gate


def promote(
    settings: Settings,
    wd: Workdir,
    name: str,
    candidate: str = tracking.CHALLENGER,
    report_dir: str | Path | None = None,
    strict: bool = True,
    evaluator: Evaluator | None = None,
) -> Decision:
    """Decide on `candidate` (a version number or an alias), record it, promote on pass.

    Raises GateFailed (exit 1) when the candidate is refused and `strict` (the CLI, CI);
    pipelines pass strict=False and read the decision instead.
    """
    cand_version = str(resolve_version(name, candidate).version)
    champ_mv = tracking.alias_version(name, tracking.CHAMPION)
    champion = str(champ_mv.version) if champ_mv else None
    if champion == cand_version:
        same = Decision(name, cand_version, champion, True, False, "already the champion")
        same.created = _now()
        _write_reports(wd, same, report_dir)  # CI reads the report whatever happened
        return same
    if is_style_model(name):
        checks, evaluations = style_checks(settings, name, cand_version, champion)
        test = None
    else:
        checks, test, evaluations = classifier_checks(
            settings, wd, name, cand_version, champion, evaluator or _evaluate
        )
    failed = [c for c in checks if not c.passed]
    decision = Decision(
        model=name,
        candidate=cand_version,
        champion=champion,
        passed=not failed,
        promoted=False,
        reason=_reason(failed, champion),
        checks=checks,
        mcnemar=test,
        evaluations=evaluations,
        created=_now(),
    )
    _record(settings, wd, decision, report_dir)
    if not is_style_model(name):  # the family's best that met the absolute thresholds
        from artflow.classify import best as family_best

        family_best.record(name, cand_version, checks, float(evaluations["candidate"]["accuracy"]))
    if decision.passed:
        try:
            _move_champion(name, cand_version, expected=champion)  # the last step, on pass
            decision.promoted = True
        except (ChampionChanged, LockLost) as moved:  # another gate, or this one stalled
            decision.passed, decision.reason = False, moved.message
            _tag_version(name, cand_version, {"gate.decision": "stale"})
        _write_reports(wd, decision, report_dir)  # now saying whether it was promoted
    if strict and not decision.passed:
        raise refusal(decision)
    return decision


class ChampionChanged(GateFailed):
    """Another gate or a rollback moved `champion` while this gate was deciding."""


def refusal(decision: Decision) -> GateFailed:
    """The error (exit 1) for a refused candidate: which checks failed, where the report is."""
    champion = decision.champion
    return GateFailed(
        f"{decision.model} v{decision.candidate} refused: {decision.reason}",
        f"champion stays {'v' + champion if champion else 'unset'}; report: "
        f"{decision.reports.get('markdown', '-')}",
    )


def _reason(failed: list[Check], champion: str | None) -> str:
    if not failed:
        return (
            "first model: absolute thresholds met"
            if champion is None
            else f"meets every threshold and is not worse than champion v{champion}"
        )
    parts = [f"{c.name} {_show(c.value)} not {c.op} {_show(c.threshold)}" for c in failed]
    return "; ".join(parts)


def _record(settings: Settings, wd: Workdir, decision: Decision, report_dir: str | Path | None):
    """Reports, an MLflow run in artflow-gate, a tag on the version and its model card."""
    import mlflow

    from artflow.registry.modelcard import write_model_card

    _write_reports(wd, decision, report_dir)
    run_name = f"{decision.model}-v{decision.candidate}"
    params = {
        "model": decision.model,
        "candidate": decision.candidate,
        "champion": decision.champion or "none",
    }
    with tracking.start_run(
        GATE_EXPERIMENT,
        run_name,
        settings,
        params=params,
        tags={"gate.passed": str(decision.passed).lower()},
    ) as run:
        numeric = {
            f"check.{c.name}": float(c.value)
            for c in decision.checks
            if isinstance(c.value, int | float) and math.isfinite(c.value)
        }
        mlflow.log_metrics({**numeric, "passed": float(decision.passed)})
        decision.gate_run_id = run.info.run_id
        mlflow.log_dict(decision.to_dict(), "decision.json")
        mlflow.log_text(decision.markdown(), "decision.md")
    verdict = "passed" if decision.passed else "refused"
    tags = {"gate.decision": verdict, "gate.run_id": decision.gate_run_id or ""}
    _tag_version(decision.model, decision.candidate, tags)
    write_model_card(
        decision.model, decision.candidate, decision.to_dict(), log_to=decision.gate_run_id
    )


def _tag_version(name: str, version: str, tags: dict[str, str]) -> None:
    client = tracking.client()
    for key, value in tags.items():
        tracking.write(
            f"tag {key} of {name} v{version}",
            lambda k=key, v=value: client.set_model_version_tag(name, version, k, v),
        )


def _write_reports(wd: Workdir, decision: Decision, report_dir: str | Path | None) -> None:
    stem = f"{decision.model}-v{decision.candidate}"
    dirs = [wd.reports / "gate"] + ([Path(report_dir)] if report_dir else [])
    for i, out in enumerate(dirs):
        out.mkdir(parents=True, exist_ok=True)
        for suffix, text in (("json", None), ("md", decision.markdown())):
            path = out / f"{stem}.{suffix}"
            if i == 0:
                decision.reports["json" if suffix == "json" else "markdown"] = str(path)
            body = json.dumps(decision.to_dict(), indent=2) if text is None else text
            path.write_text(body)
            (out / f"latest.{suffix}").write_text(body)


# --------------------------------------------------------------------------- history
# Moving `champion` takes three writes: a "pending" entry on champion_log, the alias (the
# source of truth), then champion_history and the entry marked "done". A crash between two
# writes leaves a state that `history` reconciles on the next read: an alias that differs
# from the history's top is the completed half of the pending move (a rollback pops, a
# promotion pushes), or a champion set outside the gate (adopted).


def _tags(name: str) -> tuple[list[str], list[dict[str, Any]]]:
    from artflow.registry.views import registered_model

    tags = dict(registered_model(name).tags or {})
    return _json_list(tags.get(HISTORY_TAG)), _json_list(tags.get(LOG_TAG))


def _json_list(raw: str | None) -> list[Any]:
    try:
        value = json.loads(raw or "[]")
    except json.JSONDecodeError:
        return []
    return value if isinstance(value, list) else []


def history(name: str) -> list[str]:
    """Champion versions, oldest first; the last one is the current champion."""
    raw, log = _tags(name)
    versions = [str(v) for v in raw]
    current = tracking.alias_version(name, tracking.CHAMPION)
    if current is None or (versions and versions[-1] == str(current.version)):
        return versions
    now = str(current.version)
    last = log[-1] if log and isinstance(log[-1], dict) else {}
    interrupted_rollback = (
        last.get("status") == "pending"
        and last.get("action") == "rollback"
        and last.get("version") == now
        and len(versions) >= 2
        and versions[-2] == now
    )
    return versions[:-1] if interrupted_rollback else [*versions, now]


def _save_log(lock: tracking.RegistryLock, log: list[dict[str, Any]]) -> None:
    lock.set_tag(LOG_TAG, json.dumps(log[-20:]))


def _apply(
    lock: tracking.RegistryLock,
    event: dict[str, str],
    versions: list[str],
    expected: str | None,
) -> None:
    """Point `champion` at event["version"] and record `versions` as the new history, in the
    crash-consistent order above. Every write is fenced by `lock`; the alias moves only if
    it still points at `expected` (the compare-and-swap)."""
    name = lock.name
    event = {**event, "at": _now(), "id": uuid.uuid4().hex[:12], "status": "pending"}
    _save_log(lock, [*_tags(name)[1], event])
    try:
        lock.set_alias(tracking.CHAMPION, event["version"], expect=expected)
    except AliasChanged as exc:
        raise _changed(name, event["version"], expected, exc.now) from exc
    lock.set_tag(HISTORY_TAG, json.dumps(versions[-HISTORY_MAX:]))
    done = [{**e, "status": "done"} if e.get("id") == event["id"] else e for e in _tags(name)[1]]
    _save_log(lock, done)


def _changed(name: str, version: str, expected: str | None, now: str | None) -> ChampionChanged:
    was = f"v{expected}" if expected else "unset"
    return ChampionChanged(
        f"{name} v{version} passed against champion {was}, but the champion is now "
        f"{'v' + now if now else 'unset'} (another gate or a rollback moved it); "
        "not promoted",
        f"run the gate again: `artflow promote {name} --candidate {version}`",
    )


def _move_champion(name: str, version: str, expected: str | None) -> None:
    """Compare-and-swap: make `version` champion if `champion` is still `expected`."""
    with tracking.registry_lock(name) as lock:
        current = tracking.alias_version(name, tracking.CHAMPION)
        now = str(current.version) if current is not None else None
        if now != expected:
            raise _changed(name, version, expected, now)
        versions = history(name)
        event = {"action": "promote", "version": version, "previous": expected or "none"}
        _apply(lock, event, [*versions, version], expected)
        challenger = tracking.alias_version(name, tracking.CHALLENGER)
        if challenger is not None and str(challenger.version) == version:
            # The challenger became champion: nothing is left to A/B test against it.
            lock.delete_alias(tracking.CHALLENGER)  # no other writer: we hold the lock


def rollback(name: str) -> tuple[str, str]:
    """Restore the previous champion; returns (demoted version, restored version)."""
    with tracking.registry_lock(name) as lock:
        versions = history(name)
        if not versions:
            raise ModelError(f"{name} has no champion to roll back", "promote a model first")
        if len(versions) < 2:
            raise ModelError(
                f"{name} v{versions[-1]} is the only champion it ever had; nothing to roll back to",
                "promote another version with `artflow promote` first",
            )
        demoted = versions.pop()
        restored = versions[-1]
        resolve_version(name, restored)  # fails clearly if that version was deleted
        current = tracking.alias_version(name, tracking.CHAMPION)
        event = {"action": "rollback", "version": restored, "previous": demoted}
        _apply(lock, event, versions, expected=str(current.version) if current else None)
        _tag_version(name, demoted, {"gate.decision": "rolled back"})
    return demoted, restored
