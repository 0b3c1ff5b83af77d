"""Every metric the Grafana dashboard and the PrometheusRule query is one realtime_sio exposes: checked against a
fresh registry from realtime_sio.metrics.create() and against the /metrics of a real running server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from realtime_sio import metrics as metrics_module
from tests.ops.helm_tool import CHART, Values, find, render
from tests.ops.promql_names import grafana_variable_names, metric_names, sample_names
from tests.support import API_KEY, Client, ServerProcess

DASHBOARD = CHART / "dashboards" / "realtime-sio.json"
# Alerts that by design read metrics of other exporters: Prometheus's own scrape status and kube-state-metrics.
EXTERNAL_ALERT_METRICS = {"up", "kube_pod_container_status_restarts_total"}


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def dashboard_queries() -> dict[str, str]:
    """'panel title / refId' → PromQL of every dashboard target."""
    dashboard = json.loads(DASHBOARD.read_text())
    return {
        f"{panel['title']} / {target['refId']}": target["expr"]
        for panel in _panels(dashboard["panels"])
        for target in panel.get("targets", [])
    }


def dashboard_metric_names() -> set[str]:
    """Metric names read by the dashboard's panels and template variables."""
    dashboard = json.loads(DASHBOARD.read_text())
    names = set().union(*(metric_names(expr) for expr in dashboard_queries().values()))
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]["query"] if isinstance(variable["query"], dict) else variable["query"]
            names |= grafana_variable_names(query)
    return names


def alert_rules(helm: str) -> dict[str, str]:
    """Alert name → PromQL of the chart's PrometheusRule."""
    docs = render(helm, Values(sets=("prometheusRule.enabled=true",)))
    rule = find(docs, "PrometheusRule")
    return {r["alert"]: r["expr"] for group in rule["spec"]["groups"] for r in group["rules"]}


def exposed_by_code() -> set[str]:
    """Sample names a fresh realtime_sio registry can expose (labelled children or not)."""
    return sample_names(metrics_module.create(CollectorRegistry(auto_describe=True)).registry.collect())


def test_dashboard_queries_parse_and_read_only_exposed_metrics() -> None:
    """Each dashboard query is valid PromQL and every metric it reads is exposed by realtime_sio.metrics."""
    queries = dashboard_queries()
    assert len(queries) >= 15
    unknown = dashboard_metric_names() - exposed_by_code()
    assert not unknown, f"dashboard reads metrics realtime_sio does not expose: {sorted(unknown)}"


def test_dashboard_shows_what_operators_need() -> None:
    """Connections, connect/disconnect rates, deliveries, latency p50/p99, errors by reason, Redis and draining."""
    used = dashboard_metric_names()
    required = {
        "websocket_connections_total",
        "realtime_sio_connects_total",
        "realtime_sio_disconnects_total",
        "realtime_sio_messages_delivered_total",
        "realtime_sio_delivery_latency_seconds_bucket",
        "realtime_sio_auth_failures_total",
        "realtime_sio_bad_input_total",
        "realtime_sio_redis_messages_rejected_total",
        "realtime_sio_redis_up",
        "realtime_sio_draining",
    }
    assert required <= used, required - used
    exprs = list(dashboard_queries().values())
    assert any("histogram_quantile(0.5," in e for e in exprs) and any("histogram_quantile(0.99," in e for e in exprs)
    assert all("by (reason)" in e for e in exprs if "auth_failures" in e or "bad_input" in e)


def test_alert_rules_parse_and_read_only_exposed_metrics(helm: str) -> None:
    """Each alert expression is valid PromQL reading realtime_sio metrics (plus the listed external ones)."""
    rules = alert_rules(helm)
    used = set().union(*(metric_names(expr) for expr in rules.values()))
    unknown = used - exposed_by_code() - EXTERNAL_ALERT_METRICS
    assert not unknown, f"alerts read metrics realtime_sio does not expose: {sorted(unknown)}"


def test_alerts_cover_the_plans_success_criteria(helm: str) -> None:
    """No connections, failed connects > 0.1%, delivery p99, Redis down and restarting pods each have an alert."""
    rules = alert_rules(helm)
    assert "websocket_connections_total" in rules["RealtimeSioNoConnections"]
    assert 'outcome!="accepted"' in rules["RealtimeSioConnectFailures"] and rules["RealtimeSioConnectFailures"].endswith("> 0.001")
    assert "histogram_quantile(0.99" in rules["RealtimeSioDeliveryLatencyHigh"]
    assert "realtime_sio_redis_up" in rules["RealtimeSioRedisDown"] and rules["RealtimeSioRedisDown"].endswith("== 0")
    assert "kube_pod_container_status_restarts_total" in rules["RealtimeSioPodRestarting"]
    quiet = alert_rules_without_traffic(helm)
    assert "RealtimeSioNoConnections" not in quiet


def alert_rules_without_traffic(helm: str) -> dict[str, str]:
    docs = render(helm, Values(sets=("prometheusRule.enabled=true", "prometheusRule.expectTraffic=false")))
    rule = find(docs, "PrometheusRule")
    return {r["alert"]: r["expr"] for group in rule["spec"]["groups"] for r in group["rules"]}


@pytest.fixture
async def live_metrics(server: ServerProcess, clients: Any) -> str:
    """/metrics of a real server after one client connected, joined a channel and received an event."""
    client: Client = clients(server.url)
    await client.connect()
    await client.joined("ops-room")
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {API_KEY}"}) as http:
        async with http.post(f"{server.url}/api/v1/events", json={"channel": "ops-room", "event": "Ping", "data": {}}) as resp:
            assert resp.status == 200
        await client.wait_for("Ping")
        async with http.get(f"{server.url}/metrics") as resp:
            assert resp.status == 200
            return await resp.text()


async def test_live_server_exposes_every_dashboard_and_alert_metric(live_metrics: str, helm: str) -> None:
    """A running realtime_sio's /metrics has a family for every metric the dashboard and alerts read."""
    live = sample_names(text_string_to_metric_families(live_metrics))
    wanted = dashboard_metric_names() | set().union(*(metric_names(e) for e in alert_rules(helm).values()))
    missing = wanted - EXTERNAL_ALERT_METRICS - live
    assert not missing, f"not on the live /metrics: {sorted(missing)}"
    families = {f.name: f for f in text_string_to_metric_families(live_metrics)}
    assert families["websocket_connections_total"].samples[0].value >= 1
