"""Settings from the environment (one clear line per problem) and log lines (ids bound, personal data and secrets masked)."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog

from shared.observability.logging import bind_ids, bound_ids, clear_ids, configure_logging, get_logger, mask
from shared.settings import (
    MIN_SECRET_LENGTH,
    PLACEHOLDER_SECRETS,
    STRONG_SECRETS,
    ConfigurationError,
    load_settings,
    refuse_weak_secrets,
    require,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """An environment without any of this system's variables."""
    for name in list(os.environ):
        if name.split("_")[0] in {"AMQP", "DATABASE", "REWIX", "WC", "INGEST", "POLL", "SHOP", "SYNC", "ADMIN", "LOG"}:
            monkeypatch.delenv(name)
    return monkeypatch


# -- settings --------------------------------------------------------------------------------------


def test_defaults_follow_the_contract(environment: pytest.MonkeyPatch) -> None:
    settings = load_settings()
    assert settings.amqp_url == "amqp://guest:guest@localhost:5672/%2F"
    assert (settings.ingest_host, settings.ingest_port, settings.admin_port) == ("0.0.0.0", 8080, 8081)
    assert (settings.poll_interval_seconds, settings.shop_catchup_interval_seconds) == (60, 300)
    assert settings.sync_retry_delays == [5, 30, 120, 600, 1800, 3600]
    assert (settings.log_level, settings.log_format) == ("INFO", "json")
    # Worker endpoints: this machine only, and a port of each worker's own.
    assert settings.metrics_host == "127.0.0.1" and settings.metrics_port is None
    assert settings.worker_metrics_port("supplier_sync") == 9100
    assert settings.worker_metrics_port("status_poller") == 9101


def test_values_come_from_the_environment(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("SYNC_RETRY_DELAYS", "1, 2,4")
    environment.setenv("REWIX_API_URL", "https://supplier.example.com/")
    environment.setenv("WC_WEBHOOK_SECRET", "s3cret")
    environment.setenv("INGEST_PORT", "9090")
    settings = load_settings()
    assert settings.sync_retry_delays == [1, 2, 4]
    assert settings.rewix_api_url == "https://supplier.example.com"
    assert settings.secret("wc_webhook_secret") == "s3cret"
    assert settings.ingest_port == 9090
    assert "s3cret" not in repr(settings) and "s3cret" not in str(settings.model_dump())


@pytest.mark.parametrize("name", ["WC_WEBHOOK_SECRET", "REWIX_API_URL", "ADMIN_TOKEN"])
def test_a_missing_required_variable_is_one_line_naming_it(environment: pytest.MonkeyPatch, name: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        require(load_settings(), "DATABASE_URL", name)
    message = str(raised.value.code)
    assert name in message and "\n" not in message


@pytest.mark.parametrize(
    ("name", "value"),
    [("INGEST_PORT", "eighty"), ("LOG_FORMAT", "xml"), ("SYNC_RETRY_DELAYS", "5,0,30"), ("SYNC_RETRY_DELAYS", "5,x"),
     ("POLL_INTERVAL_SECONDS", "0")],
)
def test_a_bad_value_is_one_line_naming_the_variable(environment: pytest.MonkeyPatch, name: str, value: str) -> None:
    environment.setenv(name, value)
    with pytest.raises(ConfigurationError) as raised:
        load_settings()
    message = str(raised.value.code)
    assert name in message and "\n" not in message


def test_a_service_started_with_a_bad_value_exits_with_one_line(environment: pytest.MonkeyPatch) -> None:
    env = {**os.environ, "WC_WEBHOOK_SECRET": "s3cret", "INGEST_PORT": "eighty"}
    result = subprocess.run([sys.executable, "-m", "services.ingest"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=30)
    assert result.returncode != 0
    [line] = result.stderr.strip().splitlines()
    assert "INGEST_PORT" in line and "s3cret" not in line


# -- weak secrets ----------------------------------------------------------------------------------

STRONG = "a" * MIN_SECRET_LENGTH


def env_example() -> dict[str, str]:
    values = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip()
    return values


def test_the_placeholders_are_the_ones_env_example_ships() -> None:
    example = env_example()
    assert set(PLACEHOLDER_SECRETS) == set(STRONG_SECRETS)
    # The webhook secret ships as its placeholder; ADMIN_TOKEN ships empty, so that the admin
    # container runs (the page refusing everyone) until someone sets one.
    assert example["WC_WEBHOOK_SECRET"] == PLACEHOLDER_SECRETS["WC_WEBHOOK_SECRET"]
    assert example["ADMIN_TOKEN"] == ""
    # A placeholder long enough that only the placeholder rule can catch it.
    assert all(len(value) >= MIN_SECRET_LENGTH for value in PLACEHOLDER_SECRETS.values())


@pytest.mark.parametrize("name", STRONG_SECRETS)
@pytest.mark.parametrize("weak", ["short", "x" * (MIN_SECRET_LENGTH - 1), "placeholder"])
def test_a_weak_secret_is_refused_in_one_line_naming_it(environment: pytest.MonkeyPatch, name: str,
                                                        weak: str) -> None:
    value = PLACEHOLDER_SECRETS[name] if weak == "placeholder" else weak
    environment.setenv(name, value)
    for check in (require, refuse_weak_secrets):
        with pytest.raises(ConfigurationError) as raised:
            check(load_settings(), name)
        message = str(raised.value.code)
        assert name in message and "\n" not in message and value not in message


@pytest.mark.parametrize("name", STRONG_SECRETS)
def test_a_strong_secret_passes_and_an_unset_one_is_left_to_require(environment: pytest.MonkeyPatch,
                                                                    name: str) -> None:
    assert refuse_weak_secrets(load_settings(), name)  # unset: not this rule's business
    environment.setenv(name, STRONG)
    settings = require(load_settings(), name)
    assert settings.secret(name.lower()) == STRONG


def test_other_required_values_are_not_held_to_the_secret_rule(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("WC_CONSUMER_SECRET", "cs_short")
    assert require(load_settings(), "WC_CONSUMER_SECRET").secret("wc_consumer_secret") == "cs_short"


# -- logging ---------------------------------------------------------------------------------------


class Captured(io.StringIO):
    """What configure_logging writes to stderr."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        super().__init__()
        self._monkeypatch = monkeypatch

    def configure(self, fmt: str, level: str = "INFO") -> None:
        # Inside the test: pytest puts its own sys.stderr back between setup and call.
        self._monkeypatch.setattr(sys, "stderr", self)
        configure_logging(level, fmt)


@pytest.fixture
def log_stream(monkeypatch: pytest.MonkeyPatch) -> Iterator[Captured]:
    import logging
    import threading

    saved = structlog.get_config()
    # configure_logging also sets the standard library's handler and the exception hooks.
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)
    monkeypatch.setattr(logging.getLogger(), "handlers", list(logging.getLogger().handlers))
    yield Captured(monkeypatch)
    clear_ids()
    structlog.configure(**saved)


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_one_json_line_per_event_with_level_and_time(log_stream: Captured) -> None:
    log_stream.configure("json")
    log = get_logger("test")
    log.debug("not shown")
    log.info("webhook", topic="order.updated", outcome="published", messages=2)
    [line] = lines(log_stream)
    assert line["event"] == "webhook" and line["level"] == "info" and line["timestamp"].endswith("Z")
    assert (line["topic"], line["outcome"], line["messages"]) == ("order.updated", "published", 2)


def test_bound_ids_appear_on_every_line_until_unbound(log_stream: Captured) -> None:
    log_stream.configure("json")
    log = get_logger("test")
    with bound_ids(order_id=812, message_id="abc"):
        log.info("first")
        log.warning("second")
    log.info("third")
    bind_ids(order_id=9)
    log.info("fourth")
    first, second, third, fourth = lines(log_stream)
    assert first["order_id"] == second["order_id"] == 812 and first["message_id"] == "abc"
    assert "order_id" not in third
    assert fourth["order_id"] == 9


def test_personal_data_is_masked_wherever_it_sits(log_stream: Captured) -> None:
    log_stream.configure("json")
    get_logger("test").info(
        "order",
        name="Zoë Müller-Ørsted",
        email="zoe.muller@example.com",
        phone="+48 42 123 45 67",
        recipient={"name": "Zoë Müller", "address_1": "ul. Piotrkowska 104/2", "postcode": "90-926",
                   "company": "Ørsted ApS", "city": "Łódź"},
        billing={"first_name": "Zoë", "last_name": "Müller", "email": "z@example.com"},
        lines=[{"address": "Via Roma 1"}],
        customer_note="Ring twice, ask for Zoë",
        order_id=812,
    )
    text = log_stream.getvalue()
    for private in ("Müller", "Zoë", "zoe.muller", "123 45", "Piotrkowska", "90-926", "Ørsted", "Via Roma", "Ring twice"):
        assert private not in text, private
    [line] = lines(log_stream)
    assert line["name"] == "Z***d" and line["recipient"]["address_1"] == "u***2"
    assert line["order_id"] == 812 and line["recipient"]["city"] == "Łódź"  # a city alone names nobody


def test_secrets_are_replaced(log_stream: Captured) -> None:
    log_stream.configure("json")
    get_logger("test").info(
        "settings",
        password="hunter2",
        wc_webhook_secret="wh-s3cr3t",
        rewix_api_password="pw-0001",
        authorization="Basic dXNlcjpwdw==",
        amqp_url="amqp://rewix:mq-pass@rabbitmq:5672/%2F",
        database_url="postgresql://rewix:pg-pass@postgres/rewix_sync",
        headers={"Authorization": "Bearer tok-123", "Accept": "application/json"},
    )
    text = log_stream.getvalue()
    for secret in ("hunter2", "wh-s3cr3t", "pw-0001", "dXNlcjpwdw", "mq-pass", "pg-pass", "tok-123"):
        assert secret not in text, secret
    [line] = lines(log_stream)
    assert line["password"] == "[secret]" and line["headers"] == {"Authorization": "[secret]", "Accept": "application/json"}


def test_the_keys_of_both_outside_apis_and_signatures_are_replaced(log_stream: Captured) -> None:
    log_stream.configure("json")
    get_logger("test").info("call", consumer_key="ck_live_4f2a", wc_consumer_key="ck_live_5b3c",
                            rewix_api_key="rx-key-77", signature="c2lnbmF0dXJl", oauth_signature="b2F1dGg=",
                            params={"oauth_consumer_key": "ck_x", "oauth_signature": "sig-in-query"})
    text = log_stream.getvalue()
    for secret in ("ck_live_4f2a", "ck_live_5b3c", "rx-key-77", "c2lnbmF0dXJl", "b2F1dGg=", "sig-in-query"):
        assert secret not in text, secret
    [line] = lines(log_stream)
    assert line["consumer_key"] == line["rewix_api_key"] == line["signature"] == "[secret]"


def test_console_format_masks_too(log_stream: Captured) -> None:
    log_stream.configure("console")
    get_logger("test").info("order", email="zoe.muller@example.com", token="tok-123", order_id=812)
    text = log_stream.getvalue()
    assert "zoe.muller" not in text and "tok-123" not in text and "812" in text


def test_a_console_line_carries_nothing_a_terminal_would_obey(log_stream: Captured) -> None:
    log_stream.configure("console")
    get_logger("test").warning("supplier refused", reason="HTTP 400: bad\x1b[2J recipient\x07\u202e", name="\x1b[31mZoë",
                               order_id=812)
    text = log_stream.getvalue()
    assert "\x1b[2J" not in text and "\x07" not in text and "\u202e" not in text and "\x1b[31m" not in text
    assert "bad[2J recipient" in text


@pytest.mark.parametrize(("value", "masked"), [("Zoë Müller", "Z***r"), ("ab", "***"), ("", "***"), (12345, "1***5"),
                                               ("\x1b[31mZoë\x07", "[***ë")])
def test_mask_keeps_only_the_ends(value: object, masked: str) -> None:
    assert mask(value) == masked


# -- tracebacks and free text go through the same masking ----------------------------------------


def test_a_traceback_is_masked_like_any_field(log_stream: Captured) -> None:
    log_stream.configure("json")
    try:
        raise RuntimeError("cannot reach postgresql://rewix:pg-pass@db/rewix for zoe.muller@example.com")
    except RuntimeError:
        get_logger("test").exception("failed", order_id=812)
    text = log_stream.getvalue()
    assert "pg-pass" not in text and "zoe.muller@example.com" not in text
    [line] = lines(log_stream)
    assert "Traceback" in line["exception"] and "postgresql://rewix:[secret]@db/rewix" in line["exception"]


def test_free_text_reasons_are_masked(log_stream: Captured) -> None:
    log_stream.configure("json")
    get_logger("test").warning(
        "supplier refused", reason="HTTP 400: bad recipient zoe.muller@example.com, +48 42 123 45 67",
        error=ValueError("amqp://rewix:mq-pass@rabbitmq/"), order_id=812,
    )
    text = log_stream.getvalue()
    for private in ("zoe.muller@example.com", "123 45 67", "mq-pass"):
        assert private not in text, private
    [line] = lines(log_stream)
    assert line["reason"] == "HTTP 400: bad recipient [email], [phone]" and line["order_id"] == 812


def test_standard_library_records_are_masked(log_stream: Captured) -> None:
    import logging

    log_stream.configure("json")
    logging.getLogger("gunicorn.error").error("Error handling request: %s", "postgresql://u:pg-pass@db/x")
    assert "pg-pass" not in log_stream.getvalue() and "postgresql://u:[secret]@db/x" in log_stream.getvalue()


def test_an_uncaught_exception_in_a_thread_is_printed_masked(log_stream: Captured) -> None:
    import threading

    log_stream.configure("json")

    def fail() -> None:
        raise ConnectionError("amqp://rewix:mq-pass@rabbitmq/ refused zoe.muller@example.com")

    thread = threading.Thread(target=fail, name="worker-1")
    thread.start()
    thread.join()
    text = log_stream.getvalue()
    assert "Exception in thread worker-1:" in text and "ConnectionError" in text
    assert "mq-pass" not in text and "zoe.muller" not in text
