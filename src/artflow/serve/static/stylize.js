// Style transfer: fast (one synchronous /stylize call) or Gatys, which runs as a job
// (POST /gatys/jobs, then its progress until it ends, then its result), so a run of the
// documented maximum finishes whatever the request timeout; progress and Cancel show only
// while a job runs.
import { $, blobUrl, clearErrors, errorOf, pretty, send, showError, showImage, showPicked } from "./common.js";
import { hideRating, offerRating } from "./rating.js";

const POLL_MS = 500;
const ACTIVE = ["queued", "running"];

let galleryStyle = null;  // {artist, blob} picked from the gallery instead of an upload
let job = null;  // the Gatys job running now: {job, progress, result, cancel}

const form = $("stylize-form");

$("stylize-content").addEventListener("change", () =>
  showPicked($("stylize-content"), $("stylize-content-preview"), $("stylize-content-frame")));
$("stylize-style").addEventListener("change", () => {
  galleryStyle = null;
  for (const b of $("style-gallery").querySelectorAll("button")) b.setAttribute("aria-pressed", "false");
  showPicked($("stylize-style"), $("stylize-style-preview"), $("stylize-style-frame"));
});
$("stylize-strength").addEventListener("input", () => {
  $("stylize-strength-value").textContent = Number($("stylize-strength").value).toFixed(2);
});
$("stylize-method").addEventListener("change", () => {
  const gatys = $("stylize-method").value === "gatys";
  $("stylize-backbone-label").hidden = !gatys;
  $("stylize-strength-label").hidden = gatys;  // the optimisation has no strength
});

// The gallery of one style image per artist; the artists also fill classify's feedback list.
export async function loadGallery() {
  try {
    const items = await (await fetch("/gallery")).json();
    for (const item of items) {
      const button = document.createElement("button");
      button.type = "button";
      button.dataset.artist = item.artist;
      button.title = pretty(item.artist);
      button.setAttribute("aria-pressed", "false");
      button.hidden = true;  // until its image decodes
      const img = document.createElement("img");
      img.alt = `style of ${pretty(item.artist)}`;
      showImage(img, button, item.url);
      button.append(img);
      button.addEventListener("click", () => pickGallery(button, item));
      $("style-gallery").append(button);
    }
    return items.map((item) => item.artist);
  } catch (_) {
    return [];  // no gallery: uploading a style image still works
  }
}

async function pickGallery(button, item) {
  for (const b of $("style-gallery").querySelectorAll("button")) b.setAttribute("aria-pressed", "false");
  button.setAttribute("aria-pressed", "true");
  const blob = await (await fetch(item.url)).blob();
  galleryStyle = { artist: item.artist, blob };
  $("stylize-style").value = "";
  clearErrors(form);
  showImage($("stylize-style-preview"), $("stylize-style-frame"), URL.createObjectURL(blob));
}

function styleFile() {
  if (galleryStyle) return [galleryStyle.blob, `${galleryStyle.artist}.jpg`];
  const file = $("stylize-style").files[0];
  return file ? [file, file.name] : null;
}

function showResult(src, meta) {
  showImage($("stylize-result"), $("stylize-result-frame"), src);
  $("stylize-meta").textContent = meta;
  $("stylize-meta").hidden = false;
}

function hideResult() {
  showImage($("stylize-result"), $("stylize-result-frame"), null);
  $("stylize-meta").hidden = true;
  hideRating("stylize");
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const style = styleFile();
  if (!style) {
    clearErrors(form);
    showError(form, { field: "style", message: "pick a style image from the gallery or upload one" });
    return;
  }
  hideResult();
  const body = new FormData();
  body.append("content", $("stylize-content").files[0]);
  body.append("style", ...style);
  if ($("stylize-method").value === "gatys") {
    body.append("backbone", $("stylize-backbone").value);
    await runJob(body);
    return;
  }
  body.append("method", "fast");
  body.append("strength", $("stylize-strength").value);
  const response = await send("/stylize", body, form, $("stylize-submit"));
  if (!response) return;
  const version = response.headers.get("X-Artflow-Model-Version") || "?";
  const latency = response.headers.get("X-Artflow-Latency-Ms") || "?";
  showResult(await blobUrl(response), `fast · ${version} · ${latency} ms`);
  offerRating("stylize", response);
});

// A Gatys job from submit to its end; the Stylize button stays off while it runs (the service
// runs one Gatys job at a time per pod).
async function runJob(body) {
  const response = await send("/gatys/jobs", body, form, $("stylize-submit"));
  if (!response) return;
  job = await response.json();
  const started = performance.now();
  $("stylize-submit").disabled = true;
  showProgress({ state: job.state, step: 0, steps: job.steps, backbone: $("stylize-backbone").value });
  try {
    const last = await follow(job);
    await finish(job, last, Math.round((performance.now() - started) / 1000));
  } finally {
    job = null;
    $("gatys-progress").hidden = true;
    $("stylize-submit").disabled = false;
  }
}

function showProgress(p) {
  const bar = $("gatys-bar");
  bar.max = p.steps || 1;
  bar.value = p.step || 0;
  const loss = p.loss === null || p.loss === undefined ? "…" : Number(p.loss).toPrecision(4);
  $("gatys-text").textContent = `${p.backbone} step ${p.step}/${p.steps} · loss ${loss} · ${p.state}`;
  const box = $("gatys-progress");
  box.dataset.step = String(p.step || 0);
  box.dataset.state = p.state;
  $("gatys-cancel").disabled = Boolean(p.cancel_requested);
  box.hidden = false;
}

// Poll the job until it leaves queued/running; a failed poll (a pod restarting) is retried.
async function follow(current) {
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    try {
      const response = await fetch(current.progress);
      if (response.ok) {
        const p = await response.json();
        showProgress(p);
        if (!ACTIVE.includes(p.state)) return p;
      } else if (response.status === 404) {
        return { state: "lost", error: (await errorOf(response)).message };
      }
    } catch (_) { /* the next poll retries */ }
  }
}

async function finish(current, last, seconds) {
  $("stylize-tool").dataset.jobState = last.state;
  if (last.state === "done") {
    const response = await fetch(current.result);
    if (response.ok) {
      showResult(await blobUrl(response), `gatys · ${last.backbone} · ${last.steps} steps · ${seconds} s`);
    } else {
      showError(form, await errorOf(response));
    }
  } else if (last.state === "cancelled") {
    showResult(null, `Gatys run cancelled at step ${last.step} of ${last.steps}`);
  } else {
    showError(form, { message: `the Gatys run ${last.state}: ${last.error || "no reason given"}` });
  }
}

$("gatys-cancel").addEventListener("click", async () => {
  if (!job) return;
  $("gatys-cancel").disabled = true;
  clearErrors($("gatys-progress"));
  try {
    const response = await fetch(job.cancel, { method: "POST" });
    if (!response.ok) showError($("gatys-progress"), await errorOf(response));
  } catch (err) {
    showError($("gatys-progress"), { message: `the cancel did not reach the service (${err.message})` });
  }
});
