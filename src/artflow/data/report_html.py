"""Small self-contained HTML pages for the validation and EDA reports.

Hand-written because GX 1.x Data Docs need a file-backed context and a site build, while an
ephemeral context plus one static page is all a data version needs (and it diffs well).
"""

from __future__ import annotations

from html import escape
from typing import Any

STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:.5rem 0 1.5rem;width:100%}
th,td{border:1px solid #ccc;padding:.3rem .5rem;text-align:left;vertical-align:top;font-size:.9rem}
th{background:#f3f3f3}.ok{color:#1a7f37;font-weight:600}.bad{color:#c62828;font-weight:600}
.warn{color:#b26a00;font-weight:600}code{font-size:.85rem;word-break:break-all}
img{max-width:100%}
figure{display:inline-block;margin:0 1rem 1rem 0;vertical-align:top}
"""


def page(title: str, body: str) -> str:
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
        f"<style>{STYLE}</style></head><body><h1>{escape(title)}</h1>{body}</body></html>\n"
    )


def table(headers: list[str], rows: list[list[str]]) -> str:
    """Cells are already-escaped HTML."""
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def verdict(ok: bool, yes: str = "pass", no: str = "FAIL") -> str:
    return f"<span class='ok'>{yes}</span>" if ok else f"<span class='bad'>{no}</span>"


def render_validation(
    summary: dict, suites: list[Any], quarantine: list[dict], flagged: list[dict]
) -> str:
    parts = [
        f"<p>Verdict: {verdict(summary['success'], 'usable', 'UNUSABLE')} — "
        f"{summary['images']} artwork images, {summary['monet_images']} Monet/photo images, "
        f"{summary['quarantined']} quarantined, {len(flagged)} flagged.</p>"
    ]
    if summary["failures"]:
        items = "".join(f"<li>{escape(f)}</li>" for f in summary["failures"])
        parts.append(f"<h2>Why the run failed</h2><ul class='bad'>{items}</ul>")
    if summary["chosen_classes"]:
        rows = [[escape(a), str(n)] for a, n in summary["chosen_classes"].items()]
        parts.append("<h2>Chosen classes (usable images)</h2>" + table(["artist", "usable"], rows))
    parts.append("<h2>Quarantined (excluded)</h2>" + _list_table(quarantine))
    parts.append("<h2>Flagged (kept)</h2>" + _list_table(flagged))
    for suite in suites:
        parts.append(f"<h2>Suite: {escape(suite.name)} {verdict(suite.success)}</h2>")
        parts.append(
            table(
                ["expectation", "arguments", "result", "unexpected", "examples"],
                [_suite_row(r) for r in suite.rows],
            )
        )
    return page("artflow data validation", "".join(parts))


def _list_table(items: list[dict]) -> str:
    if not items:
        return "<p>none</p>"
    return table(
        ["path", "reason"],
        [[f"<code>{escape(i['path'])}</code>", escape(i["reason"])] for i in items],
    )


def _suite_row(r: dict) -> list[str]:
    args = ", ".join(f"{k}={v}" for k, v in r["kwargs"].items())
    action = r["meta"].get("action")
    ok = (
        verdict(True)
        if r["success"]
        else ("<span class='warn'>flag</span>" if action == "flag" else verdict(False))
    )
    count = (
        ""
        if r["unexpected_count"] is None
        else (f"{r['unexpected_count']} of {r['element_count']}")
    )
    if r["observed"] is not None:
        count = f"observed {escape(str(r['observed']))}"
    examples = "<br>".join(f"<code>{escape(u)}</code>" for u in r["unexpected"][:5])
    if r.get("error"):
        examples = f"<span class='bad'>{escape(r['error'])}</span>"
    return [escape(r["expectation"]), escape(args), ok, count, examples]
