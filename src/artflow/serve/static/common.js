// Helpers the three tools share: requests, error messages placed beside their control, and
// images that appear only once they have something to show.

export const $ = (id) => document.getElementById(id);

export const pretty = (artist) => artist.replaceAll("_", " ");

// The service answers every refusal with {"error": message, "code": ..., "field": the input
// at fault, "hint": what to do}; the last two only sometimes.
export async function errorOf(response) {
  try {
    const body = await response.json();
    return {
      message: body.error || JSON.stringify(body),
      code: body.code || "",
      field: body.field || "",
      hint: body.hint || "",
      status: response.status,
    };
  } catch (_) {
    return { message: response.statusText || "the service answered an error", status: response.status };
  }
}

// The slot for `field`'s errors: a span right after the control's label, made on first use;
// without a (known) field, the form's own slot beside its submit button.
function slotFor(form, field) {
  const control = field ? form.querySelector(`[name="${CSS.escape(field)}"]`) : null;
  if (!control) return form.querySelector(".error[data-for='form']");
  let slot = form.querySelector(`.error[data-for="${CSS.escape(field)}"]`);
  if (!slot) {
    slot = document.createElement("span");
    slot.className = "error";
    slot.dataset.for = field;
    slot.setAttribute("role", "alert");
    slot.hidden = true;
    (control.closest("label") || control).after(slot);
  }
  return slot;
}

export function clearErrors(form) {
  for (const slot of form.querySelectorAll(".error")) {
    slot.textContent = "";
    slot.hidden = true;
  }
}

// Show a failure beside the control it is about: the service's message, then its status and
// code in small print (a person reads the first, a bug report quotes the second).
export function showError(form, failure) {
  const slot = slotFor(form, failure.field);
  slot.textContent = failure.hint ? `${failure.message} — ${failure.hint}` : failure.message;
  if (failure.status) {
    const small = document.createElement("small");
    small.textContent = ` (${failure.status}${failure.code ? " " + failure.code : ""})`;
    slot.append(small);
  }
  slot.dataset.status = String(failure.status || "");
  slot.dataset.code = failure.code || "";
  slot.hidden = false;
}

// POST `body` to `path`; the Response when it is 2xx, else null with the error shown in `form`.
// `button` is disabled meanwhile, so a second click cannot send the same request again.
export async function send(path, body, form, button, init = {}) {
  clearErrors(form);
  if (button) button.disabled = true;
  try {
    const response = await fetch(path, { method: "POST", body, ...init });
    if (response.ok) return response;
    showError(form, await errorOf(response));
  } catch (err) {
    showError(form, { message: `the service could not be reached (${err.message})` });
  } finally {
    if (button) button.disabled = false;
  }
  return null;
}

// Put `src` in `img` and reveal `frame` (the img's figure or box) only once it has decoded:
// an image that does not decode stays hidden instead of showing a broken frame or alt text.
export function showImage(img, frame, src) {
  frame.hidden = true;
  if (img.dataset.objectUrl) URL.revokeObjectURL(img.dataset.objectUrl);
  delete img.dataset.objectUrl;
  if (!src) { img.removeAttribute("src"); return; }
  if (src.startsWith("blob:")) img.dataset.objectUrl = src;
  img.onload = () => { frame.hidden = false; };
  img.onerror = () => { frame.hidden = true; };
  img.src = src;
}

// The file picked in `input`, shown in `img` (inside `frame`); nothing when none is picked.
export function showPicked(input, img, frame) {
  const file = input.files[0];
  showImage(img, frame, file ? URL.createObjectURL(file) : null);
}

export const blobUrl = async (response) => URL.createObjectURL(await response.blob());
