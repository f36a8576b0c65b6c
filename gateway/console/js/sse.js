// Reading a Server-Sent Events stream with fetch, so the credential travels in a header and never
// in a URL (EventSource cannot set headers). Reconnects with backoff, resuming after the last id.

import { errorFromResponse } from "./api.js";
import { authHeaders, recoverFromUnauthorized } from "./auth.js";

const MAX_BACKOFF_MILLISECONDS = 30_000;
// Answers that another attempt would not change (a bad request, a missing scope, an unknown task).
const DEFAULT_FATAL_STATUSES = [400, 403, 404];

/**
 * Open the stream at path. onEvent(name, data, id) gets each event (data parsed as JSON when it
 * is JSON, else the text); onOpen(response) each successful connection; onError(error, {fatal}) each
 * failure (a fatal one ends the stream). With endOnDone the stream ends after its `done` event.
 * Returns {close()}.
 */
export function openEventStream(
  path,
  { onEvent, onOpen, onError, lastEventId = null, endOnDone = false, fatalStatuses = DEFAULT_FATAL_STATUSES } = {},
) {
  let closed = false;
  let abort = null;
  let lastId = lastEventId;
  let retryMilliseconds = 1000;
  let failures = 0;

  const dispatch = (name, text) => {
    let data = text;
    try {
      data = JSON.parse(text);
    } catch {
      // Not JSON ("[DONE]"): passed on as text.
    }
    onEvent?.(name, data, lastId);
    if (endOnDone && name === "done") {
      closed = true;
    }
  };

  async function connectOnce() {
    abort = new AbortController();
    const auth = await authHeaders();
    const headers = { Accept: "text/event-stream", ...auth.headers };
    if (lastId !== null && lastId !== undefined) headers["Last-Event-ID"] = String(lastId);
    const response = await fetch(path, { headers, signal: abort.signal, cache: "no-store", credentials: "omit" });
    if (response.status === 401) {
      if (!(await recoverFromUnauthorized(auth.generation))) {
        closed = true;
        location.hash = "#/signin";
      }
      return;
    }
    if (!response.ok) {
      const error = await errorFromResponse(response);
      if (fatalStatuses.includes(response.status)) {
        closed = true;
        onError?.(error, { fatal: true });
        return;
      }
      throw error;
    }
    failures = 0;
    let pendingId = null;
    onOpen?.(response);
    await readFrames(response.body, {
      onField: (field, value) => {
        if (field === "retry" && /^\d+$/.test(value)) retryMilliseconds = Number(value);
        if (field === "id" && !value.includes("\0")) pendingId = value;
      },
      // An id counts as seen once its event is complete, so a drop mid-frame resumes before it.
      onDispatchId: () => {
        if (pendingId !== null) lastId = pendingId;
      },
      onDispatch: dispatch,
      isClosed: () => closed,
    });
  }

  (async () => {
    while (!closed) {
      try {
        await connectOnce();
      } catch (ex) {
        if (closed) return;
        failures += 1;
        onError?.(ex, { fatal: false });
      }
      if (closed) return;
      // A stream the server ended without `done`, or a failure: wait, then resume after lastId.
      const backoff = Math.min(retryMilliseconds * 2 ** Math.min(failures, 5), MAX_BACKOFF_MILLISECONDS);
      await new Promise((resolve) => setTimeout(resolve, backoff * (0.75 + Math.random() / 2)));
    }
  })();

  return {
    close() {
      closed = true;
      abort?.abort();
    },
  };
}

/** Parse an event stream body (the WHATWG rules): fields, comments, and a blank line dispatching. */
async function readFrames(body, { onField, onDispatchId, onDispatch, isClosed }) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let name = "";
  let data = [];
  try {
    while (!isClosed()) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += value;
      // A trailing "\r" may be half of a "\r\n" split across chunks: keep it for the next one.
      const held = buffer.endsWith("\r") ? "\r" : "";
      const lines = buffer.slice(0, buffer.length - held.length).split(/\r\n|\r|\n/);
      buffer = lines.pop() + held;
      for (const line of lines) {
        if (line === "") {
          onDispatchId();
          if (data.length > 0) onDispatch(name || "message", data.join("\n"));
          name = "";
          data = [];
          if (isClosed()) return;
          continue;
        }
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon === -1 ? line : line.slice(0, colon);
        let value = colon === -1 ? "" : line.slice(colon + 1);
        if (value.startsWith(" ")) value = value.slice(1);
        if (field === "event") name = value;
        else if (field === "data") data.push(value);
        else onField(field, value);
      }
    }
  } finally {
    reader.cancel().catch(() => {});
  }
}
