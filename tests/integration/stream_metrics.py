"""Reading the stream counters the admin server and the gateway publish on ``GET /metrics``."""

import httpx
from prometheus_client.parser import text_string_to_metric_families


def metric_value(metrics_url: str, name: str, **labels: str) -> float:
    """Return a sample's value from a Prometheus text endpoint (0.0 when it is absent)."""
    response = httpx.get(metrics_url, timeout=30)
    response.raise_for_status()
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


def admin_metric(stack, name: str, **labels: str) -> float:
    """Return one of the admin server's stream metrics."""
    return metric_value(stack.orchestrator.admin_url + "/metrics", name, **labels)


def gateway_open_streams(stack) -> float:
    """Return how many event streams the gateway's workers hold open."""
    return metric_value(stack.url + "/metrics", "taskgate_open_streams")
