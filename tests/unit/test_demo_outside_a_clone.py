"""`rewix-sync demo` where the simulators and the dev stack are absent (the installed package,
the production image): one line saying where the demo runs from, exit 2, no traceback."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_installed_package_holds_no_development_tool() -> None:
    # From elsewhere than the clone, only what pyproject.toml packages is importable.
    done = subprocess.run([sys.executable, "-c", "import importlib.util as u; "
                           "print([m for m in ('services', 'shared', 'devstack', 'simulators') if u.find_spec(m)])"],
                          cwd="/", capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "['services', 'shared']"


def test_demo_says_how_to_run_it_when_the_dev_stack_is_absent(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "services.admin.cli", "demo"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "clone of the repository" in done.stderr and "./scripts/demo" in done.stderr
    assert "--profile demo" in done.stderr
