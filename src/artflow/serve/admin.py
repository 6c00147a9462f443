"""Admin access: a bearer token from the environment, compared in constant time.

No token configured -> admin is disabled (403) rather than open: an operator must opt in.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Mapping

TOKEN_ENV = "ARTFLOW_ADMIN_TOKEN"


def presented_token(headers: Mapping[str, str]) -> str:
    """The token from `Authorization: Bearer <t>` or `X-Admin-Token: <t>` ('' if none)."""
    auth = headers.get("authorization") or ""
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return (headers.get("x-admin-token") or "").strip()


def check(headers: Mapping[str, str], expected: str | None = None) -> tuple[int, str] | None:
    """None when allowed; else (status, message): 403 disabled, 401 missing, 403 wrong."""
    expected = os.environ.get(TOKEN_ENV, "") if expected is None else expected
    given = presented_token(headers)
    if not expected:
        return 403, f"admin is disabled: set {TOKEN_ENV} on the server to enable it"
    if not given:
        return 401, "admin token required (Authorization: Bearer <token>)"
    if not hmac.compare_digest(given.encode(), expected.encode()):
        return 403, "wrong admin token"
    return None
