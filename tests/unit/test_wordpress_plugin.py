"""The shop's WordPress plugin (wordpress/rewix-sync-status): PHP that parses, its PHPUnit suite, its zip.

PHP is not the project's language, so `php -l` and PHPUnit run from here and
`./scripts/test` (what CI runs) covers them; it installs Debian's php-cli and
phpunit with apt when they are missing.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = ROOT / "wordpress" / "rewix-sync-status"
MAIN = PLUGIN / "rewix-sync-status.php"
PHP_FILES = sorted(PLUGIN.rglob("*.php"))
SHIPPED_PHP = [path for path in PHP_FILES if "tests" not in path.relative_to(PLUGIN).parts]


def tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is missing: install Debian's php-cli and phpunit (./scripts/test does it with apt)"
    return path


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=ROOT)


def header(text: str, name: str) -> str:
    found = re.search(rf"^[ \t/*#@]*{re.escape(name)}:\s*(.+?)\s*$", text, re.M)
    assert found, f"no {name!r} header"
    return found.group(1)


def test_there_is_php_to_check() -> None:
    assert MAIN in SHIPPED_PHP and len(PHP_FILES) > len(SHIPPED_PHP)


@pytest.mark.parametrize("path", PHP_FILES, ids=lambda p: str(p.relative_to(PLUGIN)))
def test_every_php_file_parses(path: Path) -> None:
    result = run(tool("php"), "-l", str(path))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_phpunit_suite_passes() -> None:
    result = run(tool("phpunit"), "-c", str(PLUGIN / "tests" / "phpunit.xml"))
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert re.search(r"^OK \(\d+ tests?, \d+ assertions?\)$", output, re.M), output


@pytest.mark.parametrize("path", SHIPPED_PHP, ids=lambda p: str(p.relative_to(PLUGIN)))
def test_every_shipped_php_file_refuses_to_run_outside_wordpress(path: Path) -> None:
    assert "defined( 'ABSPATH' ) || exit;" in path.read_text()


def test_the_plugin_header_and_the_readme_agree() -> None:
    main, readme = MAIN.read_text(), (PLUGIN / "readme.txt").read_text()
    version = header(main, "Version")
    assert f"define( 'REWIX_SYNC_STATUS_VERSION', '{version}' );" in main
    assert header(readme, "Stable tag") == version
    assert header(main, "License") == header(readme, "License") == "GPL-2.0-or-later"
    for name in ("Requires at least", "Requires PHP"):
        assert header(main, name) == header(readme, name)
    assert header(main, "Text Domain") == "rewix-sync-status"
    assert header(main, "WC tested up to") == "9.2"
    assert readme.startswith("=== Rewix Sync Status ===") and "== Changelog ==" in readme
    assert f"= {version} =" in readme


def test_the_zip_holds_the_plugin_folder_without_its_tests(tmp_path: Path) -> None:
    result = run(sys.executable, str(ROOT / "scripts" / "build-wordpress-plugin"), str(tmp_path))
    assert result.returncode == 0, result.stderr
    built = Path(result.stdout.strip())
    assert built == tmp_path / "rewix-sync-status.zip"

    with zipfile.ZipFile(built) as archive:
        names = set(archive.namelist())
        assert archive.read("rewix-sync-status/rewix-sync-status.php") == MAIN.read_bytes()
    assert {
        "rewix-sync-status/rewix-sync-status.php",
        "rewix-sync-status/includes/class-rewix-sync-status.php",
        "rewix-sync-status/assets/admin.css",
        "rewix-sync-status/readme.txt",
    } <= names
    assert all(name.startswith("rewix-sync-status/") for name in names)
    assert not [name for name in names if "/tests/" in name or name.endswith("phpunit.xml")]
