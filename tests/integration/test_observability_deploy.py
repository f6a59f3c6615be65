"""deploy/prometheus and deploy/grafana against the services that run.

The rules and the scrape configuration must pass `promtool` (Debian's
prometheus package; scripts/test installs it), the rules must fire on the
series they are written for (`promtool test rules`), and every metric a rule
or a dashboard panel names must be served by a running service: ingest,
supplier_sync and status_poller are started here as real processes.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from shared.settings import Settings
from simulators.rewix.server import start_in_thread as start_rewix
from simulators.shop.server import start_in_thread as start_shop
from tests.integration.worker_processes import (
    REWIX_KEY, REWIX_PASSWORD, WC_KEY, WC_SECRET, ServiceProcess, admin_env, ingest_env, worker_env,
)
from tests.support import wait_until

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy/prometheus"
CONFIG = PROMETHEUS / "prometheus.yml"
RULES = PROMETHEUS / "rules/rewix-sync.yml"
RULE_TESTS = PROMETHEUS / "rules/rewix-sync.test.yml"
DASHBOARD = ROOT / "deploy/grafana/rewix-sync.json"
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())

# Series Prometheus makes itself for every target, not served by anyone.
SYNTHETIC = {"up"}
METRIC_NAME = re.compile(r"\b(rewix_[a-z0-9_]+|up)\b")
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",), "summary": ("_sum", "_count")}


def promtool(*args: str) -> subprocess.CompletedProcess:
    path = shutil.which("promtool")
    assert path, "promtool is missing: install Debian's prometheus package (./scripts/test does it with apt)"
    return subprocess.run([path, *args], capture_output=True, text=True, timeout=60, cwd=PROMETHEUS)


def rule_expressions() -> list[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


def panel_expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def names_in(expressions: list[str]) -> set[str]:
    return {name for expr in expressions for name in METRIC_NAME.findall(expr)} - SYNTHETIC


def test_rules_and_scrape_config_pass_promtool():
    rules = promtool("check", "rules", str(RULES))
    assert rules.returncode == 0, rules.stdout + rules.stderr
    assert "SUCCESS" in rules.stdout
    config = promtool("check", "config", str(CONFIG))
    assert config.returncode == 0, config.stdout + config.stderr


def test_rules_fire_on_the_series_they_watch():
    result = promtool("test", "rules", str(RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_the_brief_asks_for_exists():
    alerts = {rule["alert"] for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]}
    assert {
        "RewixDeadLettersWaiting", "RewixLinesShort", "RewixSupplierAccountRefused", "RewixShopWebhookReactivated",
        "RewixShopWebhookMissing", "RewixShopCheckWithoutSuccess", "RewixPollLag", "RewixIngest5xx",
        "RewixServiceDown", "RewixServiceMissing", "RewixSupplierPaymentOverdue", "RewixShopAccountRefused",
    } <= alerts


def test_scrape_config_covers_every_service_on_its_port():
    jobs = {job["job_name"]: job for job in yaml.safe_load(CONFIG.read_text())["scrape_configs"]}
    defaults = Settings()
    # The workers' ports as compose sets them, which are their own defaults as plain processes too.
    expected_ports = {"ingest": defaults.ingest_port,
                      "supplier_sync": int(COMPOSE["services"]["supplier_sync"]["environment"]["METRICS_PORT"]),
                      "status_poller": int(COMPOSE["services"]["status_poller"]["environment"]["METRICS_PORT"]),
                      "admin": defaults.admin_port}
    assert expected_ports["supplier_sync"] == defaults.worker_metrics_port("supplier_sync")
    assert expected_ports["status_poller"] == defaults.worker_metrics_port("status_poller")
    for service, port in expected_ports.items():
        assert service in jobs, f"no scrape job for {service}"
        assert service in COMPOSE["services"], f"scrape job {service} names no compose service"
        (sd,) = jobs[service]["dns_sd_configs"]
        # compose's DNS answers a service name with every replica: --scale needs no edit here.
        assert sd["names"] == [service] and sd["type"] == "A" and sd["port"] == port


@pytest.fixture
def running_services(db: str, broker: str) -> Iterator[dict[str, ServiceProcess]]:
    rewix = start_rewix(api_key=REWIX_KEY, password=REWIX_PASSWORD)
    shop = start_shop(consumer_key=WC_KEY, consumer_secret=WC_SECRET)
    env = worker_env(db, broker, rewix.url, shop.url, SHOP_CATCHUP_INTERVAL_SECONDS="1")
    processes = {
        "ingest": ServiceProcess("services.ingest", ingest_env(db, broker)),
        "supplier_sync": ServiceProcess("services.supplier_sync", env),
        "status_poller": ServiceProcess("services.status_poller", {**env, "METRICS_PORT": str(_other_port(env))}),
        "admin": ServiceProcess("services.admin.cli", admin_env(db, broker), args=("web",)),
    }
    try:
        yield processes
    finally:
        for process in processes.values():
            process.stop()
        shop.stop()
        rewix.stop()


def _other_port(env: dict[str, str]) -> int:
    from tests.integration.worker_processes import free_port

    while (port := free_port()) == int(env["METRICS_PORT"]):
        pass
    return port


def served(text: str) -> tuple[set[str], set[str]]:
    """(names with at least one sample, names declared) in a /metrics answer."""
    with_samples: set[str] = set()
    declared: set[str] = set()
    for family in text_string_to_metric_families(text):
        declared |= {family.name} | {family.name + suffix for suffix in SUFFIXES.get(family.type, ("",))}
        with_samples |= {sample.name for sample in family.samples}
    return with_samples, declared


def test_every_metric_a_rule_or_panel_names_is_served(running_services):
    answers: dict[str, str] = {}

    def all_answer() -> bool:
        for name, process in running_services.items():
            assert process.alive(), f"{name} exited:\n{process.output()}"
            status, body = process.get("/metrics")
            if status != 200:
                return False
            answers[name] = body
        # The catch-up has run once against the shop: its check series exist.
        return "rewix_shop_check_last_success_timestamp_seconds{" in answers["status_poller"]

    wait_until(all_answer, timeout=40, what="every service's /metrics")
    # Every job of the scrape configuration has a running service answering it, unauthenticated.
    jobs = {job["job_name"] for job in yaml.safe_load(CONFIG.read_text())["scrape_configs"]}
    assert jobs == set(running_services)
    assert "rewix_admin_page_duration_seconds" in answers["admin"] and "process_cpu_seconds_total" in answers["admin"]
    with_samples: set[str] = set()
    declared: set[str] = set()
    for body in answers.values():
        samples, names = served(body)
        with_samples |= samples
        declared |= names | samples

    # An alert on a metric nobody serves never fires: each must have a sample already.
    missing_for_rules = names_in(rule_expressions()) - with_samples
    assert not missing_for_rules, f"rules name metrics no service serves: {sorted(missing_for_rules)}"
    # Every metric the operations guide names is served too.
    guide = set(re.findall(r"\b(rewix_[a-z_]+)", (ROOT / "docs/operations.md").read_text()))
    assert len(guide) >= 20
    missing_in_guide = guide - declared
    assert not missing_in_guide, f"docs/operations.md names metrics no service serves: {sorted(missing_in_guide)}"
    missing_for_panels = names_in(panel_expressions()) - declared
    assert not missing_for_panels, f"panels name metrics no service serves: {sorted(missing_for_panels)}"
    assert len(names_in(panel_expressions())) >= 20
