"""The Grafana dashboard and the Prometheus alerts name only metrics the API and the worker serve."""

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from payment_service.settings import WorkerSettings
from payment_service.worker.main import serve_metrics
from tests.conftest import REPO_ROOT, free_tcp_ports

DASHBOARD = REPO_ROOT / "deploy" / "grafana" / "payment-service.json"
ALERTS = REPO_ROOT / "deploy" / "prometheus" / "alerts.yaml"
OPERATIONS = REPO_ROOT / "docs" / "operations.md"
METRIC_NAME = re.compile(r"\bpayment_service_[a-z0-9_]+\b")
# What a scrape shows of each family, by its type.
SAMPLE_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
}


def dashboard_expressions() -> list[str]:
    document: dict[str, Any] = orjson.loads(DASHBOARD.read_bytes())
    return [target["expr"] for panel in document["panels"] for target in panel.get("targets", [])]


def alert_rules() -> list[dict[str, Any]]:
    document: dict[str, Any] = yaml.safe_load(ALERTS.read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def served_names(exposition: str) -> set[str]:
    return {
        family.name + suffix
        for family in text_string_to_metric_families(exposition)
        for suffix in SAMPLE_SUFFIXES.get(family.type, ("",))
    }


def heading_anchors(markdown: str) -> set[str]:
    """GitHub's anchors of the document's headings: lower case, spaces to dashes, punctuation dropped."""
    return {
        re.sub(r"[^\w\- ]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in markdown.splitlines()
        if line.startswith("#")
    }


@pytest.fixture
def worker_metrics_url() -> str:
    """The worker's own metrics endpoint (a daemon thread serving the default registry, as in production)."""
    (port,) = free_tcp_ports(1)
    serve_metrics(WorkerSettings(metrics_host="127.0.0.1", metrics_port=port))
    return f"http://127.0.0.1:{port}/metrics"


class TestMonitoring:
    async def test_every_metric_the_dashboard_and_the_alerts_name_is_served_by_the_api_or_the_worker(
        self, api_client: httpx.AsyncClient, worker_metrics_url: str
    ) -> None:
        api = (await api_client.get("/metrics")).text
        async with httpx.AsyncClient(timeout=5) as client:
            worker = (await client.get(worker_metrics_url)).text
        served = served_names(api) | served_names(worker)
        expressions = [*dashboard_expressions(), *(rule["expr"] for rule in alert_rules())]
        named = {name for expr in expressions for name in METRIC_NAME.findall(expr)}
        assert named, "no metric named"
        assert sorted(named - served) == []

    def test_the_dashboard_covers_payments_gateway_unknown_held_outbox_lag_dlq_refunds_and_webhooks(self) -> None:
        named = {name for expr in dashboard_expressions() for name in METRIC_NAME.findall(expr)}
        assert named >= {
            "payment_service_payments_total",
            "payment_service_gateway_request_seconds_bucket",
            "payment_service_unknown_payments",
            "payment_service_outbox_backlog",
            "payment_service_outbox_oldest_age_seconds",
            "payment_service_consumer_lag",
            "payment_service_dlq_records_total",
            "payment_service_reconciler_unconfirmed_matches_total",
            "payment_service_order_refused_payments_total",
            "payment_service_gateway_clock_skew_seconds",
            "payment_service_refunds_total",
            "payment_service_unsettled_refunds",
            "payment_service_charge_reversals_total",
            "payment_service_webhook_notifications_total",
        }
        assert any('status="held_for_review"' in expr for expr in dashboard_expressions())

    def test_every_alert_links_a_runbook_section_of_the_operations_guide(self) -> None:
        anchors = heading_anchors(OPERATIONS.read_text())
        for rule in alert_rules():
            path, _, anchor = rule["annotations"]["runbook_url"].partition("#")
            assert (REPO_ROOT / path) == OPERATIONS, rule["alert"]
            assert anchor in anchors, rule["alert"]
            assert rule["labels"]["severity"] in {"page", "ticket"}

    def test_promtool_accepts_the_alert_rules(self) -> None:
        promtool = shutil.which("promtool")
        if promtool is None:
            pytest.skip("promtool is not installed (Debian: apt-get install prometheus); the rules were not checked")
        result = subprocess.run(  # noqa: S603 - a fixed tool on a file of this repository
            [promtool, "check", "rules", str(ALERTS)], capture_output=True, text=True, timeout=60, check=False
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout


def test_heading_anchors_follow_githubs_rules() -> None:
    assert heading_anchors("## Alerts and runbooks\n### PaymentServiceOutboxStuck\n") == {
        "alerts-and-runbooks",
        "paymentserviceoutboxstuck",
    }
    assert Path(OPERATIONS).is_file()
