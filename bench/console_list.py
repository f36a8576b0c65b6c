"""How the console's task list keeps up with live tasks, measured in the browser.

A real stack (orchestrator on SQLite, gateway), ``--finished`` finished tasks in the caller's list
and ``--live`` tasks running at once, each stepping slowly so its status and progress change for a
while. Headless Chromium (the system ``chromium``, driven by Playwright) signs in with an API key
and opens ``#/tasks``. Measured in the page:

- **update latency**: from the moment a feed frame reached the page (the feed's response body is
  teed by an init script, so this is the arrival of the bytes, not of a parsed event) to the
  moment the row showing that task's new status or progress changed in the DOM (a
  MutationObserver on the rows), for every change of a task on the visible page;
- **commit to screen**: from the change's ``timestamp`` (when the store recorded it) to that DOM
  change, the delay a person sees, including the feed's poll;
- **long tasks**: main-thread tasks over 50 ms while the live tasks run (PerformanceObserver);
- **stream connections**: every request the page made to ``/api/v1/stream/``; the list must hold
  one (the caller's feed), not one per task.

Run: ``python -m bench.console_list [--finished 1000] [--live 50] [--step-seconds 1]``.
"""

import argparse
import concurrent.futures
import datetime
import pathlib
import statistics
import sys
import tempfile
import time

import httpx

from bench.task_throughput import completed_count
from tests.browser.browser_launch import chromium_path
from tests.integration.processes import create_api_key
from tests.integration.processes import start_stack
from tests.integration.processes import wait_until

# Tees the feed's response body: each frame's arrival time by (task_id, status, progress).
TEE_FEED = """
window.__feedArrivals = [];
const originalFetch = window.fetch;
window.fetch = async (...args) => {
  const response = await originalFetch(...args);
  const url = String(args[0] && args[0].url ? args[0].url : args[0]);
  if (!url.includes("/api/v1/stream/tasks") || !response.body) return response;
  const [mine, theirs] = response.body.tee();
  (async () => {
    const reader = theirs.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      const now = performance.timeOrigin + performance.now();
      buffer += decoder.decode(value, { stream: true });
      let end;
      while ((end = buffer.indexOf("\\n\\n")) >= 0) {
        const frame = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const lines = frame.split("\\n");
        const data = lines.find((line) => line.startsWith("data: "));
        const kind = (lines.find((line) => line.startsWith("event: ")) || "").slice(7);
        if (data) window.__feedArrivals.push({ at: now, kind, ...JSON.parse(data.slice(6)) });
      }
    }
  })();
  const { status, statusText, headers } = response;
  return new Response(mine, { status, statusText, headers });
};
window.__longTasks = [];
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) window.__longTasks.push(entry.duration);
}).observe({ type: "longtask", buffered: true });
"""

# Records every row's status and progress as the DOM shows them, with the time they changed.
WATCH_ROWS = """
window.__rowChanges = [];
const seen = new Map();
const record = () => {
  const now = performance.timeOrigin + performance.now();
  for (const row of document.querySelectorAll("tr[data-id]")) {
    const progress = row.querySelector("progress");
    const shown = `${row.dataset.status}|${progress ? progress.value : ""}`;
    if (seen.get(row.dataset.id) !== shown) {
      seen.set(row.dataset.id, shown);
      window.__rowChanges.push({ at: now, task_id: row.dataset.id, status: row.dataset.status,
                                 progress: progress ? Number(progress.value) : null });
    }
  }
};
record();
new MutationObserver(record).observe(document.querySelector("main"), {
  subtree: true, childList: true, attributes: true, attributeFilter: ["data-status", "value"],
});
"""


def submit_all(url: str, key: str, bodies: list[dict]) -> list[str]:
    """Submit tasks from 8 threads; return their ids."""
    with httpx.Client(base_url=url, headers={"X-API-Key": key}, timeout=60) as client:

        def submit(body: dict) -> str:
            response = client.post("/api/v1/tasks", json=body)
            response.raise_for_status()
            return response.json()["task_id"]

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            return list(pool.map(submit, bodies))


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


def measure(finished: int, live: int, step_seconds: float, work: pathlib.Path) -> None:
    from playwright.sync_api import sync_playwright

    stack = start_stack(work, TASKGATE_SIM_STEP_SECONDS="0", TASKGATE_RATE_LIMIT_DISABLED="1")
    try:
        key = create_api_key(stack.env, "console-bench@example.com")
        submit_all(stack.url, key, [{"query": f"Finished task {n}"} for n in range(finished)])
        wait_until(
            lambda: completed_count(stack.url, key) >= finished, timeout=600, what="the finished tasks"
        )

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium_path(), headless=True)
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            streams: list[str] = []
            page.on(
                "request", lambda request: "/api/v1/stream/" in request.url and streams.append(request.url)
            )
            page.add_init_script(TEE_FEED)
            page.goto(stack.url + "/ui/#/signin")
            page.get_by_label("API key").fill(key)
            page.get_by_role("button", name="Use API key").click()
            page.wait_for_url("**/ui/#/tasks", timeout=60_000)
            page.wait_for_selector("tr[data-id]", timeout=60_000)
            page.evaluate(WATCH_ROWS)

            started = time.monotonic()
            simulation = {"simulation": {"partials": 10, "step_seconds": step_seconds}}
            live_ids = submit_all(
                stack.url, key, [{"query": f"Live task {n}", "context": simulation} for n in range(live)]
            )
            wait_until(
                lambda: completed_count(stack.url, key) >= finished + live,
                timeout=900,
                what="the live tasks to finish",
            )
            # The last changes reach the page within the feed's poll; give them a moment to show.
            page.wait_for_timeout(2_000)
            elapsed = time.monotonic() - started
            arrivals = page.evaluate("window.__feedArrivals")
            changes = page.evaluate("window.__rowChanges")
            long_tasks = page.evaluate("window.__longTasks")
            rows = page.evaluate("document.querySelectorAll('tr[data-id]').length")
            browser.close()
    finally:
        stack.stop()

    live_set = set(live_ids)
    shown: dict[tuple, float] = {}
    for change in changes:
        shown.setdefault(_shown_key(change), change["at"])
    latencies: dict[str, list[float]] = {}
    commit_to_screen: list[float] = []
    for arrival in arrivals:
        at = shown.get(_shown_key(arrival))
        if arrival["task_id"] not in live_set or at is None:
            continue  # A task off the visible page, or a change another one superseded within a frame.
        latencies.setdefault(arrival["kind"], []).append(max(0.0, at - arrival["at"]))
        commit_to_screen.append(at - _epoch_ms(arrival["timestamp"]))
    print(
        f"finished tasks in the list: {finished}; live tasks: {live}; step {step_seconds} s; {elapsed:.0f} s"
    )
    shown_count = sum(len(values) for values in latencies.values())
    print(f"rows on the page: {rows}; feed frames received: {len(arrivals)}; changes shown: {shown_count}")
    print()
    print("| measure | changes | p50 ms | p95 ms | p99 ms | max ms |")
    print("|---|---|---|---|---|---|")
    table = [(f"frame arrival → row updated, {kind}", values) for kind, values in sorted(latencies.items())]
    table.append(("commit → row updated, all", commit_to_screen))
    for name, values in table:
        print(
            f"| {name} | {len(values)} | {statistics.median(values):.1f} | {percentile(values, 0.95):.1f} "
            f"| {percentile(values, 0.99):.1f} | {max(values):.1f} |"
        )
    print()
    print(
        f"long tasks (> 50 ms) on the main thread: {len(long_tasks)},"
        f" longest {max(long_tasks, default=0):.0f} ms"
    )
    print(
        f"stream connections the page opened: {len(streams)}"
        f" ({sorted({url.split('?')[0] for url in streams})})"
    )


def _shown_key(change: dict) -> tuple:
    """What a row shows of a change: its status, and its progress while running."""
    progress = change.get("progress")
    running = change["status"] == "RUNNING" and progress is not None
    return (change["task_id"], change["status"], round(progress, 2) if running else None)


def _epoch_ms(timestamp: str) -> float:
    return datetime.datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp() * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--finished", type=int, default=1000)
    parser.add_argument("--live", type=int, default=50)
    parser.add_argument("--step-seconds", type=float, default=1.0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="taskgate-bench-") as work:
        measure(args.finished, args.live, args.step_seconds, pathlib.Path(work))
    return 0


if __name__ == "__main__":
    sys.exit(main())
