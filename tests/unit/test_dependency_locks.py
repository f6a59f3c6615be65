"""The production image is the product only: what its stage installs holds no test tool.

The Dockerfile's production stage installs requirements.lock and the package
pyproject.toml describes; the development and test tools are pinned in
requirements-dev.lock, which only scripts/test and scripts/demo install.
scripts/compose-check also lists `pip list` inside the built image.
"""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Anything that only tests, drives a browser or talks to a Docker engine.
TEST_TOOLS = {"pytest", "pytest-timeout", "pytest-xdist", "execnet", "hypothesis", "playwright", "testcontainers",
              "docker", "pyyaml", "iniconfig", "pluggy", "greenlet", "sortedcontainers", "pygments", "wrapt"}


def normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path: str) -> dict[str, str]:
    found = {}
    for line in (ROOT / path).read_text().splitlines():
        line = line.split("#")[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        assert sep and re.fullmatch(r"[\w.]+", version), f"{path}: not pinned: {line}"
        assert normalised(name) not in found, f"{path}: {name} twice"
        found[normalised(name)] = version
    return found


def dockerfile_stages() -> dict[str, list[str]]:
    """Stage name -> its instructions, with those of the stages it is built FROM."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    stages: dict[str, list[str]] = {}
    current: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            base, _, name = line[5:].partition(" AS ")
            current = list(stages.get(base.strip(), []))
            stages[(name or base).strip()] = current
        current.append(line)
    return stages


def test_both_locks_pin_every_package_once_and_do_not_overlap() -> None:
    runtime, dev = pins("requirements.lock"), pins("requirements-dev.lock")
    assert not set(runtime) & set(dev), f"in both locks: {sorted(set(runtime) & set(dev))}"


def test_the_runtime_lock_holds_no_test_tool_and_the_dev_lock_holds_them() -> None:
    runtime, dev = pins("requirements.lock"), pins("requirements-dev.lock")
    assert not TEST_TOOLS & set(runtime), f"requirements.lock carries {sorted(TEST_TOOLS & set(runtime))}"
    assert {"pytest", "hypothesis", "playwright", "testcontainers", "pyyaml"} <= set(dev)


def test_the_runtime_lock_pins_what_the_package_needs() -> None:
    runtime = pins("requirements.lock")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for requirement in project["dependencies"]:
        name = normalised(re.match(r"[A-Za-z0-9_.-]+", requirement).group(0))
        assert name in runtime, f"requirements.lock lacks {name}"
        assert name not in TEST_TOOLS


def test_the_package_is_the_product_only() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert project["tool"]["setuptools"]["packages"]["find"]["include"] == ["shared*", "services*"]


@pytest.mark.parametrize("stage", ["app", "production"])
def test_the_production_image_installs_the_runtime_lock_only(stage: str) -> None:
    instructions = dockerfile_stages()[stage]
    installs = [i for i in instructions if i.startswith("RUN ") and "pip install" in i]
    assert installs, "the image installs nothing?"
    for install in installs:
        assert "requirements-dev.lock" not in install and "[test]" not in install, install
        for tool in TEST_TOOLS:
            assert not re.search(rf"\b{re.escape(tool)}\b", install, re.I), install
    assert any("-r requirements.lock" in i for i in installs)
    copied = " ".join(i for i in instructions if i.startswith("COPY "))
    assert "requirements-dev.lock" not in copied
    assert list(dockerfile_stages())[-1] == "production"  # what a plain `docker build .` makes


def test_every_script_that_runs_tests_installs_both_locks() -> None:
    venv = (ROOT / "scripts/_venv.sh").read_text()
    assert "-r requirements.lock -r requirements-dev.lock" in venv
