// The caller's one live feed of task changes (GET /api/v1/stream/tasks): one connection for the
// whole console however many tasks are on screen, resumed after a drop by Last-Event-ID.

import { openEventStream } from "./sse.js";

const FEED_PATH = "/api/v1/stream/tasks";
const FEED_EVENTS = new Set(["task.created", "task.status", "task.progress", "approval.requested", "approval.decided"]);

const subscribers = new Set();
const stateListeners = new Set();
let stream = null;
let state = "stopped";
// Changes older than this (server time, ms) happened before the console opened the feed.
let openedAt = null;

function setState(next) {
  if (next === state) return;
  state = next;
  for (const listener of stateListeners) listener(state);
}

/** Call fn({event, data, id}) for each feed event; return a function that unsubscribes. */
export function subscribeFeed(fn) {
  subscribers.add(fn);
  return () => subscribers.delete(fn);
}

/** Call fn(state) when the feed becomes "connecting", "live", "unavailable" or "stopped". */
export function onFeedState(fn) {
  stateListeners.add(fn);
  fn(state);
  return () => stateListeners.delete(fn);
}

/**
 * Open the feed (once). A gateway without the feed answers 404: that is retried with backoff like
 * a drop, and meanwhile the state is "unavailable" while pages keep working from plain requests.
 */
export function startFeed() {
  if (stream !== null) return;
  setState("connecting");
  openedAt = null;
  stream = openEventStream(FEED_PATH, {
    fatalStatuses: [400, 403],
    onOpen: (response) => {
      // The first connection replays the last day's changes before the live ones; the pages
      // loaded their state after those, so they are skipped, by the server's clock (its Date
      // header, to the second) against the changes' own timestamps. Reconnections resume by id.
      if (openedAt === null) openedAt = Date.parse(response.headers.get("Date") || "") - 1000 || 0;
      setState("live");
    },
    onError: () => setState("unavailable"),
    onEvent: (event, data, id) => {
      if (!FEED_EVENTS.has(event) || typeof data !== "object" || data === null) return;
      if (openedAt && Date.parse(data.timestamp) < openedAt) return;
      for (const subscriber of subscribers) subscriber({ event, data, id });
    },
  });
}

/** Close the feed (on sign-out). */
export function stopFeed() {
  stream?.close();
  stream = null;
  setState("stopped");
}
