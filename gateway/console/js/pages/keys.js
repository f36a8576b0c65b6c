// #/keys: the caller's API keys (create, shown once; revoke) and their usage and cost per day.

import { api } from "../api.js";
import { confirmAction, emptyState, formatCost, formatTime, formatTokens, h, replaceChildren, toast } from "../dom.js";
import { dataTable, errorText, loadError, onSubmit } from "../page-parts.js";
import { MEASURES, dayChart, statsDays, usageTable } from "../usage-chart.js";

const KEYS_PATH = "/api/v1/auth/api-keys";
const SCOPES = [
  "tasks:read",
  "tasks:write",
  "sessions:read",
  "sessions:write",
  "approvals:read",
  "approvals:decide",
  "schedules:read",
  "schedules:write",
  "keys:manage",
  "usage:read",
];
const USAGE_WINDOWS = [7, 14, 30];

const keyPath = (id) => `${KEYS_PATH}/${encodeURIComponent(id)}`;

/** Return the box that shows a new key once, with a copy button and a warning. */
function newKeyNotice(created, onDismiss) {
  const value = h("input", {
    id: "new-key-value",
    type: "text",
    readonly: true,
    value: created.api_key,
    spellcheck: "false",
    autocomplete: "off",
  });
  const copied = h("span", { role: "status", "aria-live": "polite" });
  const copy = h(
    "button",
    {
      type: "button",
      class: "button-primary",
      onclick: async () => {
        try {
          await navigator.clipboard.writeText(created.api_key);
          copied.textContent = "Copied.";
        } catch {
          value.select();
          copied.textContent = "Select the key and copy it yourself (the browser refused).";
        }
      },
    },
    "Copy key",
  );
  const notice = h(
    "section",
    { class: "card callout", "aria-labelledby": "new-key-title" },
    h("h2", { id: "new-key-title" }, `New key: ${created.name}`),
    h("p", { role: "alert" }, h("strong", {}, "Copy this key now. It is shown only once: taskgate keeps only its hash.")),
    h("div", { class: "field" }, h("label", { for: "new-key-value" }, "API key"), value),
    h("div", { class: "task-controls" }, copy, h("button", { type: "button", onclick: onDismiss }, "Done"), copied),
  );
  return notice;
}

function createForm(onCreated) {
  const name = h("input", { id: "key-name", name: "name", type: "text", required: true, maxlength: "100", autocomplete: "off" });
  const expires = h("input", { id: "key-expires", name: "expires_at", type: "date", "aria-describedby": "key-expires-help" });
  const scopes = h(
    "select",
    { id: "key-scopes", name: "scopes", multiple: true, size: "5", "aria-describedby": "key-scopes-help" },
    SCOPES.map((scope) => h("option", { value: scope }, scope)),
  );
  const error = h("p", { class: "form-error", role: "alert", hidden: true });
  const submit = h("button", { type: "submit", class: "button-primary" }, "Create key");
  const form = h(
    "form",
    { class: "card", "aria-labelledby": "key-create-title" },
    h("h2", { id: "key-create-title" }, "New API key"),
    h("div", { class: "field" }, h("label", { for: "key-name" }, "Key name"), name),
    h(
      "div",
      { class: "field" },
      h("label", { for: "key-expires" }, "Expires on (optional)"),
      expires,
      h("p", { id: "key-expires-help", class: "hint" }, "The key stops working at the end of that day (UTC)."),
    ),
    h(
      "div",
      { class: "field" },
      h("label", { for: "key-scopes" }, "Scopes (optional)"),
      scopes,
      h("p", { id: "key-scopes-help", class: "hint" }, "None selected: the key has every scope."),
    ),
    error,
    submit,
  );
  onSubmit(form, submit, error, async () => {
    const body = { name: name.value.trim() };
    const chosen = [...scopes.selectedOptions].map((option) => option.value);
    if (chosen.length) body.scopes = chosen;
    if (expires.value) body.expires_at = `${expires.value}T23:59:59Z`;
    const created = await api("POST", KEYS_PATH, { body });
    form.reset();
    onCreated(created);
  });
  return form;
}

function keyRow(key, onRevoke) {
  const expired = key.expires_at && new Date(key.expires_at) <= new Date();
  const state = !key.is_active ? "Revoked" : expired ? "Expired" : "Active";
  return h(
    "tr",
    { "data-id": key.id, "data-state": state.toLowerCase() },
    h("td", {}, key.name),
    h("td", {}, h("code", {}, `${key.key_prefix}…`)),
    h("td", {}, h("span", { class: `badge badge-${state === "Active" ? "completed" : "cancelled"}` }, state)),
    h("td", {}, key.scopes && key.scopes.length ? key.scopes.join(", ") : "All"),
    h("td", {}, formatTime(key.created_at)),
    h("td", {}, formatTime(key.last_used_at)),
    h("td", {}, formatTime(key.expires_at)),
    h(
      "td",
      {},
      state === "Active"
        ? h("button", { type: "button", class: "button-danger", "aria-label": `Revoke ${key.name}`, onclick: () => onRevoke(key) }, "Revoke")
        : "—",
    ),
  );
}

function keysSection() {
  const notice = h("div", {});
  const listArea = h("div", { class: "list-area", "aria-busy": "true" });
  let active = true;

  async function load() {
    listArea.setAttribute("aria-busy", "true");
    try {
      const body = await api("GET", KEYS_PATH);
      if (!active) return;
      replaceChildren(
        listArea,
        body.keys.length
          ? dataTable(
              "Your API keys, newest first",
              ["Name", "Prefix", "State", "Scopes", "Created", "Last used", "Expires", "Actions"],
              h("tbody", {}, body.keys.map((key) => keyRow(key, revoke))),
            )
          : emptyState("No API keys."),
      );
    } catch (ex) {
      if (active) replaceChildren(listArea, loadError(ex));
    } finally {
      listArea.setAttribute("aria-busy", "false");
    }
  }

  async function revoke(key) {
    const confirmed = await confirmAction({
      title: `Revoke the key ${key.name}?`,
      message: "Programs using it are refused from now on. A revoked key cannot be restored.",
      confirmLabel: "Revoke key",
      danger: true,
    });
    if (!confirmed) return;
    try {
      await api("DELETE", keyPath(key.id));
      toast(`Key ${key.name} revoked.`, "success");
      await load();
    } catch (ex) {
      toast(errorText(ex), "error");
    }
  }

  const section = h(
    "section",
    { "aria-labelledby": "keys-title" },
    h("h2", { id: "keys-title" }, "API keys"),
    createForm((created) => {
      const dismiss = () => replaceChildren(notice);
      replaceChildren(notice, newKeyNotice(created, dismiss));
      notice.querySelector("input")?.focus();
      load();
    }),
    notice,
    listArea,
  );
  load();
  return { section, stop: () => (active = false) };
}

function usageSection() {
  const windowSelect = h(
    "select",
    { id: "usage-days", name: "days" },
    USAGE_WINDOWS.map((days) => h("option", { value: String(days) }, `Last ${days} days`)),
  );
  windowSelect.value = "14";
  const totals = h("div", { "aria-live": "polite" });
  const chartArea = h("div", { class: "usage-chart-area", "aria-busy": "true" });
  let loadCount = 0;

  async function load() {
    const count = ++loadCount;
    const days = Number(windowSelect.value);
    chartArea.setAttribute("aria-busy", "true");
    try {
      const stats = await api("GET", "/api/v1/stats", { query: { days } });
      if (count !== loadCount) return;
      const perDay = statsDays(stats.by_day, days);
      replaceChildren(
        totals,
        h(
          "dl",
          { class: "details" },
          h("dt", {}, "Tasks"),
          h("dd", {}, String(stats.tasks.total)),
          h("dt", {}, "Tokens"),
          h("dd", {}, formatTokens(stats.tokens.total)),
          h("dt", {}, "Cost"),
          h("dd", {}, formatCost(stats.cost_usd)),
        ),
      );
      replaceChildren(
        chartArea,
        h("h3", {}, `Cost per day (UTC), last ${days} days`),
        dayChart(perDay, MEASURES.cost, chartArea.clientWidth),
        h("h3", {}, `Tokens per day (UTC), last ${days} days`),
        dayChart(perDay, MEASURES.tokens, chartArea.clientWidth),
        usageTable(perDay),
      );
    } catch (ex) {
      if (count === loadCount) replaceChildren(chartArea, loadError(ex));
    } finally {
      if (count === loadCount) chartArea.setAttribute("aria-busy", "false");
    }
  }
  windowSelect.addEventListener("change", load);
  load();
  return {
    section: h(
      "section",
      { "aria-labelledby": "usage-title" },
      h("h2", { id: "usage-title" }, "Usage and cost"),
      h("div", { class: "filters" }, h("div", { class: "field" }, h("label", { for: "usage-days" }, "Period"), windowSelect)),
      totals,
      chartArea,
    ),
    stop: () => {
      loadCount += 1;
    },
  };
}

export default {
  title: "Keys & usage",
  render(root) {
    const keys = keysSection();
    const usage = usageSection();
    root.append(h("h1", {}, "Keys & usage"), keys.section, usage.section);
    return () => {
      keys.stop();
      usage.stop();
    };
  },
};
