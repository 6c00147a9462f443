"""A/B across pods: each Deployment serves one variant and forwards the other's users.

On a cluster every pod knows its role (ARTFLOW_ROLE: champion or challenger) and the other
variant's Service (ARTFLOW_CHAMPION_URL, ARTFLOW_CHALLENGER_URL). A request whose client key
the router assigns to the other variant is forwarded there once (header
X-Artflow-Forwarded: never forwarded again) and its answer relayed, so a balancer may send
any request to any pod. Without a role (one `artflow serve`), the process serves both.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from artflow.serve.router import CHALLENGER, CHAMPION, Router

log = logging.getLogger("artflow.serve")

ROLE_ENV = "ARTFLOW_ROLE"
PEER_ENV = {CHAMPION: "ARTFLOW_CHAMPION_URL", CHALLENGER: "ARTFLOW_CHALLENGER_URL"}
FORWARDED = "x-artflow-forwarded"  # set on a forwarded request: never forwarded again
KEEP_HEADERS = ("content-type", "x-client-key", "cookie", "x-forwarded-for", "accept")


class VariantRouting:
    """This pod's role, its peers, and the forwarding of the other variant's requests."""

    def __init__(
        self, role: str, peers: dict[str, str], router: Router, models: Any, timeout_s: float
    ) -> None:
        if role not in ("", CHAMPION, CHALLENGER):
            raise ValueError(f"{ROLE_ENV} must be champion or challenger, not {role!r}")
        self.role, self.peers = role, peers
        self.router, self.models, self.timeout_s = router, models, timeout_s
        self._peer_client: Any = None

    @classmethod
    def from_env(cls, router: Router, models: Any, timeout_s: float) -> VariantRouting:
        peers = {v: os.environ.get(env, "").strip().rstrip("/") for v, env in PEER_ENV.items()}
        return cls(os.environ.get(ROLE_ENV, "").strip(), peers, router, models, timeout_s)

    def slot(self) -> Any:
        """This Deployment's classifier: its challenger slot for the challenger role when the
        `challenger` alias resolved, else the champion slot (which a pin fills)."""
        challenger = self.models.classifier(CHALLENGER)
        if self.role == CHALLENGER and challenger.loaded:
            return challenger
        return self.models.classifier(CHAMPION)

    def target(self, request: Request, family: str | None, key: str) -> str | None:
        """The peer variant's URL when this request belongs to the other Deployment."""
        if not self.role or family or request.headers.get(FORWARDED):
            return None
        other = CHALLENGER if self.role == CHAMPION else CHAMPION
        if not self.peers.get(other):
            return None
        available = self.role == CHALLENGER or bool(self.peers[CHALLENGER])
        variant = self.router.assign(key, challenger_available=available)
        return self.peers[other] if variant == other else None

    async def forward(self, request: Request, body: bytes, base: str) -> Response | None:
        """Send the request to the other variant's Service; None when it cannot be reached
        (this pod then answers with its own variant, labelled as such)."""
        import httpx

        if self._peer_client is None:
            self._peer_client = httpx.AsyncClient(timeout=self.timeout_s)
        headers = {k: v for k, v in request.headers.items() if k in KEEP_HEADERS}
        headers[FORWARDED] = self.role
        url = f"{base}/classify"
        try:
            reply = await self._peer_client.post(
                url, content=body, params=request.query_params, headers=headers
            )
        except httpx.HTTPError as exc:
            log.warning("artflow: forwarding to %s failed (%s): answering here", base, exc)
            return None
        if reply.status_code >= 500:
            log.warning("artflow: %s answered %s: answering here", base, reply.status_code)
            return None
        passed = {k: v for k, v in reply.headers.items() if k.startswith("x-artflow")}
        return Response(
            reply.content,
            status_code=reply.status_code,
            headers=passed,
            media_type=reply.headers.get("content-type"),
        )
