// #/sessions: the caller's sessions (paged) and a full-text search over their tasks;
// #/sessions/<id>: one session's history, with rename, export and delete.

import { api, errorFromResponse } from "../api.js";
import { authHeaders, currentCredential, recoverFromUnauthorized } from "../auth.js";
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
import { dataTable, errorText, loadError } from "../page-parts.js";

const PAGE_SIZE = 20;
const HISTORY_PAGE_SIZE = 50;
const TITLE_MAX_CHARACTERS = 60;

const sessionPath = (id) => `/api/v1/sessions/${encodeURIComponent(id)}`;
const sessionLink = (id) => `#/sessions/${encodeURIComponent(id)}`;
const taskLink = (id) => `#/tasks/${encodeURIComponent(id)}`;

function sessionRow(session) {
  return h(
    "tr",
    { "data-id": session.session_id },
    h("td", { class: "query-cell" }, h("a", { href: sessionLink(session.session_id) }, session.title || session.session_id)),
    h("td", { class: "number" }, String(session.task_count ?? 0)),
    h("td", {}, session.latest_task_status ? statusBadge(session.latest_task_status) : "—"),
    h("td", { class: "number" }, formatTokens(session.tokens_used)),
    h("td", { class: "number" }, formatCost(session.total_cost_usd)),
    h("td", {}, formatTime(session.last_activity_at || session.updated_at)),
  );
}

function searchResult(result) {
  return h(
    "li",
    { class: "search-result", "data-id": result.task_id },
    h("p", { class: "search-snippet" }, result.snippet || ""),
    h(
      "p",
      { class: "hint" },
      h("a", { href: taskLink(result.task_id) }, "Open task"),
      " · ",
      h("a", { href: sessionLink(result.session_id) }, "Open session"),
      " · ",
      formatTime(result.created_at),
    ),
  );
}

/** The search form and its results: GET /api/v1/search, paged. */
function searchSection() {
  const input = h("input", { id: "session-search", name: "q", type: "search", required: true, autocomplete: "off" });
  const status = h("p", { class: "search-status", role: "status", "aria-live": "polite" });
  const results = h("ol", { class: "search-results" });
  const pagerArea = h("div", {});
  const view = { query: "", offset: 0 };
  let searchCount = 0;

  async function search() {
    const count = ++searchCount;
    status.textContent = "Searching…";
    try {
      const body = await api("GET", "/api/v1/search", { query: { q: view.query, limit: PAGE_SIZE, offset: view.offset } });
      if (count !== searchCount) return;
      const total = body.total_count ?? body.results.length;
      status.textContent = total === 1 ? "1 task matches." : `${total} tasks match.`;
      replaceChildren(results, body.results.map(searchResult));
      replaceChildren(
        pagerArea,
        total > PAGE_SIZE
          ? pager({ offset: view.offset, limit: PAGE_SIZE, total, onChange: (offset) => { view.offset = offset; search(); } })
          : null,
      );
    } catch (ex) {
      if (count !== searchCount) return;
      status.textContent = errorText(ex);
      replaceChildren(results);
      replaceChildren(pagerArea);
    }
  }

  const form = h(
    "form",
    { class: "card", role: "search", "aria-labelledby": "session-search-title" },
    h("h2", { id: "session-search-title" }, "Search tasks"),
    h(
      "div",
      { class: "field" },
      h("label", { for: "session-search" }, "Words in a task's query or result"),
      input,
    ),
    h("button", { type: "submit", class: "button-primary" }, "Search"),
    status,
    results,
    pagerArea,
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    view.query = input.value.trim();
    view.offset = 0;
    if (view.query) search();
  });
  return form;
}

function renderList(root) {
  const view = { offset: 0 };
  const listArea = h("div", { class: "list-area", "aria-live": "polite", "aria-busy": "true" });
  let loadCount = 0;

  async function load() {
    const count = ++loadCount;
    listArea.setAttribute("aria-busy", "true");
    try {
      const body = await api("GET", "/api/v1/sessions", { query: { limit: PAGE_SIZE, offset: view.offset } });
      if (count !== loadCount) return;
      const total = body.total_count;
      if (total > 0 && view.offset >= total) {
        view.offset = Math.max(0, Math.floor((total - 1) / PAGE_SIZE) * PAGE_SIZE);
        load();
        return;
      }
      replaceChildren(
        listArea,
        body.sessions.length
          ? dataTable(
              "Your sessions, most recently active first",
              ["Title", "Tasks", "Latest task", "Tokens", "Cost", "Last activity"],
              h("tbody", {}, body.sessions.map(sessionRow)),
            )
          : emptyState("No sessions yet. Submitting a task starts one."),
        total > PAGE_SIZE
          ? pager({ offset: view.offset, limit: PAGE_SIZE, total, onChange: (offset) => { view.offset = offset; load(); } })
          : null,
      );
    } catch (ex) {
      if (count !== loadCount) return;
      replaceChildren(listArea, loadError(ex));
    } finally {
      if (count === loadCount) listArea.setAttribute("aria-busy", "false");
    }
  }

  root.append(
    h("h1", {}, "Sessions"),
    searchSection(),
    h("section", { "aria-labelledby": "sessions-list-title" }, h("h2", { id: "sessions-list-title" }, "All sessions"), listArea),
  );
  load();
  return () => {
    loadCount += 1;
  };
}

/** Download the session's export (a JSON document) under the file name the API gives it. */
async function downloadExport(id) {
  // The export is saved as the server wrote it, so this reads the body as bytes rather than through
  // api() (which parses JSON); credentials and a 401 are handled as api() does.
  let generation = null;
  const send = async () => {
    const auth = await authHeaders();
    generation = auth.generation;
    return fetch(`${sessionPath(id)}/export`, { headers: auth.headers, cache: "no-store", credentials: "omit" });
  };
  let response = await send();
  if (response.status === 401 && (await recoverFromUnauthorized(generation))) {
    response = await send();
    if (response.status === 401) await recoverFromUnauthorized(generation, { retried: true });
  }
  if (response.status === 401 && currentCredential() === null) location.hash = "#/signin";
  if (!response.ok) throw await errorFromResponse(response);
  const blob = await response.blob();
  const disposition = response.headers.get("Content-Disposition") || "";
  const named = /filename="([^"]+)"/.exec(disposition);
  const link = h("a", { href: URL.createObjectURL(blob), download: named ? named[1] : `session-${id}.json`, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 60_000);
}

function historyItem(task, index) {
  const outcome = task.error_message
    ? h("p", { class: "form-error" }, task.error_message)
    : task.result
      ? h("pre", { class: "code-block" }, task.result)
      : h("p", { class: "hint" }, "No result yet.");
  return h(
    "li",
    { class: "card turn", "data-id": task.task_id },
    h(
      "h3",
      { class: "turn-title" },
      `Turn ${index + 1}: `,
      h("a", { href: taskLink(task.task_id) }, task.query || task.task_id),
    ),
    h(
      "p",
      { class: "turn-meta" },
      statusBadge(task.status),
      ` ${formatTokens(task.total_tokens)} tokens · ${formatCost(task.total_cost_usd)} · ${formatDuration(task.duration_ms)} · ${formatTime(task.completed_at || task.started_at)}`,
    ),
    outcome,
  );
}

function renameForm(id, title, onRenamed) {
  const input = h("input", {
    id: "session-title",
    name: "title",
    type: "text",
    required: true,
    maxlength: String(TITLE_MAX_CHARACTERS),
    value: title,
    autocomplete: "off",
  });
  const error = h("p", { class: "form-error", role: "alert", hidden: true });
  const submit = h("button", { type: "submit" }, "Rename");
  const form = h(
    "form",
    { class: "inline-form", "aria-label": "Rename the session" },
    h("div", { class: "field" }, h("label", { for: "session-title" }, "Title"), input),
    submit,
    error,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.hidden = true;
    submit.disabled = true;
    try {
      const body = await api("PATCH", sessionPath(id), { body: { title: input.value } });
      input.value = body.title;
      onRenamed(body.title);
      toast("Session renamed.", "success");
    } catch (ex) {
      error.textContent = errorText(ex);
      error.hidden = false;
    } finally {
      submit.disabled = false;
    }
  });
  return form;
}

function renderSession(root, id) {
  const heading = h("h1", {}, "Session");
  const summary = h("div", { "aria-busy": "true" });
  const history = h("div", { class: "list-area" });
  const view = { offset: 0 };
  let active = true;

  async function loadHistory() {
    try {
      const body = await api("GET", `${sessionPath(id)}/history`, { query: { limit: HISTORY_PAGE_SIZE, offset: view.offset } });
      if (!active) return;
      replaceChildren(
        history,
        body.tasks.length
          ? h("ol", { class: "turns" }, body.tasks.map((task, i) => historyItem(task, view.offset + i)))
          : emptyState("This session has no tasks."),
        body.total > HISTORY_PAGE_SIZE
          ? pager({ offset: view.offset, limit: HISTORY_PAGE_SIZE, total: body.total, onChange: (offset) => { view.offset = offset; loadHistory(); } })
          : null,
      );
    } catch (ex) {
      if (active) replaceChildren(history, loadError(ex));
    }
  }

  async function exportSession(button) {
    button.disabled = true;
    try {
      await downloadExport(id);
      toast("Export downloaded.", "success");
    } catch (ex) {
      toast(errorText(ex), "error");
    } finally {
      button.disabled = false;
    }
  }

  async function deleteSession() {
    const confirmed = await confirmAction({
      title: "Delete this session?",
      message: "It disappears from your sessions and search, and cannot be continued. Its tasks stay readable.",
      confirmLabel: "Delete session",
      danger: true,
    });
    if (!confirmed) return;
    try {
      await api("DELETE", sessionPath(id));
      toast("Session deleted.", "success");
      location.hash = "#/sessions";
    } catch (ex) {
      toast(errorText(ex), "error");
    }
  }

  async function load() {
    try {
      const session = await api("GET", sessionPath(id));
      if (!active) return;
      heading.textContent = session.title || session.session_id;
      const exportButton = h("button", { type: "button", onclick: () => exportSession(exportButton) }, "Export JSON");
      replaceChildren(
        summary,
        h(
          "dl",
          { class: "details" },
          h("dt", {}, "Session id"),
          h("dd", {}, h("code", {}, session.session_id)),
          h("dt", {}, "Tasks"),
          h("dd", {}, String(session.task_count ?? 0)),
          h("dt", {}, "Tokens"),
          h("dd", {}, formatTokens(session.tokens_used) + (session.token_budget ? ` of ${formatTokens(session.token_budget)}` : "")),
          h("dt", {}, "Cost"),
          h("dd", {}, formatCost(session.cost_usd ?? session.total_cost_usd)),
          h("dt", {}, "Created"),
          h("dd", {}, formatTime(session.created_at)),
        ),
        renameForm(id, session.title || "", (title) => {
          heading.textContent = title;
        }),
        h(
          "div",
          { class: "task-controls" },
          exportButton,
          h("button", { type: "button", class: "button-danger", onclick: deleteSession }, "Delete session"),
        ),
      );
      summary.setAttribute("aria-busy", "false");
      loadHistory();
    } catch (ex) {
      if (!active) return;
      summary.setAttribute("aria-busy", "false");
      replaceChildren(summary, loadError(ex));
    }
  }

  root.append(
    h("p", {}, h("a", { href: "#/sessions" }, "All sessions")),
    heading,
    summary,
    h("section", { "aria-labelledby": "session-history-title" }, h("h2", { id: "session-history-title" }, "History"), history),
  );
  load();
  return () => {
    active = false;
  };
}

export default {
  title: "Sessions",
  render(root, params) {
    return params.id ? renderSession(root, params.id) : renderList(root);
  },
};
