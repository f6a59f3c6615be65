"""The deployment files against the code they deploy.

No Docker engine is needed: docker-compose.yml, the Dockerfile, .env.example and
the scripts are read and checked against the modules, console commands,
endpoints and settings that exist, and every long-running service is started
here as a real process with the compose environment translated to this
machine's broker and database.
"""
from __future__ import annotations

import importlib.util
import os
import re
import secrets
import shlex
import signal
import stat
import subprocess
import sys
import textwrap
import time
import tomllib
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import click
import pika
import pytest
import yaml
from click.testing import CliRunner

from shared.messaging import topology
from shared.settings import Settings
from services.admin.cli import main as cli_main
from tests.support import free_port

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, dict] = COMPOSE["services"]

# docs/interfaces.md, "Configuration".
DOCUMENTED_VARIABLES = {
    "AMQP_URL", "DATABASE_URL", "REWIX_API_URL", "REWIX_API_KEY", "REWIX_API_PASSWORD",
    "WC_WEBHOOK_SECRET", "WC_URL", "WC_CONSUMER_KEY", "WC_CONSUMER_SECRET",
    "INGEST_HOST", "INGEST_PORT", "POLL_INTERVAL_SECONDS", "SHOP_CATCHUP_INTERVAL_SECONDS",
    "SYNC_RETRY_DELAYS", "ADMIN_TOKEN", "ADMIN_PORT", "METRICS_PORT", "LOG_LEVEL", "LOG_FORMAT",
    "POLL_REQUESTS_PER_SECOND", "WC_WEBHOOK_DELIVERY_URL", "SHOP_WEBHOOK_CHECK_INTERVAL_SECONDS",
}
STORE = {"AMQP_URL", "DATABASE_URL"}
REWIX = {"REWIX_API_URL", "REWIX_API_KEY", "REWIX_API_PASSWORD"}
SHOP = {"WC_URL", "WC_CONSUMER_KEY", "WC_CONSUMER_SECRET"}
NEEDS = {
    "migrate": {"DATABASE_URL"},
    "ingest": STORE | {"WC_WEBHOOK_SECRET"},
    "supplier_sync": STORE | REWIX,
    "status_poller": STORE | REWIX | SHOP,
    # ADMIN_TOKEN ships empty: the page runs and refuses everyone until it is set.
    "admin": STORE,
    "demo-feeder": STORE | REWIX | SHOP,
}
APP_SERVICES = ["migrate", "ingest", "supplier_sync", "status_poller", "admin"]
WORKERS = ["supplier_sync", "status_poller"]
DEMO_SERVICES = ["rewix-sim", "shop-sim", "demo-feeder"]
COMPOSE_HOSTS = set(SERVICES)


# --- reading the files ------------------------------------------------------

def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, sep, value = line.partition("=")
            assert sep, f"{path.name}: not NAME=value: {line!r}"
            values[name.strip()] = value.strip()
    return values


ENV_EXAMPLE = read_env_file(ROOT / ".env.example")
# Variables shown commented out (`# NAME=value`): documented, unset by default.
ENV_EXAMPLE_COMMENTED = set(re.findall(r"^#\s*([A-Z][A-Z0-9_]*)=", (ROOT / ".env.example").read_text(), re.M))


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, $NAME and $$, nested."""
    out, i = [], 0
    while i < len(value):
        if value.startswith("$$", i):
            out.append("$")
            i += 2
        elif value.startswith("${", i):
            depth, j = 1, i + 2
            while depth:
                if value.startswith("${", j):
                    depth, j = depth + 1, j + 2
                    continue
                depth -= value[j] == "}"
                j += 1
            name, op, arg = re.fullmatch(r"([A-Za-z_]\w*)(?:(:?[-?])(.*))?", value[i + 2:j - 1], re.S).groups()
            current = env.get(name)
            missing = not current if op and op.startswith(":") else current is None
            if op in (":-", "-"):
                out.append(interpolate(arg, env) if missing else current)
            elif op in (":?", "?"):
                if missing:
                    raise KeyError(f"{name}: {arg}")
                out.append(current)
            else:
                out.append(current or "")
            i = j
        elif (m := re.match(r"\$([A-Za-z_]\w*)", value[i:])):
            out.append(env.get(m.group(1), ""))
            i += m.end()
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


def compose_variables() -> set[str]:
    text = (ROOT / "docker-compose.yml").read_text()
    text = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    return set(re.findall(r"\$\{?([A-Za-z_]\w*)", text.replace("$$", "")))


def env_files(service: dict) -> list[str]:
    files = service.get("env_file", [])
    files = [files] if isinstance(files, (str, dict)) else files
    return [f["path"] if isinstance(f, dict) else f for f in files]


def container_env(name: str, dotenv: dict[str, str] = ENV_EXAMPLE) -> dict[str, str]:
    """What the container of `name` sees when .env holds `dotenv`."""
    service = SERVICES[name]
    env: dict[str, str] = {}
    for file in env_files(service):
        assert file == ".env", f"{name}: unexpected env_file {file}"
        env.update(dotenv)
    environment = service.get("environment", {})
    if isinstance(environment, list):
        environment = dict(item.split("=", 1) for item in environment)
    for key, value in environment.items():
        env[key] = interpolate(str(value), dotenv)
    return env


def command_of(name: str) -> list[str]:
    command = SERVICES[name]["command"]
    return shlex.split(command) if isinstance(command, str) else list(command)


def resolve_click(args: list[str]) -> tuple[click.Command, list[str], list[str]]:
    """The click command `rewix-sync args…` runs, its path and the remaining arguments."""
    command: click.Command = cli_main
    path: list[str] = []
    rest = list(args)
    while isinstance(command, click.Group) and rest and not rest[0].startswith("-"):
        sub = command.commands.get(rest[0])
        assert sub is not None, f"rewix-sync {' '.join(path + rest[:1])}: no such command"
        command, path = sub, path + [rest.pop(0)]
    return command, path, rest


def assert_runnable(argv: list[str]) -> None:
    if argv[:2] == ["python", "-m"]:
        module, options = argv[2], [a for a in argv[3:] if a.startswith("--")]
        spec = importlib.util.find_spec(module)
        assert spec is not None, f"no module {module}"
        assert spec.submodule_search_locations, f"{module} is not a package"
        assert importlib.util.find_spec(f"{module}.__main__"), f"{module} has no __main__"
        if options:
            shown = subprocess.run([sys.executable, "-m", module, "--help"], cwd=ROOT, capture_output=True,
                                   text=True, timeout=30)
            assert shown.returncode == 0, shown.stderr
            for option in options:
                assert option in shown.stdout, f"python -m {module} has no option {option}"
    elif argv[0] == "rewix-sync":
        scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
        assert scripts["rewix-sync"] == "services.admin.cli:main"
        command, path, rest = resolve_click(argv[1:])
        declared = {opt for param in command.params for opt in getattr(param, "opts", [])}
        for token in rest:
            if token.startswith("-"):
                assert token.split("=")[0] in declared, f"rewix-sync {' '.join(path)} has no option {token}"
        result = CliRunner().invoke(cli_main, [*path, "--help"])
        assert result.exit_code == 0, result.output
    else:
        raise AssertionError(f"unknown command {argv}")


# --- docker-compose.yml --------------------------------------------------------

# The services built from this repository (prometheus and alertmanager get arguments, not commands).
BUILT = [n for n in SERVICES if "build" in SERVICES[n]]


@pytest.mark.parametrize("name", [n for n in BUILT if "command" in SERVICES[n]])
def test_every_service_command_exists(name):
    assert_runnable(command_of(name))


def test_the_services_of_the_contract_are_all_there():
    assert command_of("ingest") == ["python", "-m", "services.ingest"]
    assert command_of("supplier_sync") == ["python", "-m", "services.supplier_sync"]
    assert command_of("status_poller") == ["python", "-m", "services.status_poller"]
    assert command_of("migrate") == ["rewix-sync", "db", "upgrade"]
    assert command_of("admin") == ["rewix-sync", "web"]
    assert command_of("demo-feeder")[:2] == ["rewix-sync", "demo"]
    assert SERVICES["rabbitmq"]["image"] == "rabbitmq:3.13-management"
    assert SERVICES["postgres"]["image"] == "postgres:15"
    for name in APP_SERVICES:
        assert SERVICES[name]["build"] == "."
        assert SERVICES[name]["image"] == SERVICES["ingest"]["image"]
    # The demo profile runs the Dockerfile's demo stage: the product plus the simulators and the dev stack.
    for name in DEMO_SERVICES:
        assert SERVICES[name]["build"] == {"context": ".", "target": "demo"}
        assert SERVICES[name]["image"] == SERVICES["rewix-sim"]["image"] != SERVICES["ingest"]["image"]


@pytest.mark.parametrize("name", sorted(NEEDS))
def test_every_variable_a_service_needs_is_provided(name):
    env = container_env(name)
    missing = sorted(v for v in NEEDS[name] if not env.get(v))
    assert not missing, f"{name} gets no {missing}"


def test_the_admin_service_gets_the_page_token_from_env():
    assert container_env("admin", {**ENV_EXAMPLE, "ADMIN_TOKEN": "t" * 40})["ADMIN_TOKEN"] == "t" * 40


def test_store_urls_point_at_the_compose_broker_and_database():
    rabbit_env = SERVICES["rabbitmq"]["environment"]
    pg_env = SERVICES["postgres"]["environment"]
    for name in ("migrate", "ingest", "supplier_sync", "status_poller", "admin", "demo-feeder"):
        env = container_env(name)
        if name != "migrate":
            amqp = urllib.parse.urlsplit(env["AMQP_URL"])
            assert (amqp.scheme, amqp.hostname, amqp.port) == ("amqp", "rabbitmq", 5672)
            assert amqp.username == rabbit_env["RABBITMQ_DEFAULT_USER"]
            assert amqp.password == interpolate(rabbit_env["RABBITMQ_DEFAULT_PASS"], ENV_EXAMPLE)
        db = urllib.parse.urlsplit(env["DATABASE_URL"])
        assert (db.scheme, db.hostname, db.port) == ("postgresql", "postgres", 5432)
        assert db.username == pg_env["POSTGRES_USER"]
        assert db.password == interpolate(pg_env["POSTGRES_PASSWORD"], ENV_EXAMPLE)
        assert db.path == "/" + pg_env["POSTGRES_DB"]


def test_store_urls_in_dotenv_point_the_services_elsewhere():
    dotenv = {**ENV_EXAMPLE, "AMQP_URL": "amqps://u:p@mq.example.com:5671/%2F",
              "DATABASE_URL": "postgresql://u:p@db.example.com/rewix"}
    env = container_env("supplier_sync", dotenv)
    assert env["AMQP_URL"] == dotenv["AMQP_URL"]
    assert env["DATABASE_URL"] == dotenv["DATABASE_URL"]


def test_a_missing_password_stops_compose_with_a_message():
    dotenv = {k: v for k, v in ENV_EXAMPLE.items() if k != "RABBITMQ_PASSWORD"}
    with pytest.raises(KeyError, match="RABBITMQ_PASSWORD"):
        container_env("ingest", dotenv)


def test_every_compose_variable_is_in_env_example():
    missing = compose_variables() - set(ENV_EXAMPLE) - ENV_EXAMPLE_COMMENTED
    assert not missing, f".env.example lacks {sorted(missing)}"


def test_env_example_lists_every_setting_and_nothing_unknown():
    listed = set(ENV_EXAMPLE) | ENV_EXAMPLE_COMMENTED
    assert DOCUMENTED_VARIABLES <= listed, f"missing {sorted(DOCUMENTED_VARIABLES - listed)}"
    settings = {name.upper() for name in Settings.model_fields}
    assert DOCUMENTED_VARIABLES <= settings, f"not read by shared/settings.py: {sorted(DOCUMENTED_VARIABLES - settings)}"
    unknown = listed - settings - compose_variables()
    assert not unknown, f".env.example sets {sorted(unknown)}, which nothing reads"


def test_env_example_is_a_valid_configuration():
    settings = Settings(**{k.lower(): v for k, v in ENV_EXAMPLE.items() if k.lower() in Settings.model_fields})
    assert settings.sync_retry_delays == [5, 30, 120, 600, 1800, 3600]
    assert settings.log_format == "json"


def test_workers_scale():
    for name in SERVICES:
        assert "container_name" not in SERVICES[name], f"{name}: container_name forbids --scale"
    for name in WORKERS:
        assert "ports" not in SERVICES[name], f"{name}: published ports forbid --scale"
        assert SERVICES[name].get("restart") == "unless-stopped"


def test_start_order():
    for name in ("ingest", "supplier_sync", "status_poller", "admin"):
        assert SERVICES[name]["depends_on"] == {
            "rabbitmq": {"condition": "service_healthy"},
            "postgres": {"condition": "service_healthy"},
            "migrate": {"condition": "service_completed_successfully"},
        }, name
    assert SERVICES["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert SERVICES["migrate"]["restart"] == "no"
    for name, service in SERVICES.items():
        for dependency, spec in service.get("depends_on", {}).items():
            assert dependency in SERVICES, f"{name} depends on unknown {dependency}"
            if spec["condition"] == "service_healthy":
                assert "healthcheck" in SERVICES[dependency], f"{name} waits for {dependency}, which has no healthcheck"
            # A service without the profile cannot wait for one that only runs with it.
            assert set(SERVICES[dependency].get("profiles", [])) <= set(service.get("profiles", []))


def test_broker_and_database_healthchecks_and_volume():
    assert SERVICES["rabbitmq"]["healthcheck"]["test"] == ["CMD", "rabbitmq-diagnostics", "-q", "ping"]
    assert SERVICES["postgres"]["healthcheck"]["test"][:2] == ["CMD", "pg_isready"]
    for name, mount in (("postgres", "/var/lib/postgresql/data"), ("rabbitmq", "/var/lib/rabbitmq")):
        volume, target = SERVICES[name]["volumes"][0].split(":")
        assert target == mount and volume in COMPOSE["volumes"], name


def python_check(name: str) -> str:
    test = SERVICES[name]["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"], f"{name}: the image has no curl; check with python"
    compile(test[3], f"{name} healthcheck", "exec")
    return test[3]


def test_ingest_is_published_and_checked_on_readyz():
    env = container_env("ingest")
    port = env["INGEST_PORT"]
    assert env["INGEST_HOST"] == "0.0.0.0"
    assert [p.rsplit(":", 1)[1] for p in SERVICES["ingest"]["ports"]] == [port]
    assert f"http://127.0.0.1:{port}/readyz" in python_check("ingest")
    assert interpolate(SERVICES["ingest"]["ports"][0], ENV_EXAMPLE) == f"{ENV_EXAMPLE['INGEST_PORT']}:{port}"


def test_workers_are_checked_on_readyz_and_publish_no_port():
    for name in WORKERS:
        port = container_env(name)["METRICS_PORT"]
        assert int(port) == Settings(metrics_port=port).metrics_port > 0
        assert f"http://127.0.0.1:{port}/readyz" in python_check(name)
        # Each replica has its own address, so one port inside serves them all: nothing published.
        assert "ports" not in SERVICES[name]
    assert container_env("admin")["INGEST_URL"] == f"http://ingest:{container_env('ingest')['INGEST_PORT']}"


def test_admin_is_published_on_this_machine_only_and_checked():
    env = container_env("admin")
    port = env["ADMIN_PORT"]
    assert env["ADMIN_HOST"] == "0.0.0.0"
    assert "admin_host" in Settings.model_fields  # what `rewix-sync web` binds unless --host says otherwise
    published = [interpolate(p, ENV_EXAMPLE) for p in SERVICES["admin"]["ports"]]
    assert published == [f"127.0.0.1:{ENV_EXAMPLE['ADMIN_PORT']}:{port}"]
    assert f"http://127.0.0.1:{port}/healthz" in python_check("admin")


def test_demo_profile_is_wired_together():
    for name in DEMO_SERVICES:
        assert SERVICES[name]["profiles"] == ["demo"]
    for name in ("rabbitmq", "postgres", *APP_SERVICES):
        assert "profiles" not in SERVICES[name]
    rewix = command_of("rewix-sim")
    shop = command_of("shop-sim")
    assert rewix[rewix.index("--host") + 1] == shop[shop.index("--host") + 1] == "0.0.0.0"
    assert f"{rewix[rewix.index('--port') + 1]}" in python_check("rewix-sim")
    assert f"{shop[shop.index('--port') + 1]}" in python_check("shop-sim")
    # .env.example, as shipped, points the services at the simulators ...
    assert ENV_EXAMPLE["REWIX_API_URL"] == f"http://rewix-sim:{rewix[rewix.index('--port') + 1]}"
    assert ENV_EXAMPLE["WC_URL"] == f"http://shop-sim:{shop[shop.index('--port') + 1]}"
    # ... whose deliveries name that address as their source (ingest refuses any other site's).
    assert shop[shop.index("--site-url") + 1] == ENV_EXAMPLE["WC_URL"]
    # ... which accept the same credentials and sign webhooks with the same secret.
    assert container_env("rewix-sim")["REWIX_SIM_API_KEY"] == ENV_EXAMPLE["REWIX_API_KEY"]
    assert container_env("rewix-sim")["REWIX_SIM_PASSWORD"] == ENV_EXAMPLE["REWIX_API_PASSWORD"]
    shop_env = container_env("shop-sim")
    assert shop_env["SHOP_SIM_CONSUMER_KEY"] == ENV_EXAMPLE["WC_CONSUMER_KEY"]
    assert shop_env["SHOP_SIM_CONSUMER_SECRET"] == ENV_EXAMPLE["WC_CONSUMER_SECRET"]
    assert shop_env["SHOP_SIM_WEBHOOK_SECRET"] == ENV_EXAMPLE["WC_WEBHOOK_SECRET"]
    ingest_port = container_env("ingest")["INGEST_PORT"]
    assert shop[shop.index("--webhook-url") + 1] == f"http://ingest:{ingest_port}/webhooks/woocommerce"
    # WooCommerce checks OAuth signatures against its home URL: the one the services sign for.
    assert shop[shop.index("--site-url") + 1] == ENV_EXAMPLE["WC_URL"]
    # The simulators are reached inside compose's network only: nothing of the demo takes a host port.
    assert not any("ports" in SERVICES[name] for name in DEMO_SERVICES)


def test_every_published_port_is_this_machines_unless_it_must_be_public():
    """Docker's published ports bypass ufw: only the TLS proxy faces the world."""
    for name, service in SERVICES.items():
        for port in service.get("ports", []):
            published = interpolate(port, ENV_EXAMPLE)
            if name == "ingest-proxy":
                assert published.split(":")[-1] in ("443", "80"), published
            else:
                assert published.startswith("127.0.0.1:"), f"{name} publishes {published}"
    # Not 15672, which a RabbitMQ of the host itself may hold.
    assert not interpolate(SERVICES["rabbitmq"]["ports"][0], ENV_EXAMPLE).startswith("127.0.0.1:15672:")


def test_monitoring_profile_runs_prometheus_and_alertmanager_with_volumes():
    for name, mount in (("prometheus", "/prometheus"), ("alertmanager", "/alertmanager")):
        service = SERVICES[name]
        assert service["profiles"] == ["monitoring"] and service["restart"] == "unless-stopped"
        volumes = [v.split(":") for v in service["volumes"]]
        assert any(target == mount and volume in COMPOSE["volumes"] for volume, target, *_ in volumes), name
    assert "./deploy/prometheus:/etc/prometheus:ro" in SERVICES["prometheus"]["volumes"]
    config = yaml.safe_load(interpolate(COMPOSE["configs"]["alertmanager"]["content"], ENV_EXAMPLE))
    [receiver] = config["receivers"]
    assert config["route"]["receiver"] == receiver["name"]
    assert receiver["email_configs"][0]["to"] == ENV_EXAMPLE["ALERT_EMAIL_TO"]
    assert receiver["webhook_configs"][0]["url"] == ENV_EXAMPLE["ALERT_WEBHOOK_URL"]
    assert config["global"]["smtp_smarthost"] == ENV_EXAMPLE["ALERT_SMTP_SMARTHOST"]
    assert SERVICES["alertmanager"]["configs"] == [{"source": "alertmanager",
                                                    "target": "/etc/alertmanager/alertmanager.yml"}]


# --- Dockerfile ----------------------------------------------------------------

def dockerfile() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def dockerignored(path: str) -> bool:
    import fnmatch

    patterns = [p.strip() for p in (ROOT / ".dockerignore").read_text().splitlines()
                if p.strip() and not p.startswith("#")]
    parts = Path(path).parts
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    return any(fnmatch.fnmatch(prefix, pattern.removeprefix("**/")) or fnmatch.fnmatch(prefix, pattern)
               for pattern in patterns for prefix in prefixes)


def test_dockerfile_base_user_and_command():
    instructions = dockerfile()
    assert instructions[0][0] == "FROM" and instructions[0][1].partition(" AS ")[0] == "python:3.11-slim"
    users = [rest for keyword, rest in instructions if keyword == "USER"]
    assert users and users[-1] not in ("root", "0")
    cmd = next(rest for keyword, rest in reversed(instructions) if keyword == "CMD")
    import json

    assert_runnable(json.loads(cmd))


def test_dockerfile_copies_what_exists_and_what_the_package_needs():
    copied: list[str] = []
    for keyword, rest in dockerfile():
        if keyword == "COPY":
            *sources, _target = shlex.split(rest)
            for source in sources:
                assert not source.startswith("--"), "COPY options are not expected here"
                assert (ROOT / source).exists(), f"COPY {source}: no such file"
                assert not dockerignored(source), f"COPY {source}: excluded by .dockerignore"
                copied.append(source)
        if keyword == "RUN":
            words = shlex.split(rest)
            for flag, value in zip(words, words[1:]):
                if flag in ("-r", "--requirement", "-c"):
                    assert value in copied, f"RUN uses {value} before it is copied"
                    assert (ROOT / value).is_file()
            if "install" in words and "." in words:
                assert "--no-deps" in words
                assert "pyproject.toml" in copied
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    for pattern in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]:
        package = pattern.rstrip("*")
        assert package in copied, f"the image lacks the package {package}"
    assert any(k == "RUN" and "-r requirements.lock" in r for k, r in dockerfile())


def dockerfile_stages() -> dict[str, list[tuple[str, str]]]:
    """Stage name -> its instructions, each stage with those of the stage it starts FROM."""
    stages: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for keyword, rest in dockerfile():
        if keyword == "FROM":
            base, _, name = rest.partition(" AS ")
            current = list(stages.get(base.strip(), []))
            stages[name.strip() or base.strip()] = current
        current.append((keyword, rest))
    return stages


def test_the_production_image_carries_no_development_tool():
    stages = dockerfile_stages()
    last = dockerfile_stages_order()[-1]
    assert last == "production"  # what a plain `docker build .` makes

    def copied(stage: str) -> set[str]:
        return {shlex.split(rest)[0] for keyword, rest in stages[stage] if keyword == "COPY"}

    assert {"shared", "services"} <= copied("production")
    assert not copied("production") & {"simulators", "devstack", "bench", "tests"}
    assert {"simulators", "devstack"} <= copied("demo")
    # No module of the product imports the simulators or the dev stack when it loads.
    for path in (ROOT / "services").rglob("*.py"):
        for line in path.read_text().splitlines():
            assert not re.match(r"(from|import) (simulators|devstack)\b", line), f"{path}: {line}"


def dockerfile_stages_order() -> list[str]:
    return [rest.partition(" AS ")[2].strip() or rest for keyword, rest in dockerfile() if keyword == "FROM"]


def test_the_lock_pins_every_dependency():
    pins = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep and version, f"requirements.lock: not pinned: {line}"
            pins[name.lower().replace("_", "-")] = version
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    for requirement in pyproject["project"]["dependencies"]:
        name = re.match(r"[A-Za-z0-9_.-]+", requirement).group(0).lower().replace("_", "-")
        assert name in pins, f"requirements.lock lacks {name}"


# --- scripts ----------------------------------------------------------------------

SCRIPTS = ["scripts/test", "scripts/demo", ".ci/run", "scripts/compose-check"]


@pytest.mark.parametrize("path", SCRIPTS)
def test_scripts_are_executable_bash(path):
    mode = (ROOT / path).stat().st_mode
    assert mode & stat.S_IXUSR, f"{path} is not executable"
    assert (ROOT / path).read_text().startswith("#!/usr/bin/env bash\n")
    subprocess.run(["bash", "-n", str(ROOT / path)], check=True, timeout=10)
    subprocess.run(["bash", "-n", str(ROOT / "scripts/_venv.sh")], check=True, timeout=10)


def test_ci_runs_the_test_command_then_the_compose_check():
    lines = [l for l in (ROOT / ".ci/run").read_text().splitlines() if l.strip() and not l.startswith("#")]
    assert lines[-2:] == ["./scripts/test || exit $?", "exec ./scripts/compose-check"]


def test_the_compose_check_names_no_path_of_this_machine():
    script = (ROOT / "scripts/compose-check").read_text()
    # Every absolute path it names is the system's, a URL path or one inside the image it builds:
    # nothing of the checkout's own machine, so it runs from any clone.
    named = {m for m in re.findall(r'(?:^|[\s"=(:])(/[a-z][\w.-]*)', script, flags=re.M)}
    assert named <= {"/dev", "/etc", "/proc", "/tmp", "/usr", "/debs", "/readyz", "/webhooks"}, named
    assert "--project-directory" in script and "down -v" in script and "trap cleanup EXIT" in script


STUB = textwrap.dedent("""\
    #!/bin/sh
    echo "$(basename "$0") $* @ $(pwd)" >> "$STUB_LOG"
    case "$*" in
        *pytest*--alone=only*) exit "${STUB_SERIAL_PYTEST_STATUS:-$STUB_PYTEST_STATUS}";;
        *pytest*) exit "$STUB_PYTEST_STATUS";;
    esac
    exit 0
    """)


@pytest.fixture
def checkout(tmp_path) -> Iterator[Path]:
    """A copy of the scripts in an empty checkout; python3 on PATH makes a stub .venv."""
    repo = tmp_path / "repo"
    for path in SCRIPTS + ["scripts/_venv.sh", "requirements.lock", "requirements-dev.lock"]:
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_bytes((ROOT / path).read_bytes())
        (repo / path).chmod((ROOT / path).stat().st_mode)
    # The compose check is a stub here: it only says it ran, and fails when told to.
    (repo / "scripts/compose-check").write_text('#!/bin/sh\necho "compose-check @ $(pwd)" >> "$STUB_LOG"\n'
                                                'exit "${STUB_COMPOSE_STATUS:-0}"\n')
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    python3 = bin_dir / "python3"
    python3.write_text(textwrap.dedent(f"""\
        #!/bin/sh
        echo "python3 $* @ $(pwd)" >> "$STUB_LOG"
        [ "$1 $2" = "-m venv" ] || exit 1
        mkdir -p "$3/bin"
        for tool in python rewix-sync; do
            cat > "$3/bin/$tool" <<'EOF'
        {STUB}EOF
            chmod +x "$3/bin/$tool"
        done
        """))
    python3.chmod(0o755)
    yield repo


def run_script(checkout: Path, script: str, *args: str, pytest_status: int = 0, serial_pytest_status: int | None = None,
               compose_status: int = 0) -> tuple[int, list[str]]:
    """Run `script` with stub tools; pytest exits with `pytest_status`, its serial run (the tests that stop
    servers) with `serial_pytest_status` when given."""
    log = checkout.parent / "log"
    log.write_text("")
    env = {**{k: v for k, v in os.environ.items() if k != "TEST_WORKERS"}, "STUB_LOG": str(log), "STUB_PYTEST_STATUS": str(pytest_status),
           "STUB_COMPOSE_STATUS": str(compose_status),
           **({} if serial_pytest_status is None else {"STUB_SERIAL_PYTEST_STATUS": str(serial_pytest_status)}),
           "PATH": f"{checkout.parent / 'bin'}:{os.environ['PATH']}"}
    # Started from elsewhere: the scripts move to the repository root themselves.
    done = subprocess.run([str(checkout / script), *args], cwd=checkout.parent, env=env,
                          capture_output=True, text=True, timeout=60)
    return done.returncode, log.read_text().splitlines()


PARALLEL_RUN = "python -m pytest -q -n 4 --dist loadfile --durations=10 --alone=without"
SERIAL_RUN = "python -m pytest -q --durations=10 --alone=only"


def test_test_command_sets_up_the_venv_and_returns_pytest_status(checkout):
    status, log = run_script(checkout, "scripts/test", "tests/unit", "-k", "x y", pytest_status=1)
    at = f" @ {checkout}"
    assert status == 1
    assert log == [
        f"python3 -m venv .venv{at}",
        f"python -m pip install -q --disable-pip-version-check -r requirements.lock -r requirements-dev.lock{at}",
        f"python -m pip install -q --disable-pip-version-check --no-deps -e .{at}",
        f"{PARALLEL_RUN} tests/unit -k x y{at}",
        f"{SERIAL_RUN} tests/unit -k x y{at}",
    ]
    # No test collected is a failure too, and an existing .venv is reused.
    status, log = run_script(checkout, "scripts/test", pytest_status=5)
    assert status == 5
    assert not any(line.startswith("python3 ") for line in log)
    assert log[-2:] == [f"{PARALLEL_RUN}{at}", f"{SERIAL_RUN}{at}"]


def test_test_command_fails_when_either_run_fails_and_not_for_a_part_with_no_tests(checkout):
    # The parallel run is everything but the tests that stop servers; the serial run is only those.
    assert run_script(checkout, "scripts/test", pytest_status=0, serial_pytest_status=1)[0] == 1
    assert run_script(checkout, "scripts/test", pytest_status=1, serial_pytest_status=0)[0] == 1
    assert run_script(checkout, "scripts/test", pytest_status=2, serial_pytest_status=5)[0] == 2
    # A selection with none of the tests that stop servers (or only those) leaves one run empty.
    assert run_script(checkout, "scripts/test", "tests/unit", pytest_status=0, serial_pytest_status=5)[0] == 0
    assert run_script(checkout, "scripts/test", pytest_status=5, serial_pytest_status=0)[0] == 0


def test_ci_entry_point_runs_the_tests_then_the_compose_check(checkout):
    status, log = run_script(checkout, ".ci/run", pytest_status=0)
    assert status == 0 and log[-3:] == [f"{PARALLEL_RUN} @ {checkout}", f"{SERIAL_RUN} @ {checkout}",
                                        f"compose-check @ {checkout}"]
    # A failing suite (or none collected) stops CI before the compose check ...
    status, log = run_script(checkout, ".ci/run", pytest_status=5)
    assert status == 5 and log[-1] == f"{SERIAL_RUN} @ {checkout}"
    status, log = run_script(checkout, ".ci/run", pytest_status=0, serial_pytest_status=1)
    assert status == 1 and log[-1] == f"{SERIAL_RUN} @ {checkout}"
    # ... and a failing compose check fails CI.
    status, log = run_script(checkout, ".ci/run", compose_status=1)
    assert status == 1 and log[-1] == f"compose-check @ {checkout}"


def test_demo_command_migrates_then_runs_the_demo(checkout):
    status, log = run_script(checkout, "scripts/demo", "--orders", "3")
    assert status == 0
    assert log[-2:] == [f"rewix-sync db upgrade @ {checkout}", f"rewix-sync demo --orders 3 @ {checkout}"]


# --- the services start on this machine with the compose configuration ------------

@pytest.fixture
def simulators() -> Iterator[dict[str, str]]:
    from simulators.rewix.server import start_in_thread as start_rewix
    from simulators.shop.server import start_in_thread as start_shop

    rewix = start_rewix(api_key=ENV_EXAMPLE["REWIX_API_KEY"], password=ENV_EXAMPLE["REWIX_API_PASSWORD"])
    shop = start_shop(consumer_key=ENV_EXAMPLE["WC_CONSUMER_KEY"], consumer_secret=ENV_EXAMPLE["WC_CONSUMER_SECRET"])
    try:
        yield {"REWIX_API_URL": rewix.url, "WC_URL": shop.url}
    finally:
        shop.stop()
        rewix.stop()


def local_env(name: str, db: str, broker: str, simulators: dict[str, str]) -> dict[str, str]:
    """The container's environment, with the compose host names replaced by this machine's."""
    env = container_env(name)
    env.update(simulators, AMQP_URL=broker, DATABASE_URL=db, SYNC_RETRY_DELAYS="1,2,4")
    # .env.example ships placeholders the services refuse; an operator sets real secrets.
    for secret in ("WC_WEBHOOK_SECRET", "ADMIN_TOKEN"):
        if secret in env:
            env[secret] = secrets.token_hex(24)
    if name == "ingest":
        env.update(INGEST_HOST="127.0.0.1", INGEST_PORT=str(free_port()))
    if name == "admin":
        # ingest is not started with it here: this machine's address stands for compose's name.
        env.update(ADMIN_HOST="127.0.0.1", ADMIN_PORT=str(free_port()), INGEST_URL=f"http://127.0.0.1:{free_port()}")
    if name in WORKERS:
        # Several workers on one host: one port each, on this machine only.
        env.update(METRICS_PORT=str(free_port()), METRICS_HOST="127.0.0.1")
    for key, value in env.items():
        host = urllib.parse.urlsplit(value).hostname if "://" in value else None
        assert host not in COMPOSE_HOSTS, f"{key}={value} still names a compose service"
    return env


def http_status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def consumers(amqp_url: str, queue: str) -> int:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        return connection.channel().queue_declare(queue, passive=True).method.consumer_count
    finally:
        connection.close()


def healthcheck_path(name: str) -> str:
    return urllib.parse.urlsplit(re.search(r"http://[^'\"]+", python_check(name)).group(0)).path


def ingest_ready(env: dict[str, str]) -> bool:
    base = f"http://127.0.0.1:{env['INGEST_PORT']}"
    # /healthz as soon as the process runs, then the very endpoint the compose healthcheck asks.
    return http_status(base + "/healthz") == 200 and http_status(base + healthcheck_path("ingest")) == 200


def admin_ready(env: dict[str, str]) -> bool:
    return http_status(f"http://127.0.0.1:{env['ADMIN_PORT']}{healthcheck_path('admin')}") == 200


def assert_documented_metrics_exist(env: dict[str, str]) -> None:
    """Every metric and webhook outcome docs/operations.md names is served by /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{env['INGEST_PORT']}/metrics", timeout=5) as response:
        served = response.read().decode()
    guide = (ROOT / "docs/operations.md").read_text()
    # ingest's own; the workers' are checked against the running workers in test_observability_deploy.py.
    documented = set(re.findall(r"\b(rewix_ingest_[a-z_]+)", guide))
    assert documented, "docs/operations.md names no metric"
    for metric in documented:
        assert re.search(rf"^{metric}(_bucket|_count|_sum)?[{{ ]", served, re.M), f"/metrics has no {metric}"
    outcomes_paragraph = guide.split("webhooks by outcome", 1)[1].split("\n- ", 1)[0]
    outcomes = [o for o in re.findall(r"`([a-z_]+)`", outcomes_paragraph)]
    assert len(outcomes) >= 5
    for outcome in outcomes:
        assert f'outcome="{outcome}"' in served, f"/metrics has no webhook outcome {outcome}"


def worker_ready(name: str, queue: str):
    # Consuming its queue, and the very endpoint the compose healthcheck asks says so.
    return lambda env: consumers(env["AMQP_URL"], queue) > 0 and \
        http_status(f"http://127.0.0.1:{env['METRICS_PORT']}{healthcheck_path(name)}") == 200


READY = {
    "ingest": ingest_ready,
    "admin": admin_ready,
    "supplier_sync": worker_ready("supplier_sync", topology.ORDER_LINES.name),
    "status_poller": worker_ready("status_poller", topology.STATUS_CHANGES.name),
}


@pytest.mark.parametrize("name", sorted(READY))
def test_service_starts_with_the_compose_configuration_and_stops_on_sigterm(name, db, broker, simulators):
    env = local_env(name, db, broker, simulators)
    program, *args = command_of(name)
    # `python` and the console script `rewix-sync` of the image, from this interpreter's environment.
    argv = [sys.executable if program == "python" else str(Path(sys.executable).with_name(program)), *args]
    process = subprocess.Popen(argv, cwd=ROOT, env={"PATH": os.environ["PATH"], **env},
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while not READY[name](env):
            assert process.poll() is None, f"{name} exited with {process.returncode}:\n{process.stdout.read()}"
            assert time.monotonic() < deadline, f"{name} not ready within 30 s"
            time.sleep(0.2)
        if name == "ingest":
            assert_documented_metrics_exist(env)
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=10)
        assert process.returncode == 0, f"{name} exited with {process.returncode} on SIGTERM:\n{output}"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


# --- docs/operations.md -------------------------------------------------------------

def test_every_command_in_the_operations_guide_exists():
    text = (ROOT / "docs/operations.md").read_text()
    code = re.findall(r"`([^`\n]+)`", text) + re.findall(r"^    .*$|^```[\s\S]*?^```", text, re.M)
    found = set()
    for snippet in code:
        for words in re.findall(r"rewix-sync((?: [a-z][a-z-]*)+)", snippet):
            command: click.Command = cli_main
            path: list[str] = []
            for word in words.split():
                if not isinstance(command, click.Group) or word not in command.commands:
                    break
                command, path = command.commands[word], path + [word]
            assert path, f"docs/operations.md: rewix-sync{words}: no such command"
            # A group runs alone only when it is a command of its own too (`rewix-sync orders`).
            assert not isinstance(command, click.Group) or command.invoke_without_command, \
                f"docs/operations.md: rewix-sync{words}: incomplete"
            found.add(" ".join(path))
    assert {"dlq list", "dlq show", "dlq replay", "dlq purge", "backfill", "db upgrade"} <= found
    for service in ("ingest", "supplier_sync", "status_poller"):
        assert f"--scale {service}=" in text or service in text
