"""Match artist names across artists.csv, folder names and file names.

The real archive spells a name several ways: "Albrecht Dürer" in the csv (NFC, spaces),
"Albrecht_Dürer" on disk (NFD, underscores), and "Albrecht_Du╠êrer" once a zip tool has
decoded UTF-8 bytes as cp437. Matching goes exact -> normalised key -> fuzzy, and says which.
"""

from __future__ import annotations

import difflib
import re
import unicodedata

FUZZY_CUTOFF = 0.8


def fix_mojibake(text: str) -> str:
    """Undo UTF-8 bytes that were decoded as cp437 / cp1252 / latin-1 (zip tools do this)."""
    for encoding in ("cp437", "cp1252", "latin-1"):
        try:
            fixed = text.encode(encoding).decode("utf-8")
        except UnicodeError:
            continue
        if fixed != text:
            return fixed
    return text


def clean(text: str) -> str:
    """Repaired and NFC-normalised spelling (what we write to disk and manifests)."""
    return unicodedata.normalize("NFC", fix_mojibake(text))


def key(text: str) -> str:
    """Comparison key: no accents, case, spaces, underscores or punctuation ("albrechtdurer")."""
    decomposed = unicodedata.normalize("NFKD", fix_mojibake(text))
    ascii_only = "".join(c for c in decomposed if not unicodedata.combining(c))
    ascii_only = ascii_only.encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]", "", ascii_only)


def folder_name(name: str) -> str:
    """Kaggle's spelling in folder and file names: NFC with underscores for spaces."""
    return unicodedata.normalize("NFC", name).replace(" ", "_")


_UNSAFE = re.compile(r'[/\\\x00-\x1f\x7f:*?"<>|]')


def safe_component(name: str, what: str) -> str:
    """`name` as ONE path component: separators, control and reserved characters become `_`.

    Names come from artists.csv, folders and zip members; a slash would add a folder and `..`
    would climb out. DataError (naming `what`) when nothing usable is left."""
    from artflow.errors import DataError

    safe = _UNSAFE.sub("_", name).strip()
    if safe in ("", ".", "..") or set(safe) <= {"."}:
        raise DataError(
            f"{what} gives no usable file or folder name ({name!r})",
            "rename it in the source (artists.csv, folder or file name)",
        )
    return safe


class NameMatcher:
    """Maps any spelling of an artist onto the canonical csv name."""

    def __init__(self, names: list[str]) -> None:
        self.names = list(names)
        self.by_key: dict[str, str] = {}
        self.collisions: list[tuple[str, str]] = []
        for name in self.names:
            k = key(name)
            if k in self.by_key:
                self.collisions.append((self.by_key[k], name))
            else:
                self.by_key[k] = name

    def match(self, raw: str) -> tuple[str | None, str]:
        """(canonical name, how) with how in exact | normalized | fuzzy | none."""
        if raw.replace("_", " ") in self.names:
            return raw.replace("_", " "), "exact"
        spelled = clean(raw).replace("_", " ")
        if spelled in self.names:  # other Unicode form, or zip-tool mojibake repaired
            return spelled, "normalized"
        k = key(raw)
        if not k:
            return None, "none"
        if k in self.by_key:
            return self.by_key[k], "normalized"
        close = difflib.get_close_matches(k, list(self.by_key), n=2, cutoff=FUZZY_CUTOFF)
        if len(close) == 1 or (len(close) == 2 and _ratio(k, close[0]) > _ratio(k, close[1])):
            return self.by_key[close[0]], "fuzzy"
        return None, "none"


def _ratio(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, a, b).ratio()
