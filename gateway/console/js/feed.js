// The caller's one live feed of task changes (GET /api/v1/stream/tasks): one connection for the
// whole console however many tasks are on screen, resumed after a drop by Last-Event-ID.
//
// The first connection sends no Last-Event-ID, so the feed starts now: its first frame is the
// current position alone (an id, no event), which becomes the id a reconnection resumes after.
// The pages load their state with plain requests and apply the feed's changes on top.

import { openEventStream } from "./sse.js";

const FEED_PATH = "/api/v1/stream/tasks";
const FEED_EVENTS = new Set(["task.created", "task.status", "task.progress", "approval.requested", "approval.decided"]);

const subscribers = new Set();
const stateListeners = new Set();
let stream = null;
let state = "stopped";

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
 * Call fn() each time the feed becomes live after being otherwise since this call. The feed starts
 * at the moment it connects, so changes made while it was not live (before its first connection,
 * or during an outage too long to resume) came in no frame: a page loads its state again. Returns
 * a function that stops.
 */
export function onFeedLiveAgain(fn) {
  let wasLive = null;
  return onFeedState((next) => {
    const live = next === "live";
    if (live && wasLive === false) fn();
    wasLive = live;
  });
}

/**
 * Open the feed (once). A gateway without the feed answers 404: that is retried with backoff like
 * a drop, and meanwhile the state is "unavailable" while pages keep working from plain requests.
 */
export function startFeed() {
  if (stream !== null) return;
  setState("connecting");
  stream = openEventStream(FEED_PATH, {
    fatalStatuses: [400, 403],
    onOpen: () => setState("live"),
    onError: () => setState("unavailable"),
    onEvent: (event, data, id) => {
      if (!FEED_EVENTS.has(event) || typeof data !== "object" || data === null) return;
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
