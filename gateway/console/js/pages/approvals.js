// #/approvals: the caller's pending approvals first, each with the action its task asks to take
// and approve / reject / modify; then the history of decisions and who made them.

import { api } from "../api.js";
import { currentUser } from "../auth.js";
import { confirmAction, emptyState, formatTime, h, jsonText, pager, replaceChildren, toast } from "../dom.js";
import { onFeedLiveAgain, subscribeFeed } from "../feed.js";

const PENDING_LIMIT = 100;
const HISTORY_PAGE_SIZE = 20;
const RELOAD_DELAY_MILLISECONDS = 250;

/** Return the modified action as typed: a JSON object when it is one, else the text itself. */
function modifiedActionValue(text) {
  const trimmed = text.trim();
  if (trimmed.startsWith("{")) {
    try {
      return JSON.parse(trimmed);
    } catch {
      // Not valid JSON: the approver's text is the action, as a string.
    }
  }
  return trimmed;
}

function decisionsChanged() {
  document.dispatchEvent(new CustomEvent("approvals:changed"));
}

export default {
  title: "Approvals",
  render(root) {
    const pendingArea = h("div", {});
    const historyArea = h("div", {});
    const history = { offset: 0 };
    let closed = false;
    let me = null;

    async function decide(approval, form, { approved, modifiedAction }) {
      const buttons = form.querySelectorAll("button");
      for (const button of buttons) button.disabled = true;
      const body = { workflow_id: approval.workflow_id, approval_id: approval.approval_id, approved };
      const feedback = form.querySelector("textarea[name=feedback]").value.trim();
      if (feedback) body.feedback = feedback;
      if (modifiedAction) body.modified_action = modifiedAction;
      try {
        await api("POST", "/api/v1/approvals/decision", { body });
        toast(approved ? "Approved." : "Rejected.", "success");
      } catch (ex) {
        toast(ex.message, "error");
      }
      decisionsChanged();
      loadAll();
    }

    function approvalCard(approval) {
      const id = `approval-${approval.approval_id}`.replace(/[^A-Za-z0-9_-]/g, "-");
      const feedback = h("textarea", { id: `${id}-feedback`, name: "feedback", rows: "2", maxlength: "2000" });
      const modified = h("textarea", { id: `${id}-modified`, name: "modified_action", rows: "4" });
      modified.value = jsonText(approval.proposed_action);
      const form = h("form", { class: "approval-decision" });
      const reject = async () => {
        const confirmed = await confirmAction({
          title: "Reject this action?",
          message: "The task ends as failed, with your feedback as the reason.",
          confirmLabel: "Reject",
          danger: true,
        });
        if (confirmed) decide(approval, form, { approved: false });
      };
      replaceChildren(
        form,
        h("div", { class: "field" }, h("label", { for: feedback.id }, "Feedback (optional)"), feedback),
        h(
          "div",
          { class: "decision-buttons" },
          h("button", { type: "button", class: "button-primary", onclick: () => decide(approval, form, { approved: true }) }, "Approve"),
          h("button", { type: "button", class: "button-danger", onclick: reject }, "Reject"),
        ),
        h(
          "details",
          { class: "modify" },
          h("summary", {}, "Modify the action"),
          h("div", { class: "field" }, h("label", { for: modified.id }, "Modified action"), modified),
          h(
            "button",
            { type: "button", onclick: () => decide(approval, form, { approved: true, modifiedAction: modifiedActionValue(modified.value) }) },
            "Approve modified action",
          ),
        ),
      );
      return h(
        "li",
        { class: "card approval", "data-id": approval.approval_id, "aria-labelledby": `${id}-title` },
        h("h3", { id: `${id}-title` }, h("a", { href: `#/tasks/${encodeURIComponent(approval.workflow_id)}` }, approval.query || approval.workflow_id)),
        h("p", { class: "meta" }, `Requested ${formatTime(approval.requested_at)}`),
        approval.reason ? h("p", {}, approval.reason) : null,
        h("p", { class: "label" }, "Proposed action"),
        h("pre", { class: "code-block" }, jsonText(approval.proposed_action)),
        form,
      );
    }

    function decider(approval) {
      if (!approval.decided_by) return approval.status === "expired" ? "nobody (expired)" : "—";
      if (me && approval.decided_by === me.user_id) return `you (${me.email || me.username || me.user_id})`;
      return approval.decided_by;
    }

    // The pending list keeps each card while its approval is pending, so a reload (another
    // approval arriving) never clears feedback being typed into a card.
    const cards = new Map();
    const pendingCount = h("p", { class: "count", "aria-live": "polite" });
    const pendingList = h("ul", { class: "approval-list" });
    const nothingPending = emptyState("Nothing is waiting for a decision.");
    pendingArea.append(pendingCount, pendingList, nothingPending);

    async function loadPending() {
      const body = await api("GET", "/api/v1/approvals", { query: { status: "pending", limit: PENDING_LIMIT } });
      if (closed) return;
      const pendingIds = new Set(body.approvals.map((approval) => approval.approval_id));
      for (const [approvalId, card] of cards) {
        if (!pendingIds.has(approvalId)) {
          card.remove();
          cards.delete(approvalId);
        }
      }
      body.approvals.forEach((approval, i) => {
        let card = cards.get(approval.approval_id);
        if (!card) {
          card = approvalCard(approval);
          cards.set(approval.approval_id, card);
        }
        if (pendingList.children[i] !== card) pendingList.insertBefore(card, pendingList.children[i] || null);
      });
      pendingCount.textContent = `${body.total_count} pending`;
      nothingPending.hidden = body.approvals.length > 0;
    }

    async function loadHistory() {
      const body = await api("GET", "/api/v1/approvals", { query: { status: "decided", limit: HISTORY_PAGE_SIZE, offset: history.offset } });
      if (closed) return;
      const rows = body.approvals.map((approval) =>
        h(
          "tr",
          { "data-id": approval.approval_id },
          h("td", {}, h("a", { href: `#/tasks/${encodeURIComponent(approval.workflow_id)}` }, approval.query || approval.workflow_id)),
          h("td", {}, approval.status),
          h("td", {}, decider(approval)),
          h("td", {}, formatTime(approval.decided_at)),
          h("td", { class: "pre-wrap" }, approval.feedback || "—"),
        ),
      );
      replaceChildren(
        historyArea,
        rows.length
          ? h(
              "div",
              { class: "table-scroll" },
              h(
                "table",
                { class: "data-table" },
                h("caption", { class: "visually-hidden" }, "Decided approvals, newest first"),
                h("thead", {}, h("tr", {}, ["Task", "Decision", "Decided by", "When", "Feedback"].map((name) => h("th", { scope: "col" }, name)))),
                h("tbody", {}, rows),
              ),
            )
          : emptyState("No decisions yet."),
        body.total_count > 0
          ? pager({
              offset: history.offset,
              limit: HISTORY_PAGE_SIZE,
              total: body.total_count,
              onChange: (offset) => {
                history.offset = offset;
                loadHistory().catch((ex) => toast(ex.message, "error"));
              },
            })
          : null,
      );
    }

    async function loadAll() {
      try {
        me = me || (await currentUser().catch(() => null));
        await Promise.all([loadPending(), loadHistory()]);
      } catch (ex) {
        if (!closed) toast(ex.message, "error");
      }
    }

    // A burst of feed events (many approvals asked at once) reloads once.
    let reloadTimer = null;
    const unsubscribe = subscribeFeed(({ event }) => {
      if (event !== "approval.requested" && event !== "approval.decided") return;
      clearTimeout(reloadTimer);
      reloadTimer = setTimeout(loadAll, RELOAD_DELAY_MILLISECONDS);
    });

    root.append(
      h("h1", {}, "Approvals"),
      h("section", { class: "card", "aria-labelledby": "pending-title" }, h("h2", { id: "pending-title" }, "Waiting for a decision"), pendingArea),
      h("section", { class: "card", "aria-labelledby": "history-title" }, h("h2", { id: "history-title" }, "Decisions"), historyArea),
    );
    loadAll();
    const stopWatchingFeed = onFeedLiveAgain(loadAll);
    return () => {
      closed = true;
      unsubscribe();
      stopWatchingFeed();
      clearTimeout(reloadTimer);
    };
  },
};
