"""The reverse proxy of compose's `proxy` profile, read against ingest and its documentation."""
from __future__ import annotations

import re
from pathlib import Path

import yaml

from services.ingest.app import MAX_BODY, WEBHOOK_PATH

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
PROXY = COMPOSE["services"]["ingest-proxy"]
CONF = (ROOT / "deploy/nginx/ingest.conf").read_text()


def directive(name: str) -> list[str]:
    return re.findall(rf"^\s*{name}\s+([^;]+);", CONF, re.M)


def test_the_profile_mounts_the_configuration_and_waits_for_a_healthy_ingest() -> None:
    assert PROXY["profiles"] == ["proxy"]
    mounts = {m.split(":")[1]: m.split(":")[0] for m in PROXY["volumes"]}
    assert (ROOT / mounts["/etc/nginx/conf.d/default.conf"]).resolve() == (ROOT / "deploy/nginx/ingest.conf").resolve()
    assert (ROOT / mounts["/etc/nginx/tls"]).is_dir()
    assert PROXY["depends_on"] == {"ingest": {"condition": "service_healthy"}}
    assert PROXY["ports"] == ["${PROXY_HTTPS_PORT:-443}:443", "${PROXY_HTTP_PORT:-80}:80"]
    # certbot's webroot, served on port 80.
    assert (ROOT / mounts["/var/www/acme"]).is_dir()


def test_only_the_webhook_path_is_forwarded_to_ingest() -> None:
    ingest_port = COMPOSE["services"]["ingest"]["environment"]["INGEST_PORT"]
    # The name goes through a variable, so nginx resolves it per request (with Docker's DNS,
    # briefly cached): ingest recreated at a new address is found without restarting nginx.
    assert directive("proxy_pass") == ["$ingest"]
    assert directive("set") == [f"$ingest             http://ingest:{ingest_port}"]
    [resolver] = directive("resolver")
    assert resolver.split()[0] == "127.0.0.11" and "valid=10s" in resolver
    https = CONF[CONF.index("listen 443"):]
    locations = re.findall(r"^\s*location\s+([^{]+?)\s*\{", https, re.M)
    assert locations == [f"= {WEBHOOK_PATH}", "/"]
    catch_all = https[https.index("location / {"):]
    assert "return 404;" in catch_all and "proxy_pass" not in catch_all
    # Port 80: certbot's challenges from the mounted webroot, every other path redirected to https.
    plain = CONF[CONF.index("listen 80"):CONF.index("listen 443")]
    assert re.findall(r"^\s*location\s+([^{]+?)\s*\{", plain, re.M) == ["^~ /.well-known/acme-challenge/", "/"]
    assert "root /var/www/acme;" in plain and "return 301 https://$host$request_uri;" in plain
    assert "proxy_pass" not in plain


def test_slow_clients_time_out_in_seconds_and_bodies_are_buffered_and_capped() -> None:
    for name in ("client_header_timeout", "client_body_timeout", "send_timeout"):
        [value] = directive(name)
        assert value.endswith("s") and int(value[:-1]) <= 10, name
    assert directive("proxy_request_buffering") == ["on"]
    assert directive("client_max_body_size") == [f"{MAX_BODY // (1024 * 1024)}m"]
    [read_timeout] = directive("proxy_read_timeout")
    assert int(read_timeout[:-1]) < 60  # below WooCommerce's own timeout
    assert directive("ssl_certificate") == ["/etc/nginx/tls/fullchain.pem"]


def test_the_documentation_shows_the_configuration_as_shipped() -> None:
    assert CONF in (ROOT / "docs/reverse-proxy.md").read_text()
