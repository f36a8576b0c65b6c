"""``GET /metrics`` under gunicorn: every worker's counts add up, in gevent and gthread workers."""

import concurrent.futures
import os
import pathlib
import re
import signal
import threading

import httpx
import pytest

from tests.integration.processes import Gateway
from tests.integration.processes import base_env
from tests.integration.processes import create_api_key
from tests.integration.processes import start_gateway
from tests.integration.processes import start_stack
from tests.integration.processes import wait_until

METRICS_TOKEN = "metrics-token-for-tests-0123"
BATCH = 20


@pytest.fixture(scope="module")
def metrics_stack(tmp_path_factory, redis_server):
    """A stack whose gevent gateway has two workers, a metrics token and a known temp directory.

    Two workers need Redis (gateway.settings), which then holds the limits both count on.
    """
    tmp = tmp_path_factory.mktemp("metrics")
    (tmp / "gevent").mkdir()
    running = start_stack(
        tmp,
        TMPDIR=str(tmp / "gevent"),
        TASKGATE_METRICS_TOKEN=METRICS_TOKEN,
        TASKGATE_REDIS_URL=redis_server.url,
        TASKGATE_GATEWAY_WORKERS="2",
    )
    yield running
    running.stop()


@pytest.fixture(scope="module")
def gthread_gateway(metrics_stack, tmp_path_factory):
    """A second gateway on the same orchestrator, with two gthread workers."""
    tmp = tmp_path_factory.mktemp("gthread")
    env = {
        **metrics_stack.env,
        "TASKGATE_GATEWAY_WORKER_CLASS": "gthread",
        "TASKGATE_GATEWAY_BIND": base_env(tmp)["TASKGATE_GATEWAY_BIND"],
        "TMPDIR": str(tmp),
    }
    gateway = Gateway(
        env=env, url="http://" + env["TASKGATE_GATEWAY_BIND"], log_path=tmp / "gateway.log"
    ).start()
    yield gateway
    gateway.stop()


@pytest.fixture(params=["gevent", "gthread"])
def gateway(request, metrics_stack) -> Gateway:
    """Each gateway in turn: gevent (the stack's own) and gthread."""
    if request.param == "gevent":
        return metrics_stack.gateway
    return request.getfixturevalue("gthread_gateway")


def scrape(url: str) -> str:
    response = httpx.get(url + "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert response.status_code == 200, response.text
    return response.text


def value(text: str, series: str) -> float:
    """Return one series' value from a scrape (0 when absent)."""
    pattern = re.compile(rf"^{re.escape(series)} (\S+)$", re.MULTILINE)
    match = pattern.search(text)
    return float(match.group(1)) if match else 0.0


def metrics_directory(gateway: Gateway) -> pathlib.Path:
    """Return the metrics directory the gateway's gunicorn master made for its run."""
    (directory,) = pathlib.Path(gateway.env["TMPDIR"]).glob("taskgate-metrics-*")
    return directory


def worker_pids(gateway: Gateway) -> set[int]:
    """Return the pids of the workers that have counted requests, from their metrics files."""
    return {int(path.stem.rsplit("_", 1)[1]) for path in metrics_directory(gateway).glob("counter_*.db")}


def worker_processes(gateway: Gateway) -> list[int]:
    """Return the pids of the gunicorn master's children: its workers."""
    master = str(gateway.process.pid)
    children = []
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == master:
            children.append(int(stat.parent.name))
    return sorted(children)


def send_health_requests(url: str, count: int) -> None:
    """Send ``count`` requests at once, each on a new connection."""
    with (
        httpx.Client(limits=httpx.Limits(max_keepalive_connections=0)) as client,
        concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool,
    ):
        assert set(pool.map(lambda _: client.get(url + "/health").status_code, range(count))) == {200}


HEALTH_OK = 'taskgate_http_requests_total{method="GET",route="/health",status="200"}'


def test_requests_spread_over_two_workers_add_up(gateway) -> None:
    workers = worker_processes(gateway)
    assert len(workers) == 2
    before = value(scrape(gateway.url), HEALTH_OK)
    # With one worker stopped, the other accepts every connection: half the requests go to each.
    for stopped in workers:
        os.kill(stopped, signal.SIGSTOP)
        try:
            send_health_requests(gateway.url, BATCH)
        finally:
            os.kill(stopped, signal.SIGCONT)
    assert worker_pids(gateway) >= set(workers)
    # Each scrape may be answered by either worker: each must show the sum of both.
    for _ in range(6):
        assert value(scrape(gateway.url), HEALTH_OK) == before + 2 * BATCH


def test_counts_survive_a_worker_s_death(gateway) -> None:
    send_health_requests(gateway.url, 4)
    total = value(scrape(gateway.url), HEALTH_OK)
    victim = worker_processes(gateway)[0]
    live_gauge = metrics_directory(gateway) / f"gauge_livesum_{victim}.db"
    assert live_gauge.exists()
    os.kill(victim, signal.SIGKILL)
    # gunicorn's child_exit hook drops the dead worker's live gauges; its counters stay in the sums.
    wait_until(lambda: not live_gauge.exists(), timeout=10, what="the dead worker's gauges to go")
    send_health_requests(gateway.url, 1)
    assert value(scrape(gateway.url), HEALTH_OK) == total + 1


def test_latency_failures_and_auth_refusals_are_counted(metrics_stack) -> None:
    url = metrics_stack.url
    key = create_api_key(metrics_stack.env, "metrics@example.com")
    before = scrape(url)
    httpx.get(url + "/api/v1/tasks/no-such-task", headers={"X-API-Key": key})
    httpx.get(url + "/api/v1/tasks")
    after = scrape(url)
    for series in (
        'taskgate_upstream_errors_total{code="NOT_FOUND"}',
        'taskgate_auth_failures_total{reason="missing"}',
        'taskgate_http_requests_total{method="GET",route="/api/v1/tasks/{task_id}",status="404"}',
        'taskgate_http_request_duration_seconds_count{method="GET",route="/api/v1/tasks/{task_id}"}',
    ):
        assert value(after, series) == value(before, series) + 1, series


def test_open_streams_are_counted_across_workers(metrics_stack) -> None:
    url = metrics_stack.url
    headers = {"X-API-Key": create_api_key(metrics_stack.env, "s@example.com")}
    with httpx.Client(base_url=url, headers=headers) as client:
        task_id = client.post("/api/v1/tasks", json={"query": "Hold on"}).json()["task_id"]
        assert client.post(f"/api/v1/tasks/{task_id}/pause").status_code == 202
    base = value(scrape(url), "taskgate_open_streams")
    first_frame = threading.Event()

    def follow() -> None:
        stream_url = f"{url}/api/v1/stream/sse?workflow_id={task_id}"
        with httpx.stream("GET", stream_url, headers=headers, timeout=30) as stream:
            for _ in stream.iter_lines():
                first_frame.set()

    follower = threading.Thread(target=follow)
    follower.start()
    assert first_frame.wait(timeout=10)
    wait_until(
        lambda: value(scrape(url), "taskgate_open_streams") == base + 1, timeout=10, what="one open stream"
    )
    assert httpx.post(f"{url}/api/v1/tasks/{task_id}/cancel", headers=headers).status_code == 202
    follower.join(timeout=10)
    assert not follower.is_alive()
    wait_until(lambda: value(scrape(url), "taskgate_open_streams") == base, timeout=10, what="no open stream")


def test_metrics_need_the_configured_token(metrics_stack) -> None:
    response = httpx.get(metrics_stack.url + "/metrics")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="taskgate"'
    assert "taskgate_" not in response.text


def test_a_stopped_gateway_removes_its_metrics_directory(tmp_path) -> None:
    gateway = start_gateway(tmp_path, TMPDIR=str(tmp_path), TASKGATE_GATEWAY_WORKERS="1")
    directory = metrics_directory(gateway)
    assert gateway.stop() == 0
    assert not directory.exists()
