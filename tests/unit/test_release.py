"""A release is one version in three places, and the git tag v<version> names it.

pyproject.toml's version is what `rewix-sync --version` prints, the Dockerfile's
VERSION is the image's label org.opencontainers.image.version, and CHANGELOG.md's
newest section describes it. The manual's upgrade commands name tags of that form.
"""
from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

from click.testing import CliRunner

from services.admin.cli import main

ROOT = Path(__file__).resolve().parents[2]
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]


def test_the_version_is_a_release_number() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+", VERSION)


def test_the_image_label_carries_the_same_version() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.findall(r"^ARG VERSION=(\S+)$", dockerfile, re.M) == [VERSION]
    assert 'org.opencontainers.image.version="${VERSION}"' in dockerfile


def test_the_changelog_describes_it_first() -> None:
    headings = re.findall(r"^## (\d+\.\d+\.\d+)\b", (ROOT / "CHANGELOG.md").read_text(), re.M)
    assert headings and headings[0] == VERSION
    assert len(headings) == len(set(headings))


def test_the_command_prints_the_installed_version() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0 and result.output == f"rewix-sync {VERSION}\n"


def test_a_tag_on_this_commit_names_this_version() -> None:
    done = subprocess.run(["git", "tag", "--points-at", "HEAD", "--list", "v*"], cwd=ROOT, capture_output=True,
                          text=True, timeout=30)
    tags = done.stdout.split() if done.returncode == 0 else []  # a copy without .git has no tag to check
    for tag in tags:
        assert tag == f"v{VERSION}", f"the tag {tag} is on a commit whose version is {VERSION}"


def test_the_manual_checks_out_release_tags() -> None:
    manual = (ROOT / "docs/manual.md").read_text()
    checkouts = re.findall(r"git checkout (\S+)", manual)
    assert checkouts, "the manual's upgrade steps check out a release"
    for tag in checkouts:
        assert re.fullmatch(r"v\d+\.\d+\.\d+", tag), tag
    assert f"v{VERSION}" in manual
    upgrade = manual.split("## 8.", 1)[1].split("\n## ", 1)[0]
    first_command = re.search(r"```\n(.*?)\n", upgrade, re.S).group(1)
    assert "pg_dump" in first_command, "an upgrade starts with a backup"
