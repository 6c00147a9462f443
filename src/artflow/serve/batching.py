"""Adaptive batching of classifier calls, one queue per A/B variant.

This is BentoML's own adaptive batcher (`CorkDispatcher`, the engine behind
`@bentoml.api(batchable=True)`): it learns the model's cost per batch and per item and holds
requests just long enough to fill a batch within `max_latency_ms`. It is used directly
rather than through a batchable endpoint because a batchable endpoint can only be reached
from /classify through BentoML's in-process HTTP client (JSON + an ASGI connector). Measured
here with 32 concurrent clients that hop dropped connections ("Server disconnected", 500s)
and added its own latency, and it exposed unvalidated array endpoints to the outside.

A request the batcher sheds (its estimated wait exceeds `max_latency_ms`) is not an error:
it runs on its own, unbatched, so overload degrades latency instead of failing requests.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import anyio

_SHED = object()
# BentoML's batcher re-checks its queue every TICKET_INTERVAL (1 ms) while requests wait, i.e.
# all the time under load: 1,000 event-loop wake-ups a second. Batches of the CNN take ~100-300
# ms on 2 cores, so checking every 5 ms delays a dispatch by at most 5 ms and wakes the event
# loop 5x less often (docs/serving.md).
TICK_S = 0.005


class VariantBatcher:
    def __init__(
        self,
        run_batch: Callable[[list[Any]], list[Any]],
        max_batch_size: int,
        max_latency_ms: int,
        on_batch: Callable[[int], None] | None = None,
        concurrent: int = 1,
    ) -> None:
        from bentoml._internal.marshal.dispatcher import CorkDispatcher, NonBlockSema

        self._run_batch = run_batch
        self._on_batch = on_batch
        # at most `concurrent` model calls at once per variant (serve.concurrent_batches)
        self._limiter = anyio.CapacityLimiter(concurrent)
        dispatcher = CorkDispatcher(
            max_latency_in_ms=max_latency_ms,
            max_batch_size=max_batch_size,
            shared_sema=NonBlockSema(concurrent),
            fallback=lambda: _SHED,
            get_batch_size=lambda _item: 1,
        )
        dispatcher.TICKET_INTERVAL = TICK_S
        self._submit = dispatcher(self._callback)
        self.shed = 0

    async def _callback(self, items: Sequence[Any]) -> list[Any]:
        if self._on_batch:
            self._on_batch(len(items))
        return await anyio.to_thread.run_sync(self._run_batch, list(items), limiter=self._limiter)

    async def __call__(self, item: Any) -> Any:
        result = await self._submit(item)
        if result is _SHED:
            self.shed += 1
            out = await anyio.to_thread.run_sync(self._run_batch, [item], limiter=self._limiter)
            return out[0]
        return result
