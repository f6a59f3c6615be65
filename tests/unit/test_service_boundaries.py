"""No service imports another: each talks to the others over RabbitMQ and PostgreSQL only.

So supplier_sync stays the one writer of the supplier's growing order (the
operator's tools ask it, services/admin/supplier_convergence.py), and every
service can be changed, deployed and scaled on its own.
"""
from __future__ import annotations

import ast
from pathlib import Path

SERVICES = Path(__file__).resolve().parents[2] / "services"


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_no_service_imports_another() -> None:
    services = sorted(p.name for p in SERVICES.iterdir() if (p / "__init__.py").exists())
    assert {"admin", "ingest", "supplier_sync", "status_poller"} <= set(services)
    crossings = []
    for service in services:
        for path in sorted((SERVICES / service).rglob("*.py")):
            for name in imported_modules(path):
                parts = name.split(".")
                if len(parts) >= 2 and parts[0] == "services" and parts[1] in services and parts[1] != service:
                    crossings.append(f"{path.relative_to(SERVICES.parent)} imports {name}")
    assert crossings == []


SHARED = SERVICES.parent / "shared"


def test_shared_imports_no_service_nor_development_tool() -> None:
    """shared/ is what the services have in common: it depends on none of them, nor on the dev stack."""
    crossings = [
        f"{path.relative_to(SHARED.parent)} imports {name}"
        for path in sorted(SHARED.rglob("*.py"))
        for name in imported_modules(path)
        if name.split(".")[0] in ("services", "simulators", "devstack", "tests", "bench")
    ]
    assert crossings == []


def test_shared_is_a_dozen_concepts_at_most() -> None:
    """Its top level is grouped by concept (messaging, orders, clients...), not a module per thing."""
    # A folder left holding only compiled files (a module moved away) is not part of the tree.
    entries = sorted(p.name for p in SHARED.iterdir() if p.suffix == ".py" or any(p.rglob("*.py")))
    assert len(entries) <= 12, entries
    for package in (p for p in SHARED.iterdir() if p.is_dir() and any(p.rglob("*.py"))):
        init = package / "__init__.py"
        assert init.exists() and ast.get_docstring(ast.parse(init.read_text())), f"{package.name} says what it is"
