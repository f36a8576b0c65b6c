// #/tasks/<id>: one task: its fields, live events (resumed after a drop), timeline and controls.

import { api } from "../api.js";
import {
  TERMINAL_STATUSES,
  confirmAction,
  emptyState,
  formatCost,
  formatDuration,
  formatTime,
  formatTokens,
  h,
  jsonText,
  replaceChildren,
  statusBadge,
  toast,
} from "../dom.js";
import { subscribeFeed } from "../feed.js";
import { openEventStream } from "../sse.js";

const RELOAD_DELAY_MILLISECONDS = 200;
// Events after which the task's fields have changed.
const CHANGING_EVENTS = new Set([
  "WORKFLOW_STARTED",
  "WORKFLOW_COMPLETED",
  "WORKFLOW_FAILED",
  "WORKFLOW_TIMEOUT",
  "APPROVAL_REQUESTED",
  "APPROVAL_DECISION",
  "PROGRESS",
  "thread.message.completed",
  "workflow.paused",
  "workflow.resumed",
  "workflow.cancelled",
  "error",
  "done",
]);

function field(label, ...value) {
  return [h("dt", {}, label), h("dd", {}, ...value)];
}

function taskPath(id, suffix = "") {
  return `/api/v1/tasks/${encodeURIComponent(id)}${suffix}`;
}

export default {
  title: "Task",
  render(root, { id }) {
    const heading = h("h1", {}, "Task");
    const controls = h("div", { class: "task-controls", role: "group", "aria-label": "Task controls" });
    const approval = h("div", {});
    const details = h("dl", { class: "details" });
    const streamState = h("p", { class: "stream-state", role: "status" }, "Connecting…");
    // One lasting live region, so a change of status is announced (the details are rebuilt).
    const statusAnnouncement = h("p", { class: "visually-hidden", "aria-live": "polite" });
    const output = h("pre", { class: "live-output", hidden: true, "aria-label": "Streaming output" });
    const events = h("ol", { class: "event-list", "aria-label": "Events" });
    const timeline = h("div", {});
    let task = null;
    let stream = null;
    let reloadTimer = null;
    let closed = false;
    let timelineShown = null;

    root.append(
      heading,
      h("p", { class: "task-id" }, "Id: ", h("code", {}, id)),
      statusAnnouncement,
      controls,
      approval,
      h("section", { class: "card", "aria-labelledby": "task-details-title" }, h("h2", { id: "task-details-title" }, "Details"), details),
      h(
        "section",
        { class: "card", "aria-labelledby": "task-events-title" },
        h("h2", { id: "task-events-title" }, "Live events"),
        streamState,
        output,
        events,
      ),
      h("section", { class: "card", "aria-labelledby": "task-timeline-title" }, h("h2", { id: "task-timeline-title" }, "Timeline"), timeline),
    );

    function controlButton(label, enabled, action, className = "") {
      return h("button", { type: "button", class: className, disabled: !enabled, onclick: action }, label);
    }

    async function control(action, pastTense) {
      try {
        await api("POST", taskPath(id, `/${action}`), { body: {} });
        toast(`Task ${pastTense}.`, "success");
      } catch (ex) {
        toast(ex.message, "error");
      }
      reload();
    }

    async function cancel() {
      const confirmed = await confirmAction({
        title: "Cancel this task?",
        message: "The task stops and cannot be resumed.",
        confirmLabel: "Cancel task",
        danger: true,
      });
      if (confirmed) control("cancel", "cancelled");
    }

    function showTask(current, controlState) {
      if (task?.status !== current.status) statusAnnouncement.textContent = `Status: ${current.status}`;
      task = current;
      const usage = current.usage || {};
      const finished = TERMINAL_STATUSES.has(current.status);
      const paused = current.status === "PAUSED" || controlState?.is_paused === true;
      replaceChildren(
        controls,
        controlButton("Pause", !finished && !paused, () => control("pause", "paused")),
        controlButton("Resume", !finished && paused, () => control("resume", "resumed")),
        controlButton("Cancel", !finished, cancel, "button-danger"),
      );
      const pending = current.pending_approval;
      replaceChildren(
        approval,
        pending
          ? h(
              "section",
              { class: "card callout", "aria-labelledby": "task-approval-title" },
              h("h2", { id: "task-approval-title" }, "Waiting for approval"),
              pending.reason ? h("p", {}, pending.reason) : null,
              h("pre", { class: "code-block" }, jsonText(pending.proposed_action)),
              h("p", {}, h("a", { href: "#/approvals" }, "Decide in the approvals inbox")),
            )
          : null,
      );
      replaceChildren(
        details,
        field("Status", statusBadge(current.status)),
        field("Progress", h("progress", { max: "1", value: String(current.progress ?? 0), "aria-label": "Progress" }), ` ${Math.round((current.progress ?? 0) * 100)}%`),
        field("Query", h("span", { class: "pre-wrap" }, current.query || "")),
        field("Result", current.result ? h("div", { class: "result pre-wrap" }, current.result) : "—"),
        current.error ? field("Error", h("span", { class: "pre-wrap" }, current.error)) : null,
        field("Model", current.model_used || "—", current.provider ? ` (${current.provider})` : ""),
        field("Tokens", `${formatTokens(usage.total_tokens)} (input ${formatTokens(usage.input_tokens)}, output ${formatTokens(usage.output_tokens)})`),
        field("Cost", formatCost(usage.estimated_cost)),
        field("Session", current.session_id ? h("a", { href: `#/sessions/${encodeURIComponent(current.session_id)}` }, current.session_id) : "—"),
        field("Created", formatTime(current.created_at)),
        field("Started", formatTime(current.started_at)),
        field("Completed", formatTime(current.completed_at)),
      );
    }

    async function reload() {
      try {
        const [current, controlState] = await Promise.all([
          api("GET", taskPath(id)),
          api("GET", taskPath(id, "/control-state")).catch(() => null),
        ]);
        if (closed) return;
        showTask(current, controlState);
        if (stream === null) openStream(current.workflow_id || id);
        // The timeline once at first, and again with the finished task's whole history.
        const finished = TERMINAL_STATUSES.has(current.status);
        if (timelineShown === null || (finished && timelineShown !== "finished")) {
          timelineShown = finished ? "finished" : "running";
          loadTimeline();
        }
      } catch (ex) {
        if (closed) return;
        replaceChildren(details, h("p", { class: "form-error", role: "alert" }, ex.status === 404 ? "Task not found." : ex.message));
      }
    }

    function scheduleReload() {
      clearTimeout(reloadTimer);
      reloadTimer = setTimeout(reload, RELOAD_DELAY_MILLISECONDS);
    }

    function addEvent(name, data) {
      if (name === "thread.message.delta") {
        output.hidden = false;
        output.append(document.createTextNode(data?.delta ?? ""));
        return;
      }
      const type = data?.type || name;
      events.append(
        h(
          "li",
          { "data-seq": data?.seq ?? "" },
          h("span", { class: "event-type" }, type),
          " ",
          h("time", { datetime: data?.timestamp || "" }, formatTime(data?.timestamp)),
          data?.message ? h("span", { class: "event-message" }, data.message) : null,
        ),
      );
    }

    function openStream(workflowId) {
      stream = openEventStream(`/api/v1/stream/sse?workflow_id=${encodeURIComponent(workflowId)}`, {
        endOnDone: true,
        onOpen: () => {
          streamState.textContent = "Live";
        },
        onError: (error, { fatal }) => {
          streamState.textContent = fatal ? `The event stream is unavailable: ${error.message}` : "Reconnecting…";
        },
        onEvent: (name, data) => {
          if (name === "done") {
            streamState.textContent = "Stream ended: the task is finished.";
          } else {
            addEvent(name, data);
          }
          if (CHANGING_EVENTS.has(name)) scheduleReload();
        },
      });
    }

    async function loadTimeline() {
      try {
        const body = await api("GET", taskPath(id, "/timeline"));
        if (closed) return;
        const stats = body.stats || {};
        replaceChildren(
          timeline,
          h("p", {}, `${stats.event_count ?? body.events.length} events over ${formatDuration(stats.duration_ms)}`),
          body.events.length
            ? h(
                "div",
                { class: "table-scroll" },
                h(
                  "table",
                  { class: "data-table" },
                  h("caption", { class: "visually-hidden" }, "Timeline of the task's events"),
                  h("thead", {}, h("tr", {}, ["#", "Event", "Agent", "Message", "Time"].map((name) => h("th", { scope: "col" }, name)))),
                  h(
                    "tbody",
                    {},
                    body.events.map((event) =>
                      h(
                        "tr",
                        { "data-id": String(event.seq) },
                        h("td", { class: "number" }, String(event.seq)),
                        h("td", {}, event.type),
                        h("td", {}, event.agent_id || "—"),
                        h("td", { class: "pre-wrap" }, event.message || ""),
                        h("td", {}, formatTime(event.timestamp)),
                      ),
                    ),
                  ),
                ),
              )
            : emptyState("No events yet."),
        );
      } catch (ex) {
        if (!closed) replaceChildren(timeline, h("p", { class: "form-error" }, ex.message));
      }
    }

    const unsubscribe = subscribeFeed(({ data }) => {
      if (data.task_id === id || data.workflow_id === task?.workflow_id) scheduleReload();
    });
    reload();
    return () => {
      closed = true;
      unsubscribe();
      clearTimeout(reloadTimer);
      stream?.close();
    };
  },
};
