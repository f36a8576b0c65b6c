// Building the page: elements, formatting, dialogs, toasts. Untrusted text only ever becomes a
// text node here (never HTML), and nothing sets an inline style (the CSP allows neither).

const BOOLEAN_FALSE = new Set([false, null, undefined]);

/**
 * Return a new element. attrs: `class`, `for`, `type`, `hidden`, aria-*, data-*, any other plain
 * attribute (href, id, name, value, required, disabled...), and `on<event>` handlers. Children:
 * strings and numbers become text nodes, nodes are appended, arrays flattened, null/false skipped.
 */
export function h(tag, attrs = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    // No inline style (the CSP refuses it) and no property that parses its value as markup.
    if (name === "style" || name.endsWith("HTML")) {
      throw new Error(`h(): "${name}" is not allowed`);
    }
    if (name.startsWith("on") && typeof value === "function") {
      element.addEventListener(name.slice(2).toLowerCase(), value);
    } else if (name === "value" && "value" in element) {
      element.value = value ?? "";
    } else if (BOOLEAN_FALSE.has(value)) {
      continue;
    } else if (value === true) {
      element.setAttribute(name, "");
    } else {
      element.setAttribute(name, String(value));
    }
  }
  append(element, children);
  return element;
}

function append(parent, children) {
  for (const child of children) {
    if (Array.isArray(child)) {
      append(parent, child);
    } else if (child instanceof Node) {
      parent.append(child);
    } else if (!BOOLEAN_FALSE.has(child) && child !== true) {
      parent.append(document.createTextNode(String(child)));
    }
  }
}

/** Replace an element's children with the given ones. */
export function replaceChildren(element, ...children) {
  element.replaceChildren();
  append(element, children);
}

/** Return a time as the reader's local date and time, or an em dash. */
export function formatTime(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}

/** Return a cost in US dollars: cents for most, more digits for fractions of a cent. */
export function formatCost(usd) {
  const value = Number(usd || 0);
  const digits = value !== 0 && Math.abs(value) < 0.01 ? 4 : 2;
  return `$${value.toFixed(digits)}`;
}

/** Return a token count with thousands separators. */
export function formatTokens(n) {
  return Number(n || 0).toLocaleString();
}

/** Return a duration in milliseconds as seconds or minutes. */
export function formatDuration(ms) {
  if (ms === null || ms === undefined) return "—";
  const seconds = ms / 1000;
  return seconds < 60 ? `${seconds.toFixed(1)} s` : `${Math.floor(seconds / 60)} min ${Math.round(seconds % 60)} s`;
}

const STATUSES = new Set(["QUEUED", "RUNNING", "PAUSED", "COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"]);
export const TERMINAL_STATUSES = new Set(["COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"]);

/** Return a status badge; its class (colour) comes from a fixed list, its text is the status. */
export function statusBadge(status) {
  const known = STATUSES.has(status) ? ` badge-${status.toLowerCase()}` : "";
  return h("span", { class: `badge${known}` }, status || "UNKNOWN");
}

/** Return the paragraph shown where a list has nothing in it. */
export function emptyState(text) {
  return h("p", { class: "empty-state" }, text);
}

/** Return a pager: "21–40 of 345" between Previous and Next; onChange receives the new offset. */
export function pager({ offset, limit, total, onChange }) {
  const first = total === 0 ? 0 : offset + 1;
  const last = Math.min(offset + limit, total);
  return h(
    "nav",
    { class: "pager", "aria-label": "Pages" },
    h("button", { type: "button", disabled: offset <= 0, onclick: () => onChange(Math.max(0, offset - limit)) }, "Previous"),
    h("span", { class: "pager-range", "aria-live": "polite" }, `${first}–${last} of ${total}`),
    h("button", { type: "button", disabled: offset + limit >= total, onclick: () => onChange(offset + limit) }, "Next"),
  );
}

let dialogCount = 0;

/**
 * Ask before an action in a modal dialog; resolve true when confirmed, false when cancelled
 * (the Cancel button or Escape). Focus stays in the dialog and returns where it was.
 */
export function confirmAction({ title, message, confirmLabel = "Confirm", danger = false }) {
  const id = `confirm-${++dialogCount}`;
  const returnFocus = document.activeElement;
  const cancel = h("button", { type: "button", value: "cancel", autofocus: true }, "Cancel");
  const confirm = h("button", { type: "button", value: "confirm", class: danger ? "button-danger" : "button-primary" }, confirmLabel);
  const dialog = h(
    "dialog",
    { class: "confirm-dialog", "aria-labelledby": `${id}-title`, "aria-describedby": `${id}-message` },
    h("h2", { id: `${id}-title` }, title),
    h("p", { id: `${id}-message` }, message),
    h("div", { class: "dialog-actions" }, cancel, confirm),
  );
  document.body.append(dialog);
  return new Promise((resolve) => {
    let confirmed = false;
    cancel.addEventListener("click", () => dialog.close());
    confirm.addEventListener("click", () => {
      confirmed = true;
      dialog.close();
    });
    dialog.addEventListener("close", () => {
      dialog.remove();
      if (returnFocus instanceof HTMLElement && returnFocus.isConnected) returnFocus.focus();
      resolve(confirmed);
    });
    dialog.showModal();
    cancel.focus();
  });
}

const TOAST_MILLISECONDS = 6000;

/** Show a short message in the toast area (announced politely); kind: "info", "success" or "error". */
export function toast(message, kind = "info") {
  const area = document.getElementById("toasts");
  if (!area) return;
  const item = h("div", { class: `toast toast-${kind}` }, message);
  area.append(item);
  setTimeout(() => item.remove(), TOAST_MILLISECONDS);
}

/** Return a value as indented JSON text (for proposed actions and payloads), or the string itself. */
export function jsonText(value) {
  return typeof value === "string" ? value : JSON.stringify(value, null, 2);
}
