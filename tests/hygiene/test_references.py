"""Comments and docs point only at files in this repository.

A pointer to a note that lives elsewhere (a design file, an issue tracker number, someone's
checkout) is a dead end for the next reader: its facts belong in docs/ (docs/stack-notes.md,
docs/conventions.md), and the pointer should name that file.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Spelled in pieces so that this file does not match itself.
OUTSIDE = re.compile(
    "|".join(
        (
            r"\b(?:STACK|DESIGN)" + r"\.md\b",  # the helpers' shared notes, not in the repo
            r"\bissues? ?#?\d+\b",  # a tracker number without the tracker
            r"(?<![\w./-])/" + r"work/",  # an absolute path on one machine
            r"\.\./" + r"shared\b",
        )
    ),
    re.IGNORECASE,
)
DOC_REF = re.compile(r"(?<![\w/.-])(docs/[\w.-]+\.md)\b")
MD_LINK = re.compile(r"\]\((?!https?:|#|mailto:)([^)#\s]+)")


def _tracked_text_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True)
    paths = [ROOT / line for line in out.stdout.splitlines()]
    return [p for p in paths if p.is_file() and p.suffix not in {".lock", ".png", ".jpg", ".ico"}]


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return ""


def test_nothing_points_outside_the_repository() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{text.count(chr(10), 0, m.start()) + 1}: {m.group(0)}"
        for path in _tracked_text_files()
        for text in [_text(path)]
        for m in OUTSIDE.finditer(text)
    ]
    assert found == [], "move the facts into docs/ and point there"


def test_pointers_to_docs_name_existing_files() -> None:
    missing = []
    for path in _tracked_text_files():
        text = _text(path)
        refs = {ROOT / ref for ref in DOC_REF.findall(text)}
        if path.suffix == ".md":
            refs |= {(path.parent / link).resolve() for link in MD_LINK.findall(text)}
        missing += [f"{path.relative_to(ROOT)} -> {ref}" for ref in refs if not ref.exists()]
    assert missing == []


def test_the_patterns_catch_what_they_are_for() -> None:
    for bad in (
        "see STACK" + ".md",
        "(DESIGN" + ".md / iss" + "ue 5)",
        "Iss" + "ue #12",
        "at /" + "work/x",
    ):
        assert OUTSIDE.search(bad), bad
    for fine in (
        "docs/stack-notes.md",
        "the seed's ranges",
        "issues found: 3",
        "build/drift/" + "work/reports",
    ):
        assert not OUTSIDE.search(fine), fine
    assert DOC_REF.findall("see docs/pipelines.md, not my_docs/x.md") == ["docs/pipelines.md"]
