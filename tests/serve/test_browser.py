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


def test_page_model_choice_gallery_gatys_progress_cancel_and_feedback(server, demo_workdir):
    """The study's features on the page: the family picker answers with the family's best
    version, "right?" sends feedback, the style gallery feeds the stylizer, and a Gatys run
    shows its steps live until Cancel stops it."""
    import httpx
    from playwright.sync_api import expect, sync_playwright

    from artflow.registry import tracking
    from artflow.serve.gallery import build_gallery
    from tests.serve.conftest import ADMIN_TOKEN

    v1 = server.versions["v1"]
    tracking.set_alias(tracking.CLASSIFIER, "best-cnn", v1)
    artists = build_gallery(demo_workdir, server.prediction_log.parent / "gallery", size=64)
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    assert httpx.post(f"{server.url}/admin/reload", headers=admin, timeout=240).status_code == 200
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"{server.url}/ui")
            expect(page.locator("#status")).to_have_attribute("data-ready", "true", timeout=20_000)

            # Model choice: "custom CNN" answers with best-cnn's version.
            page.select_option("#classify-family", "cnn")
            page.set_input_files("#classify-file", _file("p.png", images.png(61), "image/png"))
            page.click("#classify-submit")
            expect(page.locator("#classify-meta")).to_contain_text(f"v{v1}", timeout=30_000)
            expect(page.locator("#classify-meta")).to_contain_text("cnn (best gated)")
            # Feedback: "right?" -> yes.
            expect(page.locator("#feedback")).to_be_visible()
            page.click("#feedback-yes")
            expect(page.locator("#feedback-status")).to_contain_text("recorded", timeout=10_000)
            # Automatic (A/B), then "no" with the true artist.
            page.select_option("#classify-family", "")
            page.click("#classify-submit")
            expect(page.locator("#classify-meta")).to_contain_text("variant", timeout=30_000)
            page.click("#feedback-no")
            expect(page.locator("#feedback-artist option")).not_to_have_count(0)
            page.click("#feedback-send")
            expect(page.locator("#feedback-status")).to_contain_text("recorded", timeout=10_000)

            # The gallery: one style image per artist; a picked one styles the content.
            gallery = page.locator("#style-gallery button")
            expect(gallery).to_have_count(len(artists), timeout=10_000)
            gallery.first.click()
            expect(gallery.first).to_have_attribute("aria-pressed", "true")
            expect(page.locator("#stylize-style-preview")).to_be_visible()
            page.set_input_files("#stylize-content", _file("c.png", images.png(62), "image/png"))
            page.click("#stylize-submit")
            page.wait_for_function(
                "document.getElementById('stylize-result').naturalWidth > 0", timeout=60_000
            )

            # Gatys: the backbone picker appears, progress counts steps, Cancel stops the run.
            page.select_option("#stylize-method", "gatys")
            expect(page.locator("#stylize-backbone-label")).to_be_visible()
            page.select_option("#stylize-backbone", "vgg19")
            page.click("#stylize-submit")
            progress = page.locator("#gatys-progress")
            expect(progress).to_be_visible()
            page.wait_for_function(
                "Number(document.getElementById('gatys-progress').dataset.step || 0) >= 1",
                timeout=90_000,
            )
            expect(page.locator("#gatys-text")).to_contain_text("loss")
            page.click("#gatys-cancel")
            expect(progress).to_have_attribute("data-state", "cancelled", timeout=60_000)
            expect(page.locator("#stylize-error")).to_contain_text("409")
            assert errors == []
        finally:
            browser.close()
            tracking.client().delete_registered_model_alias(tracking.CLASSIFIER, "best-cnn")
    from tests.serve.conftest import server_store

    feedback = server_store(server).feedback_rows()
    assert len(feedback) >= 2
