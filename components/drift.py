"""Drift component: decides whether the scheduled retrain goes ahead (its output is the
condition of the retrain's `dsl.If`)."""

from kfp.dsl import HTML, Markdown, Metrics, Output

from components.common import component


@component
def drift_check_op(
    profile: str,
    mlflow_uri: str,
    policy: str,
    prediction_log: str,
    trigger_report: str,
    verdict: Output[Metrics],
    summary: Output[Markdown],
    report: Output[HTML],
) -> bool:
    """Evidently drift of recent predictions vs the champion's reference; returns whether to
    retrain (the reason is in `summary`). Never cached: traffic changes between runs.

    One unnamed output: kfp 2.17's local runner resolves a condition on a task's `Output` but
    not on a named output of a multi-output component (docs/stack-notes.md)."""
    from artflow import stages

    def work(settings) -> dict:
        wd = stages.scratch("drift")
        result = stages.drift_check(
            settings, wd, policy, prediction_log, "champion", trigger_report
        )
        stages.log_metrics(result, verdict)
        stages.write_markdown(summary, "drift verdict", stages.drift_markdown(result))
        stages.copy_report(report, result["report_html"], "drift")
        return result

    outputs = {"verdict": verdict, "summary": summary, "report": report}
    return bool(stages.run("drift", profile, mlflow_uri, outputs, work)["retrain"])
