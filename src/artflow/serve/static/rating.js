// "How good is it?" 1..5 under a stylization or a Monet painting: the answer's id comes in
// the X-Artflow-Answer-Id header; POST /ratings stores one rating per answer (any pod).
import { $, clearErrors, send } from "./common.js";

const ANSWER_HEADER = "X-Artflow-Answer-Id";

// Offer the rating of `response`'s answer in the form `prefix`-rating (hidden without an id).
export function offerRating(prefix, response) {
  const form = $(`${prefix}-rating`);
  const id = response ? response.headers.get(ANSWER_HEADER) : null;
  clearErrors(form);
  $(`${prefix}-rating-status`).hidden = true;
  delete form.dataset.sent;
  form.dataset.answerId = id || "";
  for (const button of form.querySelectorAll("button[data-rating]")) button.disabled = false;
  form.hidden = !id;
}

export function hideRating(prefix) {
  $(`${prefix}-rating`).hidden = true;
}

async function rate(prefix, rating) {
  const form = $(`${prefix}-rating`);
  const buttons = [...form.querySelectorAll("button[data-rating]")];
  const body = JSON.stringify({ answer_id: form.dataset.answerId, rating });
  const headers = { "Content-Type": "application/json" };
  const response = await send("/ratings", body, form, null, { headers });
  form.dataset.sent = String(Boolean(response));
  if (!response) return;
  for (const b of buttons) b.disabled = true;  // one rating per answer
  $(`${prefix}-rating-status`).textContent = `thanks: ${rating} of 5 recorded`;
  $(`${prefix}-rating-status`).hidden = false;
}

for (const prefix of ["stylize", "monet"]) {
  for (const button of $(`${prefix}-rating`).querySelectorAll("button[data-rating]")) {
    button.addEventListener("click", () => rate(prefix, Number(button.dataset.rating)));
  }
}
