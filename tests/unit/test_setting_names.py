"""Every setting is listed where operators look, and every message names settings as they are spelled.

A message that tells the operator to check REWIX_PASSWORD when the variable
is REWIX_API_PASSWORD sends them looking for something that does not exist.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = sorted(name.upper() for name in Settings.model_fields)
# What a setting of this system looks like: one of its prefixes, in capitals.
SETTING_LIKE = re.compile(r"\b(?:REWIX|WC|SHOP|ADMIN|INGEST|POLL|SYNC|METRICS|LOG|AMQP|DATABASE)_[A-Z0-9_]*[A-Z0-9]\b")


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the docstring nodes: they may name constants of the code, not only settings."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def _names_in_strings(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text())
    skip = _docstrings(tree)
    return [
        (node.lineno, name)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip
        for name in SETTING_LIKE.findall(node.value)
    ]


def test_messages_name_only_settings_that_exist() -> None:
    wrong = [
        f"{path.relative_to(ROOT)}:{line}: {name}"
        for folder in ("shared", "services")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if "migrations" not in path.parts
        for line, name in _names_in_strings(path)
        if name not in SETTINGS
    ]
    assert not wrong, "strings name settings that do not exist:\n" + "\n".join(wrong)


@pytest.mark.parametrize("name", SETTINGS)
def test_every_setting_is_in_env_example_and_the_interface(name: str) -> None:
    example = (ROOT / ".env.example").read_text()
    assert re.search(rf"^#?\s*{name}=", example, re.M), f".env.example does not list {name}"
    assert f"`{name}`" in (ROOT / "docs/interfaces.md").read_text(), f"docs/interfaces.md does not describe {name}"
