"""A/B routing between the champion and the challenger: pure Python, no server needed.

Assignment is sticky: a client key (the X-Client-Key header, else the client address) is
hashed to a point u in [0, 1), and the client gets the challenger when u < weight. The same
key always lands on the same point, so a user keeps one variant while the weight stays put,
and raising the weight only moves users from champion to challenger, never back.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass

CHAMPION, CHALLENGER = "champion", "challenger"
VARIANTS = (CHAMPION, CHALLENGER)


def bucket(key: str, salt: str = "artflow-ab") -> float:
    """A stable point in [0, 1) for `key`: the first 8 bytes of SHA-256 as a fraction.

    SHA-256 rather than Python's hash(): that one is salted per process (PYTHONHASHSEED), so
    two workers, or one worker after a restart, would disagree about the same client.
    """
    digest = hashlib.sha256(f"{salt}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def check_weight(weight: float) -> float:
    weight = float(weight)
    if not 0.0 <= weight <= 1.0:  # also refuses NaN: every comparison with NaN is False
        raise ValueError(f"challenger weight must be between 0 and 1, got {weight}")
    return weight


@dataclass
class Router:
    """Thread-safe holder of the challenger weight; `assign` picks a variant for a key."""

    weight: float = 0.0

    def __post_init__(self) -> None:
        self.weight = check_weight(self.weight)
        self._lock = threading.Lock()

    def set_weight(self, weight: float) -> float:
        weight = check_weight(weight)
        with self._lock:
            old, self.weight = self.weight, weight
        return old

    def assign(self, key: str, challenger_available: bool = True) -> str:
        """CHALLENGER for keys whose bucket falls under the weight, else CHAMPION."""
        if not challenger_available:
            return CHAMPION
        return CHALLENGER if bucket(key) < self.weight else CHAMPION


def client_key(header_value: str | None, client_host: str | None) -> str:
    """The routing key: the X-Client-Key header when sent, else the client address."""
    key = (header_value or "").strip()
    if key:
        return key[:256]  # bounded: the key is hashed and may be logged
    return f"addr:{client_host or 'unknown'}"
