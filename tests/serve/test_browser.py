"""The web page in a real headless Chromium (Debian's), driven by Playwright, against the
session's real server: as a person meets it (nothing that waits for an answer shows before
it), each tool answered, errors beside the control that caused them, Grad-CAM over the upload,
and a Gatys job with live progress and Cancel. One browser for the module; screenshots of each
state go to the test's tmp dir."""

from __future__ import annotations

import mimetypes
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.serve import images
from tests.serve.conftest import LABELS

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="needs Debian's chromium at /usr/bin/chromium (apt-get install -y chromium)",
    ),
]

# What needs an answer (or a running job) and so must not show before one.
WAITING = [
    "#classify-stage",
    "#classify-result",
    "#feedback",
    "#feedback-yes",
    "#feedback-send",
    "#explain-toggle",
    "#classify-overlay",
    "#neighbours",
    "#gatys-progress",
    "#gatys-cancel",
    "#stylize-content-frame",
    "#stylize-style-frame",
    "#stylize-result-frame",
    "#stylize-meta",
    "#stylize-rating",
    "#monet-preview-frame",
    "#monet-result-frame",
    "#monet-meta",
    "#monet-rating",
]

# Visible things that show nothing: an image that has not decoded (its alt text or a broken
# frame), a figure without a decoded image, an empty error slot.
EMPTY_FRAMES_JS = """() => {
  const shown = (el) => el.checkVisibility();
  const decoded = (img) => img.complete && img.naturalWidth > 0;
  const bad = [];
  for (const img of document.querySelectorAll("img"))
    if (shown(img) && !decoded(img)) bad.push(`img ${img.id || img.alt}`);
  for (const fig of document.querySelectorAll("figure"))
    if (shown(fig) && ![...fig.querySelectorAll("img")].some((i) => shown(i) && decoded(i)))
      bad.push(`figure ${fig.id}`);
  for (const el of document.querySelectorAll(".error"))
    if (shown(el) && !el.textContent.trim()) bad.push(`empty error ${el.id}`);
  return bad;
}"""

# The error slot that shows `control`'s failure: right after the control's label (the page
# puts one there when the service names the field) or after the form's submit button.
ERROR_BESIDE_JS = """(control) => {
  const form = control.form;
  const label = control.closest("label") || control;
  const slot = label.nextElementSibling;
  if (slot && slot.classList.contains("error") && slot.checkVisibility()) return slot.textContent;
  const own = form.querySelector(".error[data-for='form']");
  const submit = form.querySelector("[type=submit]");
  return own.checkVisibility() && own.previousElementSibling === submit ? own.textContent : null;
}"""


def _file(name: str, data: bytes, mime: str) -> dict:
    return {"name": name, "mimeType": mime, "buffer": data}


@dataclass
class Tab:
    """One page of the UI with what it logged: uncaught errors and every URL it asked for."""

    page: object
    errors: list[str] = field(default_factory=list)
    requested: list[str] = field(default_factory=list)

    def assert_nothing_waiting(self, allowed: tuple[str, ...] = ()) -> None:
        from playwright.sync_api import expect

        for selector in WAITING:
            if selector not in allowed:
                expect(self.page.locator(selector)).to_be_hidden()
        assert self.page.evaluate(EMPTY_FRAMES_JS) == []

    def error_beside(self, selector: str) -> str | None:
        return self.page.locator(selector).evaluate(ERROR_BESIDE_JS)

    def shot(self, path: Path, selector: str | None = None) -> None:
        target = self.page.locator(selector) if selector else self.page
        kwargs = {} if selector else {"full_page": True}
        target.screenshot(path=str(path), **kwargs)
        assert path.stat().st_size > 1000


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture()
def tab(browser, server) -> Iterator[Tab]:
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1100, "height": 900})
    tab = Tab(context.new_page())
    tab.page.on("request", lambda req: tab.requested.append(req.url))
    tab.page.on("pageerror", lambda exc: tab.errors.append(str(exc)))
    tab.page.goto(f"{server.url}/ui")
    expect(tab.page.locator("#status")).to_have_attribute("data-ready", "true", timeout=20_000)
    try:
        yield tab
    finally:
        context.close()


def _service_error(server, path: str, files: dict) -> str:
    """The service's own message for a bad upload, asked for directly."""
    answer = httpx.post(f"{server.url}{path}", files=files, timeout=60)
    assert 400 <= answer.status_code < 500 and {"error", "code"} <= set(answer.json()), answer.text
    return answer.json()["error"]


def _rate(server, page, prefix: str, rating: int) -> None:
    """Rate the answer shown in `prefix`'s tool; the rating is in the serving store."""
    from playwright.sync_api import expect

    from tests.serve.conftest import server_store

    form = page.locator(f"#{prefix}-rating")
    expect(form).to_be_visible()
    answer = form.get_attribute("data-answer-id")
    form.locator(f"button[data-rating='{rating}']").click()
    expect(page.locator(f"#{prefix}-rating-status")).to_contain_text(f"{rating} of 5")
    expect(form.locator("button[data-rating='1']")).to_be_disabled()  # one rating per answer
    rows = server_store(server).style_window(0)
    assert [r["rating"] for r in rows if r["answer_id"] == answer] == [rating]


def test_empty_page_and_each_answered_section(server, tab, tmp_path):
    from playwright.sync_api import expect

    page = tab.page
    tab.shot(tmp_path / "empty.png")
    tab.assert_nothing_waiting()

    # Classify: the answer comes with its chart, "Right?" and "show where it looked".
    page.set_input_files("#classify-file", _file("p.png", images.png(21, 160, 120), "image/png"))
    expect(page.locator("#classify-stage")).to_be_visible()  # the picked painting
    tab.assert_nothing_waiting(allowed=("#classify-stage",))
    page.click("#classify-submit")
    expect(page.locator("#classify-chart rect.bar")).to_have_count(len(LABELS), timeout=30_000)
    expect(page.locator("#classify-meta")).to_contain_text("variant")
    for shown in ("#feedback-yes", "#feedback-no", "#explain-toggle"):
        expect(page.locator(shown)).to_be_visible()
    expect(page.locator("#feedback-send")).to_be_hidden()  # until "no"
    direct = httpx.post(
        f"{server.url}/classify",
        files={"image": ("p.png", images.png(21, 160, 120), "image/png")},
        data={"neighbours": "5"},
        timeout=60,
    ).json()
    thumbs = page.locator("#neighbours-list li")
    if direct.get("neighbours"):
        expect(thumbs).to_have_count(len(direct["neighbours"]))
        expect(thumbs.first).to_be_visible()
        # each thumbnail names its painting's artist: the gallery's own artists, which need
        # not be these test models' labels (a novelty model calibrated earlier in the session
        # holds the demo's artists), and the page's A/B variant may differ from `direct`'s
        shown = thumbs.evaluate_all("els => els.map(e => e.dataset.artist)")
        assert all(isinstance(a, str) and a for a in shown)
    else:  # no gallery with these models (or an older service): nothing, not an empty heading
        expect(page.locator("#neighbours")).to_be_hidden()
    tab.shot(tmp_path / "classify.png", "#classify-tool")
    tab.assert_nothing_waiting(
        allowed=("#classify-stage", "#classify-result", "#feedback", "#feedback-yes")
        + ("#explain-toggle", "#neighbours")
    )

    # Style transfer (fast): the result's frame appears with the result; no job, no progress.
    page.set_input_files("#stylize-content", _file("c.png", images.png(22), "image/png"))
    page.set_input_files("#stylize-style", _file("s.jpg", images.jpeg(23), "image/jpeg"))
    page.click("#stylize-submit")
    expect(page.locator("#stylize-result")).to_be_visible(timeout=60_000)
    assert page.locator("#stylize-result").evaluate("img => img.naturalWidth") == 48  # content's
    expect(page.locator("#stylize-meta")).to_contain_text("fast")
    tab.shot(tmp_path / "stylize.png", "#stylize-tool")
    expect(page.locator("#gatys-progress")).to_be_hidden()
    assert page.evaluate(EMPTY_FRAMES_JS) == []
    _rate(server, page, "stylize", 4)

    # Monet.
    page.set_input_files("#monet-file", _file("m.jpg", images.jpeg(24), "image/jpeg"))
    page.click("#monet-submit")
    expect(page.locator("#monet-result")).to_be_visible(timeout=60_000)
    expect(page.locator("#monet-meta")).to_contain_text("model v")
    tab.shot(tmp_path / "monet.png", "#monet-tool")
    assert page.evaluate(EMPTY_FRAMES_JS) == []
    _rate(server, page, "monet", 2)

    # A refusal shows the service's own message beside the control at fault, and the answer
    # about the previous image goes away.
    bad = b"not an image"
    expected = _service_error(server, "/classify", {"image": ("x.png", bad, "image/png")})
    page.set_input_files("#classify-file", _file("x.png", bad, "image/png"))
    page.click("#classify-submit")
    expect(page.get_by_role("alert").filter(has_text=expected)).to_be_visible(timeout=30_000)
    assert expected in (tab.error_beside("#classify-file") or "")
    expect(page.locator("#classify-result")).to_be_hidden()
    expect(page.locator("#classify-stage")).to_be_hidden()  # a file that does not decode
    files = {
        "content": ("x.png", bad, "image/png"),
        "style": ("s.jpg", images.jpeg(23), "image/jpeg"),
    }
    expected = _service_error(server, "/stylize", files)
    page.set_input_files("#stylize-content", _file("x.png", bad, "image/png"))
    page.click("#stylize-submit")
    expect(page.get_by_role("alert").filter(has_text=expected)).to_be_visible(timeout=30_000)
    assert expected in (tab.error_beside("#stylize-content") or "")
    expect(page.locator("#stylize-result-frame")).to_be_hidden()
    expect(page.locator("#stylize-rating")).to_be_hidden()  # no answer, nothing to rate
    tab.shot(tmp_path / "errors.png")
    assert page.evaluate(EMPTY_FRAMES_JS) == []

    assert tab.errors == []
    outside = [u for u in tab.requested if not u.startswith((server.url, "blob:", "data:"))]
    assert outside == []  # no CDN, nothing external


def test_show_where_it_looked_lays_the_heatmap_over_the_upload(server, tab, tmp_path):
    from playwright.sync_api import expect

    painting = images.png(31, 160, 120)
    direct = httpx.post(
        f"{server.url}/classify",
        files={"image": ("p.png", painting, "image/png")},
        data={"explain": "true"},
        timeout=120,
    ).json()
    if "explanation" not in direct:
        pytest.skip("this server's /classify does not answer explain=true yet")
    page = tab.page
    page.set_input_files("#classify-file", _file("p.png", painting, "image/png"))
    page.click("#classify-submit")
    expect(page.locator("#explain-toggle")).to_be_visible(timeout=30_000)
    overlay = page.locator("#classify-overlay")
    expect(overlay).to_be_hidden()  # only on demand
    asked = len([u for u in tab.requested if u.endswith("/classify")])
    page.click("#explain-toggle")
    expect(overlay).to_be_visible(timeout=60_000)
    assert overlay.evaluate("img => [img.naturalWidth, img.naturalHeight]") == list(
        direct["explanation"]["overlay_size"]
    )
    over, under = overlay.bounding_box(), page.locator("#classify-preview").bounding_box()
    for key in ("x", "y", "width", "height"):  # the whole upload (bounds = the image)
        assert abs(over[key] - under[key]) <= 1, (key, over, under)
    expect(page.locator("#explain-meta")).to_contain_text(direct["explanation"]["method"])
    expect(page.locator("#explain-toggle")).to_have_attribute("aria-pressed", "true")
    tab.shot(tmp_path / "explained.png", "#classify-tool")
    page.click("#explain-toggle")  # hide, then show again without asking again
    expect(overlay).to_be_hidden()
    page.click("#explain-toggle")
    expect(overlay).to_be_visible()
    assert len([u for u in tab.requested if u.endswith("/classify")]) == asked + 1
    # A new file forgets the answer and its explanation.
    page.set_input_files("#classify-file", _file("q.png", images.png(32), "image/png"))
    expect(overlay).to_be_hidden()
    expect(page.locator("#explain-toggle")).to_be_hidden()
    assert tab.errors == []


def _with_gallery(server, loaded, settings, workdir) -> None:
    """The session's trained smoke CNN as `best-cnn`, with its novelty model (whose gallery
    holds the training paintings' thumbnails); usually calibrated already by tests/classify.
    Training it may have moved `challenger` and `champion`: put back where the serving tests
    expect them."""
    from artflow.monitor.novelty import TAG, build_novelty
    from artflow.monitor.reference import build_reference
    from artflow.registry import tracking
    from tests.serve.conftest import set_champion

    v = server.versions
    tracking.set_alias(tracking.CLASSIFIER, tracking.CHALLENGER, v["v3"])
    set_champion(v["v2"], history=[v["v1"], v["v2"]])
    if TAG not in (tracking.client().get_model_version(tracking.CLASSIFIER, loaded.version).tags):
        build_reference(settings, workdir, loaded)
        build_novelty(settings, workdir, loaded)
    tracking.set_alias(tracking.CLASSIFIER, "best-cnn", loaded.version)


def test_page_model_choice_neighbours_gallery_gatys_job_and_feedback(
    server, loaded_cnn, smoke_settings, classify_workdir, demo_workdir, tab, tmp_path
):
    """The study's features on the page: the family picker answers with the family's best
    version and its closest training paintings, "right?" sends feedback, the style gallery
    feeds the stylizer, and a Gatys job shows its steps live, with Cancel, only while it runs."""
    import pandas as pd
    from playwright.sync_api import expect

    from artflow.registry import tracking
    from artflow.serve.gallery import build_gallery
    from tests.serve.conftest import ADMIN_TOKEN, server_store

    _with_gallery(server, loaded_cnn, smoke_settings, classify_workdir)
    artists = build_gallery(demo_workdir, server.prediction_log.parent / "gallery", size=64)
    admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    assert httpx.post(f"{server.url}/admin/reload", headers=admin, timeout=240).status_code == 200
    page = tab.page
    try:
        page.reload()  # the gallery is listed at load
        expect(page.locator("#status")).to_have_attribute("data-ready", "true", timeout=20_000)

        # Model choice: "custom CNN" answers with best-cnn's version, and with thumbnails of
        # the training paintings nearest to a validation painting, each with its artist.
        painting = pd.read_csv(classify_workdir.split_csv("val"))["path"].iloc[0]
        data = classify_workdir.abs(painting).read_bytes()
        page.select_option("#classify-family", "cnn")
        page.set_input_files(
            "#classify-file",
            _file(Path(painting).name, data, mimetypes.guess_type(painting)[0] or "image/jpeg"),
        )
        page.click("#classify-submit")
        expect(page.locator("#classify-meta")).to_contain_text(
            f"v{loaded_cnn.version}", timeout=30_000
        )
        expect(page.locator("#classify-meta")).to_contain_text("cnn (best gated)")
        thumbs = page.locator("#neighbours-list li")
        expect(thumbs).to_have_count(5)
        for i in range(5):
            expect(thumbs.nth(i).locator("img")).to_be_visible()
        shown = thumbs.evaluate_all("els => els.map(e => e.dataset.artist)")
        assert set(shown) <= set(loaded_cnn.labels)
        captions = thumbs.locator("span").all_inner_texts()
        assert captions == [a.replace("_", " ") for a in shown]
        assert page.evaluate(EMPTY_FRAMES_JS) == []
        tab.shot(tmp_path / "classify-neighbours.png", "#classify-tool")
        # Feedback: "right?" -> yes.
        expect(page.locator("#feedback")).to_be_visible()
        page.click("#feedback-yes")
        expect(page.locator("#feedback-status")).to_contain_text("recorded", timeout=10_000)
        # Automatic (A/B), then "no" with the true artist.
        page.select_option("#classify-family", "")
        page.click("#classify-submit")
        expect(page.locator("#classify-meta")).to_contain_text("variant", timeout=30_000)
        expect(page.locator("#feedback-status")).to_be_hidden()  # a new answer, a new question
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
        expect(page.locator("#stylize-result")).to_be_visible(timeout=60_000)

        # Gatys as a job: the backbone picker appears, progress counts steps, Cancel stops the
        # run, and both go away when it has ended.
        page.select_option("#stylize-method", "gatys")
        expect(page.locator("#stylize-backbone-label")).to_be_visible()
        expect(page.locator("#stylize-strength-label")).to_be_hidden()
        page.select_option("#stylize-backbone", "vgg19")
        page.click("#stylize-submit")
        progress = page.locator("#gatys-progress")
        expect(progress).to_be_visible(timeout=30_000)
        expect(page.locator("#stylize-result-frame")).to_be_hidden()  # the old result went
        expect(page.locator("#stylize-submit")).to_be_disabled()
        page.wait_for_function(
            "Number(document.getElementById('gatys-progress').dataset.step || 0) >= 1",
            timeout=90_000,
        )
        expect(page.locator("#gatys-text")).to_contain_text("loss")
        tab.shot(tmp_path / "gatys-running.png", "#stylize-tool")
        page.click("#gatys-cancel")
        expect(page.locator("#stylize-tool")).to_have_attribute(
            "data-job-state", "cancelled", timeout=60_000
        )
        expect(progress).to_be_hidden()
        expect(page.locator("#gatys-cancel")).to_be_hidden()
        expect(page.locator("#stylize-meta")).to_contain_text("cancelled")
        expect(page.locator("#stylize-submit")).to_be_enabled()
        tab.shot(tmp_path / "gatys-cancelled.png", "#stylize-tool")
        assert page.evaluate(EMPTY_FRAMES_JS) == []
        assert tab.errors == []
    finally:
        tracking.client().delete_registered_model_alias(tracking.CLASSIFIER, "best-cnn")
    assert len(server_store(server).feedback_rows()) >= 2
