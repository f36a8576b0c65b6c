// Parts the pages build alike: an API error as a readable line, a form's submit handling, and a
// data table that scrolls on its own at phone width rather than widen the page.

import { ApiError } from "./api.js";
import { h } from "./dom.js";

/** Return an error's message, with the fields its details name (a 400's validation failures). */
export function errorText(ex) {
  if (ex instanceof ApiError && ex.details.length) {
    return `${ex.message} (${ex.details.map((detail) => `${detail.field}: ${detail.message}`).join("; ")})`;
  }
  return ex.message || "The request failed.";
}

/** Return a paragraph announcing an error that keeps a view from showing. */
export function loadError(ex) {
  return h("p", { class: "form-error", role: "alert" }, errorText(ex));
}

/**
 * Run action() when the form is submitted: its button disabled meanwhile, a failure shown (and
 * announced) in the form's error element.
 */
export function onSubmit(form, submit, error, action) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    submit.disabled = true;
    try {
      await action();
    } catch (ex) {
      error.textContent = errorText(ex);
      error.hidden = false;
    } finally {
      submit.disabled = false;
    }
  });
}

/** Return a table (caption read by screen readers, column headers, body) in a scrolling box. */
export function dataTable(caption, columns, tbody) {
  return h(
    "div",
    { class: "table-scroll", tabindex: "0", role: "region", "aria-label": caption },
    h(
      "table",
      { class: "data-table" },
      h("caption", { class: "visually-hidden" }, caption),
      h("thead", {}, h("tr", {}, columns.map((name) => h("th", { scope: "col" }, name)))),
      tbody,
    ),
  );
}
