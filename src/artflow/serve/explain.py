"""The optional parts of a /classify answer: where the model looked, and what it resembles.

* `explain=true` adds `explanation`: Grad-CAM of the answered artist on the very input the
  classifier saw (artflow.classify.explain), its overlay PNG sized for the upload, plus the
  heat per feature-map cell (`heatmap`, so a client can measure where the mass is without
  decoding the PNG). A gradient pass costs several forward passes, so it runs only when
  asked, at most `serve.explanations_at_once` at once per pod (the others wait their turn,
  within the request's timeout), off the batching queue, so plain requests never wait for it.
* `neighbours=K` adds the K nearest training paintings in the classifier's embedding space,
  from the gallery the version's novelty model carries (artflow.classify.neighbours): the
  same index as the novelty check, read from the model's own artifacts. A version without a
  novelty model answers `neighbours: []`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import anyio
import numpy as np


@dataclass(frozen=True)
class Wanted:
    """What a /classify request asked for beyond the ranking."""

    explain: bool = False
    neighbours: int = 0


class Explainer:
    """Grad-CAM for answers, `at_once` at a time in this pod."""

    def __init__(self, at_once: int) -> None:
        self.at_once = at_once
        self._gate: asyncio.Semaphore | None = None  # made on the event loop, on first use

    async def explain(
        self, model: Any, x: np.ndarray, artist: str, labels: list[str], size: tuple[int, int]
    ) -> dict[str, Any]:
        if self._gate is None:
            self._gate = asyncio.Semaphore(self.at_once)
        async with self._gate:
            return await anyio.to_thread.run_sync(explanation, model, x, artist, labels, size)


def explanation(
    model: Any, x: np.ndarray, artist: str, labels: list[str], size: tuple[int, int]
) -> dict[str, Any]:
    """The `explanation` of an answer for `artist`, its overlay for an upload of `size`."""
    from artflow.classify.explain import answer, grad_cam

    explained = grad_cam(model, x, labels.index(artist))
    width, height = size
    out = answer(explained, labels, width, height)
    out["heatmap"] = np.round(explained.heatmap, 3).tolist()
    return out


def upload_size(original: tuple[int, int], rgb: np.ndarray) -> tuple[int, int]:
    """(width, height) of the upload as shown: the header's size, turned like the decoded
    pixels when its EXIF orientation turned them a quarter."""
    width, height = original
    if not (width and height):
        return int(rgb.shape[1]), int(rgb.shape[0])
    if (width > height) != (rgb.shape[1] > rgb.shape[0]) and width != height:
        return height, width
    return width, height


def neighbours(model: Any, projected: np.ndarray, k: int) -> list[dict[str, Any]]:
    """The k nearest training paintings of one projected embedding (artist, distance,
    thumbnail data URL); [] when the novelty model carries no gallery."""
    from artflow.classify.neighbours import nearest

    return nearest(model, projected, k)
