"""The style quality verdict as HTML: per served version, the window's figures beside the gate's.

`page` is the quality report on its own (report.html of artflow.monitor.quality_check);
`inject` puts the same section at the top of the classifier's Evidently drift report, so
one page shows both checks of a run of `artflow drift`.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

STYLE = (
    "<style>.afq{font-family:sans-serif;margin:1em}.afq table{border-collapse:collapse;"
    "margin:.5em 0}.afq td,.afq th{border:1px solid #ccc;padding:.2em .6em;text-align:right}"
    ".afq .bad{color:#b00;font-weight:bold}</style>"
)


def _num(value: Any, fmt: str = ".4g") -> str:
    return "" if value is None else format(float(value), fmt)


def change_text(measure: dict[str, Any]) -> str:
    """The change in quality against the gate, "-40%" (worse) or "+5%"; "" without a gate."""
    if "drop" not in measure:
        return ""
    change = -float(measure["drop"])
    return "0%" if abs(change) < 0.005 else f"{change:+.0%}"


def _measures(v: dict[str, Any]) -> str:
    rows = []
    for key, m in v["scores"]["measures"].items():
        bad = ' class="bad"' if m.get("degraded") else ""
        drop = change_text(m)
        rows.append(
            f"<tr{bad}><th>{escape(m['label'])} ({escape(key)})</th><td>{_num(m['window'])}</td>"
            f"<td>{m['answers']}</td><td>{_num(m.get('reference'))}</td><td>{drop}</td></tr>"
        )
    r = v["ratings"]
    bad = ' class="bad"' if r["degraded"] else ""
    rows.append(
        f"<tr{bad}><th>mean rating</th><td>{_num(r['mean'], '.2f')}</td><td>{r['count']}</td>"
        f"<td>floor {r['floor']:g}</td><td></td></tr>"
    )
    head = "<tr><th>measure</th><th>window</th><th>answers</th><th>gate</th><th>change</th></tr>"
    return f"<table>{head}{''.join(rows)}</table>"


def _version(v: dict[str, Any]) -> str:
    role = "champion" if v["champion"] else "not champion"
    ref = v.get("reference") or {}
    source = escape(ref.get("source") or "no gate reference")
    state = "DEGRADED" if v["degraded"] else ("ok" if v["judged"] else "not judged (too few)")
    reasons = "".join(f"<li>{escape(r)}</li>" for r in v["reasons"])
    return (
        f"<h3>{escape(v['model_name'])} v{escape(v['version'])} ({role}): {state}</h3>"
        f"<p>{v['answers']} answers, {v['scores']['scored']} scored; reference: {source}</p>"
        f"{_measures(v)}" + (f"<ul>{reasons}</ul>" if reasons else "")
    )


def section(verdict: dict[str, Any]) -> str:
    w = verdict.get("window") or {}
    versions = "".join(_version(v) for v in verdict["versions"]) or "<p>no style answers</p>"
    return (
        f'<div class="afq">{STYLE}<h2>Style quality of served answers</h2>'
        f"<p>window {escape(str(w.get('spec', '')))} since {escape(str(w.get('since', '')))}: "
        f"{verdict['answers']} answers</p>{versions}</div>"
    )


def page(verdict: dict[str, Any]) -> str:
    return (
        '<!doctype html><html><head><meta charset="utf-8"><title>artflow style quality'
        f"</title></head><body>{section(verdict)}</body></html>"
    )


def inject(html: Path, verdict: dict[str, Any]) -> None:
    """Put the section right after the page's <body> tag (at the top when there is none)."""
    text = html.read_text(encoding="utf-8")
    at = text.find("<body")
    at = text.find(">", at) + 1 if at >= 0 else 0
    html.write_text(text[:at] + section(verdict) + text[at:], encoding="utf-8")
