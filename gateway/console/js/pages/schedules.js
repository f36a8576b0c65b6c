// #/schedules: the caller's schedules and a form to create one with a cron helper;
// #/schedules/<id>: one schedule, with pause, resume, trigger now, delete, and its runs.

import { api } from "../api.js";
import { CronError, formatInZone, nextRuns, parseCron, timeZones } from "../cron.js";
import {
  confirmAction,
  emptyState,
  formatCost,
  formatDuration,
  formatTime,
  formatTokens,
  h,
  pager,
  replaceChildren,
  statusBadge,
  toast,
} from "../dom.js";
import { dataTable, errorText, loadError, onSubmit } from "../page-parts.js";

const PAGE_SIZE = 20;
const PREVIEW_RUNS = 5;
const PRESETS = [
  { label: "Every weekday at 09:00", cron: "0 9 * * 1-5" },
  { label: "Every day at 09:00", cron: "0 9 * * *" },
  { label: "Every Monday at 09:00", cron: "0 9 * * 1" },
  { label: "On the first of each month at 09:00", cron: "0 9 1 * *" },
  { label: "Every hour, on the hour", cron: "0 * * * *" },
  { label: "Every 15 minutes", cron: "*/15 * * * *" },
];
const CUSTOM = "custom";

const schedulePath = (id) => `/api/v1/schedules/${encodeURIComponent(id)}`;
const scheduleLink = (id) => `#/schedules/${encodeURIComponent(id)}`;



/** Return the schedule status as a badge: ACTIVE or PAUSED. */
function scheduleBadge(status) {
  return h("span", { class: `badge badge-${status === "PAUSED" ? "paused" : "running"}` }, status);
}

/** Return the browser's own zone when it knows it, else UTC. */
function defaultZone(zones) {
  const own = Intl.DateTimeFormat().resolvedOptions().timeZone;
  return zones.includes(own) ? own : "UTC";
}

/** Fill `list` with the next runs of `expression` in `zone`, or say why there are none. */
function showNextRuns(list, note, expression, zone) {
  try {
    const runs = nextRuns(parseCron(expression), zone, new Date(), PREVIEW_RUNS);
    note.textContent = runs.length ? `Next runs in ${zone}:` : "This expression matches no date: it would never run.";
    replaceChildren(
      list,
      runs.map((run) => h("li", {}, h("time", { datetime: run.toISOString() }, formatInZone(run, zone)))),
    );
  } catch (ex) {
    if (!(ex instanceof CronError)) throw ex;
    note.textContent = ex.message;
    replaceChildren(list);
  }
}

/** Return a region listing the next runs; update(expression, zone) recomputes it. */
function nextRunsRegion(id) {
  const note = h("p", { id: `${id}-note` });
  const list = h("ol", { class: "next-runs", "aria-labelledby": `${id}-note` });
  const region = h("div", { class: "next-runs-region", id, role: "status", "aria-live": "polite" }, note, list);
  return { region, update: (expression, zone) => showNextRuns(list, note, expression, zone) };
}

function createForm() {
  const zones = timeZones();
  const name = h("input", { id: "schedule-name", name: "name", type: "text", required: true, maxlength: "200", autocomplete: "off" });
  const query = h("textarea", { id: "schedule-query", name: "task_query", rows: "3", required: true, maxlength: "10000" });
  const preset = h(
    "select",
    { id: "schedule-preset", name: "preset" },
    PRESETS.map((choice) => h("option", { value: choice.cron }, `${choice.label} (${choice.cron})`)),
    h("option", { value: CUSTOM }, "Custom expression"),
  );
  const cron = h("input", {
    id: "schedule-cron",
    name: "cron_expression",
    type: "text",
    required: true,
    value: PRESETS[0].cron,
    autocomplete: "off",
    spellcheck: "false",
    "aria-describedby": "schedule-cron-help",
  });
  const zone = h(
    "select",
    { id: "schedule-timezone", name: "timezone" },
    zones.map((value) => h("option", { value }, value)),
  );
  zone.value = defaultZone(zones);
  const preview = nextRunsRegion("schedule-next-runs");
  const error = h("p", { class: "form-error", role: "alert", hidden: true });
  const submit = h("button", { type: "submit", class: "button-primary" }, "Create schedule");
  const refresh = () => preview.update(cron.value, zone.value);

  preset.addEventListener("change", () => {
    if (preset.value !== CUSTOM) cron.value = preset.value;
    refresh();
  });
  cron.addEventListener("input", () => {
    const match = PRESETS.find((choice) => choice.cron === cron.value.trim());
    preset.value = match ? match.cron : CUSTOM;
    refresh();
  });
  zone.addEventListener("change", refresh);

  const form = h(
    "form",
    { class: "card", "aria-labelledby": "schedule-create-title" },
    h("h2", { id: "schedule-create-title" }, "New schedule"),
    h("div", { class: "field" }, h("label", { for: "schedule-name" }, "Name"), name),
    h("div", { class: "field" }, h("label", { for: "schedule-query" }, "Task query"), query),
    h("div", { class: "field" }, h("label", { for: "schedule-preset" }, "When"), preset),
    h(
      "div",
      { class: "field" },
      h("label", { for: "schedule-cron" }, "Cron expression"),
      cron,
      h(
        "p",
        { id: "schedule-cron-help", class: "hint" },
        "Five fields: minute, hour, day of month, month, day of week (a sixth, seconds, is optional).",
      ),
    ),
    h("div", { class: "field" }, h("label", { for: "schedule-timezone" }, "Time zone"), zone),
    preview.region,
    error,
    submit,
  );
  onSubmit(form, submit, error, async () => {
    const body = await api("POST", "/api/v1/schedules", {
      body: { name: name.value.trim(), task_query: query.value, cron_expression: cron.value.trim(), timezone: zone.value },
    });
    toast("Schedule created.", "success");
    location.hash = scheduleLink(body.schedule_id);
  });
  refresh();
  return form;
}

function scheduleRow(schedule) {
  return h(
    "tr",
    { "data-id": schedule.schedule_id },
    h("td", {}, h("a", { href: scheduleLink(schedule.schedule_id) }, schedule.name || schedule.schedule_id)),
    h("td", {}, h("code", {}, schedule.cron_expression)),
    h("td", {}, schedule.timezone),
    h("td", {}, scheduleBadge(schedule.status)),
    h("td", {}, formatTime(schedule.next_run_at)),
    h("td", { class: "number" }, String(schedule.total_runs ?? 0)),
  );
}

function renderList(root) {
  const view = { page: 1, status: "ALL" };
  const listArea = h("div", { class: "list-area", "aria-busy": "true" });
  let loadCount = 0;
  const statusSelect = h(
    "select",
    { id: "schedules-status", name: "status" },
    [
      ["ALL", "All"],
      ["ACTIVE", "Active"],
      ["PAUSED", "Paused"],
    ].map(([value, label]) => h("option", { value }, label)),
  );
  statusSelect.addEventListener("change", () => {
    view.status = statusSelect.value;
    view.page = 1;
    load();
  });

  async function load() {
    const count = ++loadCount;
    listArea.setAttribute("aria-busy", "true");
    try {
      const body = await api("GET", "/api/v1/schedules", { query: { page: view.page, page_size: PAGE_SIZE, status: view.status } });
      if (count !== loadCount) return;
      const total = body.total_count;
      replaceChildren(
        listArea,
        body.schedules.length
          ? dataTable(
              "Your schedules, newest first",
              ["Name", "Cron", "Time zone", "Status", "Next run", "Runs"],
              h("tbody", {}, body.schedules.map(scheduleRow)),
            )
          : emptyState("No schedules here."),
        total > PAGE_SIZE
          ? pager({
              offset: (view.page - 1) * PAGE_SIZE,
              limit: PAGE_SIZE,
              total,
              onChange: (offset) => {
                view.page = Math.floor(offset / PAGE_SIZE) + 1;
                load();
              },
            })
          : null,
      );
    } catch (ex) {
      if (count === loadCount) replaceChildren(listArea, loadError(ex));
    } finally {
      if (count === loadCount) listArea.setAttribute("aria-busy", "false");
    }
  }

  root.append(
    h("h1", {}, "Schedules"),
    createForm(),
    h(
      "section",
      { "aria-labelledby": "schedules-list-title" },
      h("h2", { id: "schedules-list-title" }, "Your schedules"),
      h("div", { class: "filters" }, h("div", { class: "field" }, h("label", { for: "schedules-status" }, "Show"), statusSelect)),
      listArea,
    ),
  );
  load();
  return () => {
    loadCount += 1;
  };
}

function runRow(run) {
  return h(
    "tr",
    { "data-id": run.workflow_id },
    h("td", {}, h("a", { href: `#/tasks/${encodeURIComponent(run.workflow_id)}` }, formatTime(run.triggered_at || run.started_at))),
    h("td", {}, statusBadge(run.status)),
    h("td", { class: "number" }, formatTokens(run.total_tokens)),
    h("td", { class: "number" }, formatCost(run.total_cost_usd)),
    h("td", {}, formatDuration(run.duration_ms)),
  );
}

function renderSchedule(root, id) {
  const heading = h("h1", {}, "Schedule");
  const details = h("div", { "aria-busy": "true" });
  const runsArea = h("div", { class: "list-area" });
  const view = { page: 1 };
  let active = true;

  async function loadRuns() {
    try {
      const body = await api("GET", `${schedulePath(id)}/runs`, { query: { page: view.page, page_size: PAGE_SIZE } });
      if (!active) return;
      replaceChildren(
        runsArea,
        body.runs.length
          ? dataTable("Runs of this schedule, newest first", ["Triggered", "Status", "Tokens", "Cost", "Duration"], h("tbody", {}, body.runs.map(runRow)))
          : emptyState("No runs yet."),
        body.total_count > PAGE_SIZE
          ? pager({
              offset: (view.page - 1) * PAGE_SIZE,
              limit: PAGE_SIZE,
              total: body.total_count,
              onChange: (offset) => {
                view.page = Math.floor(offset / PAGE_SIZE) + 1;
                loadRuns();
              },
            })
          : null,
      );
    } catch (ex) {
      if (active) replaceChildren(runsArea, loadError(ex));
    }
  }

  async function act(button, method, path, message) {
    button.disabled = true;
    try {
      await api(method, path, { body: {} });
      toast(message, "success");
      await load();
    } catch (ex) {
      toast(errorText(ex), "error");
      button.disabled = false;
    }
  }

  async function remove() {
    const confirmed = await confirmAction({
      title: "Delete this schedule?",
      message: "It will not run again. The tasks it already started stay.",
      confirmLabel: "Delete schedule",
      danger: true,
    });
    if (!confirmed) return;
    try {
      await api("DELETE", schedulePath(id));
      toast("Schedule deleted.", "success");
      location.hash = "#/schedules";
    } catch (ex) {
      toast(errorText(ex), "error");
    }
  }

  function actions(schedule) {
    const paused = schedule.status === "PAUSED";
    const toggle = h(
      "button",
      {
        type: "button",
        onclick: () =>
          paused
            ? act(toggle, "POST", `${schedulePath(id)}/resume`, "Schedule resumed.")
            : act(toggle, "POST", `${schedulePath(id)}/pause`, "Schedule paused."),
      },
      paused ? "Resume" : "Pause",
    );
    const trigger = h(
      "button",
      { type: "button", onclick: () => act(trigger, "POST", `${schedulePath(id)}/trigger`, "Run started.") },
      "Trigger now",
    );
    return h(
      "div",
      { class: "task-controls" },
      toggle,
      trigger,
      h("button", { type: "button", class: "button-danger", onclick: remove }, "Delete schedule"),
    );
  }

  async function load() {
    try {
      const schedule = await api("GET", schedulePath(id));
      if (!active) return;
      heading.textContent = schedule.name || schedule.schedule_id;
      const preview = nextRunsRegion("schedule-detail-next-runs");
      replaceChildren(
        details,
        h(
          "dl",
          { class: "details" },
          h("dt", {}, "Status"),
          h("dd", { id: "schedule-status" }, scheduleBadge(schedule.status), schedule.pause_reason ? ` ${schedule.pause_reason}` : ""),
          h("dt", {}, "Cron expression"),
          h("dd", {}, h("code", {}, schedule.cron_expression)),
          h("dt", {}, "Time zone"),
          h("dd", {}, schedule.timezone),
          h("dt", {}, "Task query"),
          h("dd", {}, schedule.task_query),
          h("dt", {}, "Next run"),
          h("dd", {}, schedule.next_run_at ? formatInZone(new Date(schedule.next_run_at), schedule.timezone) : "None while paused"),
          h("dt", {}, "Last run"),
          h("dd", {}, formatTime(schedule.last_run_at)),
          h("dt", {}, "Runs"),
          h("dd", {}, `${schedule.total_runs ?? 0} (${schedule.successful_runs ?? 0} succeeded, ${schedule.failed_runs ?? 0} failed)`),
        ),
        actions(schedule),
        schedule.status === "PAUSED" ? null : h("section", { "aria-labelledby": "schedule-detail-next-runs-note" }, preview.region),
      );
      if (schedule.status !== "PAUSED") preview.update(schedule.cron_expression, schedule.timezone);
      details.setAttribute("aria-busy", "false");
      loadRuns();
    } catch (ex) {
      if (!active) return;
      details.setAttribute("aria-busy", "false");
      replaceChildren(details, loadError(ex));
    }
  }

  root.append(
    h("p", {}, h("a", { href: "#/schedules" }, "All schedules")),
    heading,
    details,
    h("section", { "aria-labelledby": "schedule-runs-title" }, h("h2", { id: "schedule-runs-title" }, "Runs"), runsArea),
  );
  load();
  return () => {
    active = false;
  };
}

export default {
  title: "Schedules",
  render(root, params) {
    return params.id ? renderSchedule(root, params.id) : renderList(root);
  },
};
