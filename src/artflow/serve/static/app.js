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

$("classify-file").addEventListener("change", () => preview($("classify-file"), $("classify-preview")));
$("classify-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData();
  form.append("image", $("classify-file").files[0]);
  form.append("top_k", "5");
  const response = await post("/classify", form, $("classify-submit"), $("classify-error"));
  if (!response) return;
  const body = await response.json();
  $("classify-answer").textContent =
    `${body.artist.replaceAll("_", " ")} (${(body.confidence * 100).toFixed(1)}%)`;
  drawBars($("classify-chart"), body.top);
  $("classify-meta").textContent =
    `variant ${body.variant} · ${body.model.name} v${body.model.version} · ${body.latency_ms} ms`;
  $("classify-chart").dataset.variant = body.variant;
});

$("stylize-content").addEventListener("change", () => preview($("stylize-content"), $("stylize-content-preview")));
$("stylize-style").addEventListener("change", () => preview($("stylize-style"), $("stylize-style-preview")));
$("stylize-strength").addEventListener("input", () => {
  $("stylize-strength-value").textContent = Number($("stylize-strength").value).toFixed(2);
});
$("stylize-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData();
  form.append("content", $("stylize-content").files[0]);
  form.append("style", $("stylize-style").files[0]);
  form.append("method", $("stylize-method").value);
  form.append("strength", $("stylize-strength").value);
  const response = await post("/stylize", form, $("stylize-submit"), $("stylize-error"));
  if (!response) return;
  const blob = await response.blob();
  $("stylize-result").src = URL.createObjectURL(blob);
  $("stylize-result").hidden = false;
  $("stylize-meta").textContent =
    `${$("stylize-method").value} · model ${response.headers.get("X-Artflow-Model-Version") || "?"}` +
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
