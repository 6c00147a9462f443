// artflow web page: three tools over the service's own endpoints; no external resources.
"use strict";

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";

function preview(input, img) {
  const file = input.files[0];
  if (!file) { img.hidden = true; return; }
  img.src = URL.createObjectURL(file);
  img.hidden = false;
}

async function errorText(response) {
  try {
    const body = await response.json();
    return body.error || JSON.stringify(body);
  } catch (_) {
    return `${response.status} ${response.statusText}`;
  }
}

async function post(path, form, button, errorEl) {
  errorEl.textContent = "";
  button.disabled = true;
  try {
    const response = await fetch(path, { method: "POST", body: form });
    if (!response.ok) {
      errorEl.textContent = `${response.status}: ${await errorText(response)}`;
      return null;
    }
    return response;
  } catch (err) {
    errorEl.textContent = `request failed: ${err}`;
    return null;
  } finally {
    button.disabled = false;
  }
}

function drawBars(svg, rows) {
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  const rowH = 24, labelW = 170, barW = 220;
  svg.setAttribute("height", String(rows.length * rowH + 4));
  svg.style.height = `${rows.length * rowH + 4}px`;
  rows.forEach((row, i) => {
    const y = i * rowH + 2;
    const label = document.createElementNS(SVG, "text");
    label.setAttribute("x", "0");
    label.setAttribute("y", String(y + 15));
    label.textContent = row.artist.replaceAll("_", " ");
    const bar = document.createElementNS(SVG, "rect");
    bar.setAttribute("class", "bar");
    bar.setAttribute("x", String(labelW));
    bar.setAttribute("y", String(y + 3));
    bar.setAttribute("height", "16");
    bar.setAttribute("width", String(Math.max(1, row.probability * barW)));
    bar.dataset.artist = row.artist;
    const value = document.createElementNS(SVG, "text");
    value.setAttribute("x", String(labelW + Math.max(1, row.probability * barW) + 6));
    value.setAttribute("y", String(y + 15));
    value.textContent = `${(row.probability * 100).toFixed(1)}%`;
    svg.append(label, bar, value);
  });
}

let lastPrediction = null;  // the answer the "right?" buttons are about

$("classify-file").addEventListener("change", () => preview($("classify-file"), $("classify-preview")));
$("classify-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData();
  form.append("image", $("classify-file").files[0]);
  form.append("top_k", "5");
  if ($("classify-family").value) form.append("family", $("classify-family").value);
  $("feedback").hidden = true;
  $("classify-warning").hidden = true;
  const response = await post("/classify", form, $("classify-submit"), $("classify-error"));
  if (!response) return;
  const body = await response.json();
  $("classify-answer").textContent =
    `${body.artist.replaceAll("_", " ")} (${(body.confidence * 100).toFixed(1)}%)`;
  drawBars($("classify-chart"), body.top);
  const chosen = body.family ? `${body.family} (best gated)` : `variant ${body.variant}`;
  $("classify-meta").textContent =
    `${chosen} · ${body.model.name} v${body.model.version} · ${body.latency_ms} ms`;
  $("classify-chart").dataset.variant = body.variant;
  $("classify-warning").textContent = body.warning || "";
  $("classify-warning").hidden = !body.warning;
  lastPrediction = body;
  showFeedback(body);
});

function showFeedback(body) {
  const select = $("feedback-artist");
  while (select.firstChild) select.removeChild(select.firstChild);
  for (const artist of knownArtists.length ? knownArtists : body.top.map((r) => r.artist)) {
    if (artist === body.artist) continue;
    const option = document.createElement("option");
    option.value = artist;
    option.textContent = artist.replaceAll("_", " ");
    select.append(option);
  }
  $("feedback-artist-label").hidden = true;
  $("feedback-status").textContent = "";
  for (const id of ["feedback-yes", "feedback-no", "feedback-send"]) $(id).disabled = false;
  $("feedback").hidden = false;
}

async function sendFeedback(payload) {
  if (!lastPrediction) return;
  for (const id of ["feedback-yes", "feedback-no", "feedback-send"]) $(id).disabled = true;
  const response = await fetch("/feedback", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ prediction_id: lastPrediction.prediction_id, ...payload }),
  });
  $("feedback-status").textContent = response.ok
    ? "thanks, recorded" : `${response.status}: ${await errorText(response)}`;
  $("feedback").dataset.sent = String(response.ok);
}

$("feedback-yes").addEventListener("click", () => sendFeedback({ correct: true }));
$("feedback-no").addEventListener("click", () => { $("feedback-artist-label").hidden = false; });
$("feedback-send").addEventListener("click", () =>
  sendFeedback({ correct: false, artist: $("feedback-artist").value }));

$("stylize-content").addEventListener("change", () => preview($("stylize-content"), $("stylize-content-preview")));
$("stylize-style").addEventListener("change", () => preview($("stylize-style"), $("stylize-style-preview")));
$("stylize-strength").addEventListener("input", () => {
  $("stylize-strength-value").textContent = Number($("stylize-strength").value).toFixed(2);
});
$("stylize-method").addEventListener("change", () => {
  $("stylize-backbone-label").hidden = $("stylize-method").value !== "gatys";
});

let galleryStyle = null;  // {artist, blob} picked from the gallery instead of an upload
let knownArtists = [];

async function loadGallery() {
  try {
    const items = await (await fetch("/gallery")).json();
    knownArtists = items.map((item) => item.artist);
    for (const item of items) {
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.artist = item.artist;
      button.title = item.artist.replaceAll("_", " ");
      button.setAttribute("aria-pressed", "false");
      const img = document.createElement("img");
      img.src = item.url;
      img.alt = `style of ${item.artist.replaceAll("_", " ")}`;
      button.append(img);
      button.addEventListener("click", () => pickGallery(button, item));
      $("style-gallery").append(button);
    }
  } catch (_) { /* no gallery: uploading a style image still works */ }
}

async function pickGallery(button, item) {
  for (const b of $("style-gallery").querySelectorAll("button")) b.setAttribute("aria-pressed", "false");
  button.setAttribute("aria-pressed", "true");
  const blob = await (await fetch(item.url)).blob();
  galleryStyle = { artist: item.artist, blob };
  $("stylize-style").value = "";
  $("stylize-style-preview").src = URL.createObjectURL(blob);
  $("stylize-style-preview").hidden = false;
}
$("stylize-style").addEventListener("change", () => {
  galleryStyle = null;
  for (const b of $("style-gallery").querySelectorAll("button")) b.setAttribute("aria-pressed", "false");
});

function randomJob() {
  const bytes = crypto.getRandomValues(new Uint8Array(12));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

let currentJob = null;
async function pollProgress(job) {
  while (currentJob === job) {
    try {
      const response = await fetch(`/gatys/progress?job=${job}`);
      if (response.ok) {
        const p = await response.json();
        $("gatys-bar").max = p.steps;
        $("gatys-bar").value = p.step;
        const loss = p.loss === null || p.loss === undefined ? "…" : Number(p.loss).toPrecision(4);
        $("gatys-text").textContent = `${p.backbone} step ${p.step}/${p.steps} · loss ${loss} · ${p.state}`;
        $("gatys-progress").dataset.step = String(p.step);
        $("gatys-progress").dataset.state = p.state;
        if (p.state !== "running" && p.state !== "queued") return;  // a job starts queued
      }
    } catch (_) { /* the next poll retries */ }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}
$("gatys-cancel").addEventListener("click", async () => {
  if (!currentJob) return;
  $("gatys-cancel").disabled = true;
  await fetch(`/gatys/cancel?job=${currentJob}`, { method: "POST" });
});

$("stylize-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const style = galleryStyle ? galleryStyle.blob : $("stylize-style").files[0];
  if (!style) { $("stylize-error").textContent = "pick a style image from the gallery or upload one"; return; }
  const form = new FormData();
  form.append("content", $("stylize-content").files[0]);
  form.append("style", style, galleryStyle ? `${galleryStyle.artist}.jpg` : style.name);
  form.append("method", $("stylize-method").value);
  form.append("strength", $("stylize-strength").value);
  const gatys = $("stylize-method").value === "gatys";
  let job = null;
  if (gatys) {
    job = randomJob();
    form.append("backbone", $("stylize-backbone").value);
    form.append("job", job);
    currentJob = job;
    $("gatys-progress").hidden = false;
    $("gatys-progress").dataset.state = "running";
    $("gatys-cancel").disabled = false;
    $("gatys-text").textContent = "starting…";
    pollProgress(job);
  }
  const response = await post("/stylize", form, $("stylize-submit"), $("stylize-error"));
  if (gatys) {
    currentJob = null;
    $("gatys-cancel").disabled = true;
    const final = await fetch(`/gatys/progress?job=${job}`);
    if (final.ok) {
      const p = await final.json();
      $("gatys-progress").dataset.state = p.state;
      $("gatys-text").textContent = `${p.backbone} step ${p.step}/${p.steps} · ${p.state}`;
    }
  }
  if (!response) return;
  const blob = await response.blob();
  $("stylize-result").src = URL.createObjectURL(blob);
  $("stylize-result").hidden = false;
  $("stylize-meta").textContent =
    `${$("stylize-method").value} · ${response.headers.get("X-Artflow-Model-Version") || "?"}` +
    ` · ${response.headers.get("X-Artflow-Latency-Ms") || "?"} ms`;
});

$("monet-file").addEventListener("change", () => preview($("monet-file"), $("monet-preview")));
$("monet-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData();
  form.append("photo", $("monet-file").files[0]);
  const response = await post("/monet", form, $("monet-submit"), $("monet-error"));
  if (!response) return;
  const blob = await response.blob();
  $("monet-result").src = URL.createObjectURL(blob);
  $("monet-result").hidden = false;
  $("monet-meta").textContent =
    `model v${response.headers.get("X-Artflow-Model-Version") || "?"}` +
    ` · ${response.headers.get("X-Artflow-Latency-Ms") || "?"} ms`;
});

async function refreshStatus() {
  const el = $("status");
  try {
    const body = await (await fetch("/status")).json();
    const models = body.models || {};
    const parts = Object.entries(models).map(([key, m]) =>
      `${key} ${m.loaded ? "v" + m.version : "—"}`);
    el.dataset.ready = String(Boolean(body.ready));
    el.textContent = `${body.ready ? "ready" : body.state || "not ready"} · ${parts.join(" · ")}`;
  } catch (_) {
    el.dataset.ready = "false";
    el.textContent = "service unreachable";
  }
}
refreshStatus();
setInterval(refreshStatus, 10000);
loadGallery();
