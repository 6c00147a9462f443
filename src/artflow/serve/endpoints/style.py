"""POST /stylize (fast AdaIN, or bounded Gatys), POST /gatys/jobs and POST /monet: images in,
an image out (or a job's id), at a working size bounded by the settings.

No `from __future__ import annotations` here: the bounds of `api(settings)`'s signatures
are the settings' values, read when the class is made, so BentoML's schema carries them.
"""

import threading
import time
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
import bentoml
import numpy as np
from PIL import Image
from pydantic import Field
from starlette.responses import JSONResponse

from artflow.config import Settings
from artflow.serve.endpoints.parts import Parts
from artflow.serve.endpoints.plumbing import MIN_SIDE, locked
from artflow.serve.gatys_runs import working_side
from artflow.serve.schemas import JobSubmitted
from artflow.serve.validation import ApiError, DecodedImage, Fit

ImageFormat = Literal["png", "jpeg"]
Backbone = Literal["vgg19", "resnet50"]
STYLE_SIDE = 256  # AdaIN reads only the style's channel statistics, at this side


class Styling:
    def __init__(self, parts: Parts) -> None:
        self.serve = parts.settings.serve
        self.models, self.runs = parts.models, parts.gatys_runs
        self.gatys_settings = parts.gatys_settings
        self.decoder, self.worker = parts.decoder, parts.worker
        self.answers, self.recorder = parts.answers, parts.recorder
        self.style_answers = parts.style_answers

    async def stylize(
        self,
        ctx: bentoml.Context,
        content: Path,
        style: Path,
        method: str,
        strength: float,
        size: int | None,
        steps: int | None,
        format: str,
        timeout_s: float | None,
        backbone: str | None,
        job: str | None,
    ) -> Any:
        started, variant = time.perf_counter(), method
        try:
            if method == "fast":
                content_img, style_rgb, name, version, result = await self._fast(
                    content, style, strength, size
                )
            else:
                content_img, style_rgb, name, version, result = await self._gatys(
                    content, style, size, steps, timeout_s, backbone, job
                )
        except ApiError as exc:
            return self.answers.fail(ctx, "stylize", variant, exc, started)
        latency_ms = (time.perf_counter() - started) * 1000
        self.recorder.record(
            "stylize", variant, name, version, latency_ms, content_img, method=method
        )
        headers = await self.style_answers.answered(
            "stylize", (name, str(version), method), result, content_img.rgb, style_rgb
        )
        return await self.answers.image(
            ctx, "stylize", variant, started, result, format, version, headers
        )

    async def _fast(
        self, content: Path, style: Path, strength: float, size: int | None
    ) -> tuple[DecodedImage, np.ndarray, str, str, np.ndarray]:
        side = min(size or self.serve.max_output_side, self.serve.max_output_side)
        content_img = await self.decoder.decode(content, "content", Fit(side, MIN_SIDE, True))
        style_img = await self.decoder.decode(style, "style", Fit(STYLE_SIDE, MIN_SIDE, True))
        slot = self._style_slot("stylizer")

        def run(cancel: threading.Event) -> np.ndarray:
            with locked(slot.lock, cancel):
                return slot.model.stylize(content_img.rgb, style_img.rgb, strength=strength)

        result = await self.worker.run("stylize", run)
        return content_img, style_img.rgb, slot.name, slot.version or "?", result

    async def _gatys(
        self,
        content: Path,
        style: Path,
        size: int | None,
        steps: int | None,
        timeout_s: float | None,
        backbone: str | None,
        job: str | None,
    ) -> tuple[DecodedImage, np.ndarray, str, str, np.ndarray]:
        working_side(size, self.serve.gatys_max_size, self.serve)  # 422 over the maximum
        side = size or self.serve.gatys_max_size
        content_img = await self.decoder.decode(content, "content", Fit(side, MIN_SIDE, True))
        side = working_side(size, max(content_img.rgb.shape[:2]), self.serve)
        style_img = await self.decoder.decode(style, "style", Fit(side, MIN_SIDE, True))
        chosen = await anyio.to_thread.run_sync(self.gatys_settings.get, backbone)
        result = await self.runs.run_sync(
            content_img.rgb, style_img.rgb, side, steps, timeout_s, chosen.cfg, job
        )
        return content_img, style_img.rgb, "gatys", chosen.label, result

    async def gatys_job(
        self,
        ctx: bentoml.Context,
        content: Path,
        style: Path,
        steps: int | None,
        size: int | None,
        backbone: str | None,
    ) -> Any:
        started = time.perf_counter()
        try:
            job = await self.runs.submit(content, style, steps, size, backbone)
        except ApiError as exc:
            return self.answers.fail(ctx, "gatys_jobs", "gatys", exc, started)
        self.answers.count("gatys_jobs", "gatys", 202, started)
        ctx.response.status_code = 202
        return JSONResponse(job, status_code=202)

    async def monet(self, ctx: bentoml.Context, photo: Path, size: int | None, format: str) -> Any:
        started, variant = time.perf_counter(), "none"
        try:
            slot = self.models.slot("monet")
            trained = getattr(slot.model, "image_size", 256)
            side = min(size or trained, self.serve.max_output_side)
            decoded = await self.decoder.decode(photo, "photo", Fit(side, MIN_SIDE, True))
            slot = self._style_slot("monet")
            variant = slot.alias or "none"

            def run(cancel: threading.Event) -> np.ndarray:
                with locked(slot.lock, cancel):
                    return slot.model.translate(decoded.rgb, size=side)

            result = await self.worker.run("monet", run)
        except ApiError as exc:
            return self.answers.fail(ctx, "monet", variant, exc, started)
        latency_ms = (time.perf_counter() - started) * 1000
        self.recorder.record("monet", variant, slot.name, slot.version, latency_ms, decoded)
        headers = await self.style_answers.answered(
            "monet",
            (slot.name, str(slot.version), "cyclegan"),
            result,
            decoded.rgb,
            reference=getattr(slot.model, "reference", None),  # the Monet set's statistics
        )
        return await self.answers.image(
            ctx, "monet", variant, started, result, format, slot.version, headers
        )

    def _style_slot(self, key: str) -> Any:
        slot = self.models.slot(key)
        if not slot.loaded:
            what = "stylizer" if key == "stylizer" else "Monet generator"
            raise ApiError(503, f"model not loaded: no {what} ({slot.error or 'loading'})")
        return slot


def api(settings: Settings) -> type:
    """The /stylize, /gatys/jobs and /monet declarations, their bounds from `settings`; their
    work in `Styling` (the service's `styling`)."""
    serve = settings.serve

    class StyleApi:
        styling: Styling

        @bentoml.api(route="/stylize")
        async def stylize(
            self,
            content: Path,
            style: Path,
            ctx: bentoml.Context,
            method: Literal["fast", "gatys"] = "fast",
            strength: Annotated[float, Field(ge=0.0, le=1.0)] = settings.stylizer.strength,
            size: Annotated[int, Field(ge=32, le=serve.max_output_side)] | None = None,
            steps: Annotated[int, Field(ge=1, le=serve.gatys_max_steps)] | None = None,
            format: ImageFormat = "png",
            timeout_s: Annotated[float, Field(gt=0, le=serve.timeout_s)] | None = None,  # 504
            backbone: Backbone | None = None,
            job: Annotated[str, Field(max_length=64)] | None = None,
        ) -> Image.Image:
            """Content + style images -> the stylized image (fast feed-forward, or bounded Gatys),
            at the working size: `size`, else the content's, at most serve.max_output_side.

            Gatys: `backbone` picks VGG19 or ResNet50 features (with that backbone's registered
            best settings, artflow.style.gatys.settings); `job` names the run for
            GET /gatys/progress and POST /gatys/cancel."""
            return await self.styling.stylize(
                ctx, content, style, method, strength, size, steps, format, timeout_s, backbone, job
            )

        @bentoml.api(route="/gatys/jobs")
        async def gatys_job(
            self,
            content: Path,
            style: Path,
            ctx: bentoml.Context,
            steps: Annotated[int, Field(ge=1, le=serve.gatys_max_steps)] | None = None,
            size: Annotated[int, Field(ge=32, le=serve.gatys_max_size)] | None = None,
            backbone: Backbone | None = None,
        ) -> JobSubmitted:
            """Start a Gatys job: 202 at once with its id and links; it runs up to
            serve.gatys_max_steps (default) in this pod; progress, result and cancel at
            /gatys/jobs/<id> from any pod (artflow.serve.gatys_runs)."""
            return await self.styling.gatys_job(ctx, content, style, steps, size, backbone)

        @bentoml.api(route="/monet")
        async def monet(
            self,
            photo: Path,
            ctx: bentoml.Context,
            size: Annotated[int, Field(ge=32, le=serve.max_output_side)] | None = None,
            format: ImageFormat = "png",
        ) -> Image.Image:
            """A photo -> the same scene as a Monet painting (CycleGAN generator), at the working
            size: `size`, else the generator's training size, at most serve.max_output_side."""
            return await self.styling.monet(ctx, photo, size, format)

    return _docs_as_top_level(StyleApi)


def _docs_as_top_level(cls: type) -> type:
    """A class made in a function has its docstrings indented one level more: /docs.json's
    descriptions (BentoML copies them as written) read as those of the other groups."""
    for value in vars(cls).values():
        doc = getattr(value, "doc", None)  # a BentoML API method's description
        if isinstance(doc, str):
            value.doc = doc.replace("\n            ", "\n        ")
    return cls
