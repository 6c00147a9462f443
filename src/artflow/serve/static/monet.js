// Photo to Monet: one synchronous /monet call; the result's frame appears with the result.
import { $, blobUrl, send, showImage, showPicked } from "./common.js";
import { hideRating, offerRating } from "./rating.js";

$("monet-file").addEventListener("change", () => {
  showPicked($("monet-file"), $("monet-preview"), $("monet-preview-frame"));
  hideResult();
});

function hideResult() {
  showImage($("monet-result"), $("monet-result-frame"), null);
  $("monet-meta").hidden = true;
  hideRating("monet");
}

$("monet-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  hideResult();
  const form = new FormData();
  form.append("photo", $("monet-file").files[0]);
  const response = await send("/monet", form, $("monet-form"), $("monet-submit"));
  if (!response) return;
  const version = response.headers.get("X-Artflow-Model-Version") || "?";
  const latency = response.headers.get("X-Artflow-Latency-Ms") || "?";
  showImage($("monet-result"), $("monet-result-frame"), await blobUrl(response));
  $("monet-meta").textContent = `model v${version} · ${latency} ms`;
  $("monet-meta").hidden = false;
  offerRating("monet", response);
});
