"""The web page in a real headless Chromium (Debian's), driven by Playwright."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.serve import images
from tests.serve.conftest import LABELS

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Debian's chromium at /usr/bin/chromium (apt-get install -y chromium)",
    ),
]


def _file(name: str, data: bytes, mime: str) -> dict:
    return {"name": name, "mimeType": mime, "buffer": data}


def test_page_classifies_stylizes_and_paints_monet(server):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = browser.new_page()
            requested: list[str] = []
            errors: list[str] = []
            page.on("request", lambda req: requested.append(req.url))
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"{server.url}/ui")
            expect(page.locator("#status")).to_have_attribute("data-ready", "true", timeout=20_000)

            page.set_input_files("#classify-file", _file("p.png", images.png(21), "image/png"))
            page.click("#classify-submit")
            bars = page.locator("#classify-chart rect.bar")
            expect(bars).to_have_count(len(LABELS), timeout=30_000)  # top 5 of 4 artists
            expect(page.locator("#classify-meta")).to_contain_text("variant")
            assert page.locator("#classify-error").inner_text() == ""

            page.set_input_files("#stylize-content", _file("c.png", images.png(22), "image/png"))
            page.set_input_files("#stylize-style", _file("s.jpg", images.jpeg(23), "image/jpeg"))
            page.click("#stylize-submit")
            result = page.locator("#stylize-result")
            expect(result).to_be_visible(timeout=60_000)
            page.wait_for_function("document.getElementById('stylize-result').naturalWidth > 0")
            assert result.evaluate("img => img.naturalWidth") == 48  # the content's width

            page.set_input_files("#monet-file", _file("m.jpg", images.jpeg(24), "image/jpeg"))
            page.click("#monet-submit")
            expect(page.locator("#monet-result")).to_be_visible(timeout=60_000)
            page.wait_for_function("document.getElementById('monet-result').naturalWidth > 0")

            # Bad input shows the service's message instead of breaking the page.
            page.set_input_files("#classify-file", _file("x.png", b"not an image", "image/png"))
            page.click("#classify-submit")
            expect(page.locator("#classify-error")).to_contain_text("422", timeout=30_000)

            assert errors == []
            outside = [u for u in requested if not u.startswith((server.url, "blob:", "data:"))]
            assert outside == []  # no CDN, nothing external
        finally:
            browser.close()
