// artflow web page: three tools over the service's own endpoints; no external resources.
// Each tool is a module (classify.js, stylize.js, monet.js; shared helpers in common.js,
// the rating of a stylization or a Monet painting in rating.js).
import { $ } from "./common.js";
import { setArtists } from "./classify.js";
import { loadGallery } from "./stylize.js";
import "./monet.js";

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
loadGallery().then(setArtists);
