// Classify: the answer with its chart, the novelty warning, the closest training paintings,
// "show where it looked" (Grad-CAM over the upload) and "Right?" feedback.
import { $, clearErrors, pretty, send, showError, showImage, showPicked } from "./common.js";

const SVG = "http://www.w3.org/2000/svg";
const NEIGHBOURS = 5;  // training paintings shown with an answer (the service allows 1-10)

let answered = null;  // the answer on screen: what "Right?" and "show where it looked" are about
let knownArtists = [];

export function setArtists(artists) { knownArtists = artists; }

function drawBars(svg, rows) {
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  const rowH = 24, labelW = 170, barW = 220;
  svg.setAttribute("height", String(rows.length * rowH + 4));
  svg.style.height = `${rows.length * rowH + 4}px`;
  rows.forEach((row, i) => {
    const y = i * rowH + 2;
    const width = Math.max(1, row.probability * barW);
    const label = document.createElementNS(SVG, "text");
    label.setAttribute("x", "0");
    label.setAttribute("y", String(y + 15));
    label.textContent = pretty(row.artist);
    const bar = document.createElementNS(SVG, "rect");
    bar.setAttribute("class", "bar");
    bar.setAttribute("x", String(labelW));
    bar.setAttribute("y", String(y + 3));
    bar.setAttribute("height", "16");
    bar.setAttribute("width", String(width));
    bar.dataset.artist = row.artist;
    const value = document.createElementNS(SVG, "text");
    value.setAttribute("x", String(labelW + width + 6));
    value.setAttribute("y", String(y + 15));
    value.textContent = `${(row.probability * 100).toFixed(1)}%`;
    svg.append(label, bar, value);
  });
}

// The request for the picked file; `extra` adds explain / neighbours.
function classifyForm(extra) {
  const form = new FormData();
  form.append("image", $("classify-file").files[0]);
  form.append("top_k", "5");
  const family = answered && extra.explain ? answered.family : $("classify-family").value;
  if (family) form.append("family", family);
  for (const [key, value] of Object.entries(extra)) form.append(key, value);
  return form;
}

// An answer about another image (or none) must not stay on screen: hide it and its controls.
function forgetAnswer() {
  answered = null;
  $("classify-result").hidden = true;
  hideOverlay();
  $("classify-overlay").removeAttribute("src");
  delete $("classify-overlay").dataset.artist;
}

function hideOverlay() {
  $("classify-overlay").hidden = true;
  $("explain-toggle").setAttribute("aria-pressed", "false");
  $("explain-toggle").textContent = "show where it looked";
  $("explain-meta").hidden = true;
}

function showAnswer(body) {
  answered = body;
  $("classify-answer").textContent = `${pretty(body.artist)} (${(body.confidence * 100).toFixed(1)}%)`;
  drawBars($("classify-chart"), body.top);
  $("classify-chart").dataset.variant = body.variant;
  const chosen = body.family ? `${body.family} (best gated)` : `variant ${body.variant}`;
  $("classify-meta").textContent =
    `${chosen} · ${body.model.name} v${body.model.version} · ${body.latency_ms} ms`;
  $("classify-warning").textContent = body.warning || "";
  $("classify-warning").hidden = !body.warning;
  showNeighbours(body.neighbours);
  showFeedback(body);
  clearErrors($("explain-form"));
  $("classify-result").hidden = false;
}

// Thumbnails of the nearest training paintings; none (an older service, or a model without a
// gallery) hides the block rather than showing an empty heading.
function showNeighbours(neighbours) {
  const list = $("neighbours-list");
  while (list.firstChild) list.removeChild(list.firstChild);
  const items = Array.isArray(neighbours) ? neighbours : [];
  for (const n of items) {
    const li = document.createElement("li");
    li.dataset.artist = n.artist;
    const img = document.createElement("img");
    img.alt = `a training painting by ${pretty(n.artist)}`;
    img.title = `distance ${Number(n.distance).toFixed(2)}`;
    li.hidden = true;  // until its thumbnail decodes
    showImage(img, li, n.thumbnail);
    const caption = document.createElement("span");
    caption.textContent = pretty(n.artist);
    li.append(img, caption);
    list.append(li);
  }
  $("neighbours").hidden = items.length === 0;
}

$("classify-file").addEventListener("change", () => {
  forgetAnswer();
  clearErrors($("classify-form"));
  showPicked($("classify-file"), $("classify-preview"), $("classify-stage"));
});

$("classify-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  forgetAnswer();
  const form = classifyForm({ neighbours: String(NEIGHBOURS) });
  const response = await send("/classify", form, $("classify-form"), $("classify-submit"));
  if (response) showAnswer(await response.json());
});

// "show where it looked": the first press asks /classify with explain=true for the same
// image (and the answer's family), later presses only show or hide the overlay.
$("explain-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const overlay = $("classify-overlay");
  if (!overlay.hidden) { hideOverlay(); return; }
  if (overlay.dataset.artist) { revealOverlay(); return; }
  const current = answered;
  const form = classifyForm({ explain: "true" });
  const response = await send("/classify", form, $("explain-form"), $("explain-toggle"));
  if (!response || answered !== current) return;  // a newer answer replaced this one
  const body = await response.json();
  if (!body.explanation) {
    showError($("explain-form"), { message: "this service does not explain its answers" });
    return;
  }
  placeOverlay(body.explanation);
});

// The overlay covers `bounds` of the upload (in the upload's pixels), whatever size the
// preview is drawn at: percentages of the preview's natural size.
function placeOverlay(explanation) {
  const overlay = $("classify-overlay");
  const preview = $("classify-preview");
  const w = preview.naturalWidth || explanation.bounds.width;
  const h = preview.naturalHeight || explanation.bounds.height;
  const b = explanation.bounds;
  Object.assign(overlay.style, {
    left: `${(100 * b.x) / w}%`,
    top: `${(100 * b.y) / h}%`,
    width: `${(100 * b.width) / w}%`,
    height: `${(100 * b.height) / h}%`,
  });
  overlay.dataset.artist = explanation.artist;
  $("explain-meta").textContent =
    `${explanation.method} for ${pretty(explanation.artist)} · layer ${explanation.layer}` +
    ` · ${explanation.grid[1]}×${explanation.grid[0]} grid`;
  overlay.onload = revealOverlay;
  overlay.onerror = () => showError($("explain-form"), { message: "the heatmap did not decode" });
  overlay.src = explanation.overlay_png;
}

function revealOverlay() {
  $("classify-overlay").hidden = false;
  $("explain-toggle").setAttribute("aria-pressed", "true");
  $("explain-toggle").textContent = "hide where it looked";
  $("explain-meta").hidden = false;
}

function showFeedback(body) {
  const select = $("feedback-artist");
  while (select.firstChild) select.removeChild(select.firstChild);
  for (const artist of knownArtists.length ? knownArtists : body.top.map((r) => r.artist)) {
    if (artist === body.artist) continue;
    const option = document.createElement("option");
    option.value = artist;
    option.textContent = pretty(artist);
    select.append(option);
  }
  $("feedback-artist-label").hidden = true;
  $("feedback-status").hidden = true;
  clearErrors($("feedback"));
  delete $("feedback").dataset.sent;
  for (const id of ["feedback-yes", "feedback-no", "feedback-send"]) $(id).disabled = false;
}

async function sendFeedback(payload) {
  if (!answered) return;
  const buttons = ["feedback-yes", "feedback-no", "feedback-send"].map($);
  const body = JSON.stringify({ prediction_id: answered.prediction_id, ...payload });
  const headers = { "Content-Type": "application/json" };
  const response = await send("/feedback", body, $("feedback"), null, { headers });
  $("feedback").dataset.sent = String(Boolean(response));
  if (!response) return;
  for (const b of buttons) b.disabled = true;  // one verdict per answer
  $("feedback-status").textContent = "thanks, recorded";
  $("feedback-status").hidden = false;
}

$("feedback-yes").addEventListener("click", () => sendFeedback({ correct: true }));
$("feedback-no").addEventListener("click", () => { $("feedback-artist-label").hidden = false; });
$("feedback-send").addEventListener("click", () =>
  sendFeedback({ correct: false, artist: $("feedback-artist").value }));
