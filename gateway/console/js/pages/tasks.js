// #/tasks: the caller's tasks, newest first, kept current by the live feed; and a form to submit one.

import { api } from "../api.js";
import { emptyState, formatCost, formatTime, formatTokens, h, pager, replaceChildren, statusBadge, toast } from "../dom.js";
import { onFeedLiveAgain, subscribeFeed } from "../feed.js";
import { onSubmit } from "../page-parts.js";

const PAGE_SIZE = 20;
const STATUS_CHOICES = ["QUEUED", "RUNNING", "PAUSED", "COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"];
const LIVE_STATUSES = new Set(["QUEUED", "RUNNING", "PAUSED"]);

/** Return a list item or a task (either shape of the API) as what a row shows. */
function rowModel(task) {
  const usage = task.total_token_usage || {};
  return {
    taskId: task.task_id,
    query: task.query || "",
    status: task.status,
    progress: typeof task.progress === "number" ? task.progress : task.status === "COMPLETED" ? 1 : null,
    tokens: usage.total_tokens ?? task.usage?.total_tokens ?? 0,
    cost: usage.cost_usd ?? task.usage?.estimated_cost ?? 0,
    createdAt: task.created_at,
    sessionId: task.session_id,
  };
}

/** A table row whose status, progress and usage cells can be updated in place. */
class TaskRow {
  constructor(model) {
    this.status = h("td", {});
    this.progress = h("td", {});
    this.tokens = h("td", { class: "number" });
    this.cost = h("td", { class: "number" });
    this.element = h(
      "tr",
      { "data-id": model.taskId },
      h("td", { class: "query-cell" }, h("a", { href: `#/tasks/${encodeURIComponent(model.taskId)}` }, model.query || model.taskId)),
      this.status,
      this.progress,
      this.tokens,
      this.cost,
      h("td", {}, formatTime(model.createdAt)),
    );
    this.model = model;
    this.update(model);
  }

  update(changes) {
    Object.assign(this.model, Object.fromEntries(Object.entries(changes).filter(([, v]) => v !== undefined)));
    const { status, progress, tokens, cost } = this.model;
    this.element.dataset.status = status;
    replaceChildren(this.status, statusBadge(status));
    if (LIVE_STATUSES.has(status) || status === "COMPLETED") {
      const value = status === "COMPLETED" ? 1 : progress || 0;
      replaceChildren(
        this.progress,
        h("progress", { max: "1", value: String(value), "aria-label": "Progress" }),
        h("span", { class: "progress-text" }, `${Math.round(value * 100)}%`),
      );
    } else {
      replaceChildren(this.progress, "—");
    }
    this.tokens.textContent = formatTokens(tokens);
    this.cost.textContent = formatCost(cost);
  }
}

function submitForm() {
  const query = h("textarea", { id: "task-query", name: "query", rows: "3", required: true, maxlength: "10000" });
  const session = h("input", { id: "task-session", name: "session_id", type: "text", autocomplete: "off" });
  const error = h("p", { class: "form-error", role: "alert", hidden: true });
  const submit = h("button", { type: "submit", class: "button-primary" }, "Submit task");
  const form = h(
    "form",
    { class: "card", "aria-labelledby": "submit-task-title" },
    h("h2", { id: "submit-task-title" }, "Submit a task"),
    h("div", { class: "field" }, h("label", { for: "task-query" }, "Query"), query),
    h("div", { class: "field" }, h("label", { for: "task-session" }, "Session id (optional)"), session),
    error,
    submit,
  );
  onSubmit(form, submit, error, async () => {
    const body = { query: query.value };
    if (session.value.trim()) body.session_id = session.value.trim();
    const task = await api("POST", "/api/v1/tasks", { body });
    toast("Task submitted.", "success");
    location.hash = `#/tasks/${encodeURIComponent(task.task_id)}`;
  });
  return form;
}

export default {
  title: "Tasks",
  render(root) {
    const view = { offset: 0, status: "", sessionId: "", total: 0 };
    const rows = new Map();
    const tbody = h("tbody", {});
    const listArea = h("div", { class: "list-area" });
    const pagerArea = h("div", {});
    let loadCount = 0;

    const statusSelect = h(
      "select",
      { id: "filter-status", name: "status" },
      h("option", { value: "" }, "All"),
      STATUS_CHOICES.map((status) => h("option", { value: status }, status)),
    );
    const sessionFilter = h("input", { id: "filter-session", name: "session_id", type: "text", autocomplete: "off" });
    const filters = h(
      "form",
      { class: "filters", "aria-label": "Filter tasks" },
      h("div", { class: "field" }, h("label", { for: "filter-status" }, "Status"), statusSelect),
      h("div", { class: "field" }, h("label", { for: "filter-session" }, "Session id"), sessionFilter),
      h("button", { type: "submit" }, "Apply filters"),
    );
    const applyFilters = (event) => {
      event?.preventDefault();
      view.status = statusSelect.value;
      view.sessionId = sessionFilter.value.trim();
      view.offset = 0;
      load();
    };
    filters.addEventListener("submit", applyFilters);
    statusSelect.addEventListener("change", applyFilters);

    const table = h(
      "table",
      { class: "data-table" },
      h("caption", { class: "visually-hidden" }, "Your tasks, newest first"),
      h(
        "thead",
        {},
        h("tr", {}, ["Query", "Status", "Progress", "Tokens", "Cost", "Created"].map((name) => h("th", { scope: "col" }, name))),
      ),
      tbody,
    );

    function showPager() {
      if (view.total === 0) {
        pagerArea.replaceChildren();
        return;
      }
      replaceChildren(
        pagerArea,
        pager({
          offset: view.offset,
          limit: PAGE_SIZE,
          total: view.total,
          onChange: (offset) => {
            view.offset = offset;
            load();
          },
        }),
      );
    }

    async function load() {
      const count = ++loadCount;
      try {
        const body = await api("GET", "/api/v1/tasks", {
          query: { limit: PAGE_SIZE, offset: view.offset, status: view.status, session_id: view.sessionId },
        });
        if (count !== loadCount) return;
        view.total = body.total_count;
        rows.clear();
        tbody.replaceChildren();
        for (const task of body.tasks) {
          const row = new TaskRow(rowModel(task));
          rows.set(row.model.taskId, row);
          tbody.append(row.element);
        }
        const filtered = view.status || view.sessionId;
        const empty = emptyState(filtered ? "No tasks match these filters." : "No tasks yet.");
        replaceChildren(listArea, body.tasks.length ? h("div", { class: "table-scroll" }, table) : empty);
        showPager();
      } catch (ex) {
        if (count === loadCount) replaceChildren(listArea, h("p", { class: "form-error", role: "alert" }, ex.message));
      }
    }

    function matchesFilters(model) {
      return (!view.status || model.status === view.status) && (!view.sessionId || model.sessionId === view.sessionId);
    }

    async function addNewTask(taskId) {
      if (view.offset !== 0 || rows.has(taskId)) return;
      try {
        const model = rowModel(await api("GET", `/api/v1/tasks/${encodeURIComponent(taskId)}`));
        if (rows.has(taskId) || !matchesFilters(model)) return;
        const row = new TaskRow(model);
        rows.set(taskId, row);
        tbody.prepend(row.element);
        view.total += 1;
        while (tbody.rows.length > PAGE_SIZE) {
          const last = tbody.rows[tbody.rows.length - 1];
          rows.delete(last.dataset.id);
          last.remove();
        }
        if (!table.isConnected) replaceChildren(listArea, h("div", { class: "table-scroll" }, table));
        showPager();
      } catch {
        // Gone already, or the network: the next load shows it.
      }
    }

    async function refreshUsage(taskId) {
      try {
        const task = await api("GET", `/api/v1/tasks/${encodeURIComponent(taskId)}`);
        rows.get(taskId)?.update(rowModel(task));
      } catch {
        // The status shown is still right; the usage waits for the next load.
      }
    }

    // Feed events are gathered and applied once per animation frame: many changes to many rows
    // cost one layout, and a burst for one task collapses to its latest state.
    let pending = new Map();
    let frame = null;
    function applyPending() {
      frame = null;
      const changes = pending;
      pending = new Map();
      for (const [taskId, change] of changes) {
        if (change.created) addNewTask(taskId);
        const row = rows.get(taskId);
        if (!row) continue;
        const wasTerminal = !LIVE_STATUSES.has(row.model.status);
        row.update({ status: change.status, progress: change.progress });
        if (change.status && !LIVE_STATUSES.has(change.status) && !wasTerminal) refreshUsage(taskId);
      }
    }
    const unsubscribe = subscribeFeed(({ event, data }) => {
      if (!data.task_id) return;
      const change = pending.get(data.task_id) || {};
      if (event === "task.created") change.created = true;
      if (data.status) change.status = data.status;
      if (typeof data.progress === "number") change.progress = data.progress;
      pending.set(data.task_id, change);
      frame ??= requestAnimationFrame(applyPending);
    });

    root.append(
      h("h1", {}, "Tasks"),
      submitForm(),
      h("section", { class: "card", "aria-labelledby": "task-list-title" }, h("h2", { id: "task-list-title" }, "Your tasks"), filters, listArea, pagerArea),
    );
    load();
    const stopWatchingFeed = onFeedLiveAgain(load);
    return () => {
      unsubscribe();
      stopWatchingFeed();
      if (frame !== null) cancelAnimationFrame(frame);
    };
  },
};
