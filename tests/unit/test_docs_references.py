"""Every document the code cites is in the repository, and so is the section it names.

Comments and docstrings point readers at docs/ ("docs/rewix-api.md §4.5",
'docs/interfaces.md, "Order lifecycle"'); a renamed file or heading would
leave them pointing nowhere.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SKIP_DIRS = {".git", ".venv", "node_modules", "__pycache__", ".pytest_cache"}
SOURCE_SUFFIXES = {".py", ".md", ".yml", ".yaml", ".toml", ".cfg", ".sh", ".mako"}
SOURCE_NAMES = {"Dockerfile", ".env.example", "test", "demo", "run", "_venv.sh"}

MD_NAME = re.compile(r"(?<![\w.-])((?:[\w-]+/)*[\w-]+\.md)\b")
SECTION = re.compile(r"((?:[\w-]+/)*[\w-]+\.md),? §(\d+(?:\.\d+)?)")
TITLE = re.compile(r'((?:[\w-]+/)*[\w-]+\.md), "([^"]+)"')


def source_files() -> list[Path]:
    found = []
    for path in ROOT.rglob("*"):
        if any(part in SKIP_DIRS for part in path.relative_to(ROOT).parts) or not path.is_file():
            continue
        if path.suffix in SOURCE_SUFFIXES or path.name in SOURCE_NAMES:
            found.append(path)
    return sorted(found)


def resolve(name: str, cited_in: Path) -> Path | None:
    """A cited document: relative to the repository root, or to the citing file's folder."""
    for base in (ROOT, cited_in.parent):
        candidate = base / name
        if candidate.is_file():
            return candidate
    return None


def headings(document: Path) -> list[str]:
    return [line.lstrip("#").strip() for line in document.read_text().splitlines() if line.startswith("#")]


def citations() -> list[tuple[Path, int, str]]:
    found = []
    for path in source_files():
        if path.is_relative_to(ROOT / "tests" / "unit") and path.name == Path(__file__).name:
            continue
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            found.append((path, number, line))
    return found


CITATIONS = citations()


def where(path: Path, number: int) -> str:
    return f"{path.relative_to(ROOT)}:{number}"


def test_the_tree_cites_the_docs_at_all() -> None:
    cited = {m.group(1) for _, _, line in CITATIONS for m in MD_NAME.finditer(line)}
    assert {"docs/interfaces.md", "docs/rewix-api.md", "docs/woocommerce.md"} <= cited


def test_every_cited_document_exists() -> None:
    missing = [
        f"{where(path, number)}: {m.group(1)}"
        for path, number, line in CITATIONS
        for m in MD_NAME.finditer(line)
        if "://" not in line and resolve(m.group(1), path) is None
    ]
    assert not missing, "cited documents not in the repository:\n" + "\n".join(missing)


def test_every_cited_section_number_exists() -> None:
    missing = []
    for path, number, line in CITATIONS:
        for m in SECTION.finditer(line):
            document = resolve(m.group(1), path)
            if document is None:
                continue  # reported by the test above
            section = m.group(2)
            if not any(re.match(rf"{re.escape(section)}\.?\s", title) for title in headings(document)):
                missing.append(f"{where(path, number)}: {m.group(1)} §{section}")
    assert not missing, "cited sections with no such heading:\n" + "\n".join(missing)


def test_every_cited_section_title_exists() -> None:
    missing = []
    for path, number, line in CITATIONS:
        for m in TITLE.finditer(line):
            document = resolve(m.group(1), path)
            if document is None:
                continue
            if m.group(2) not in headings(document):
                missing.append(f'{where(path, number)}: {m.group(1)}, "{m.group(2)}"')
    assert not missing, "cited section titles with no such heading:\n" + "\n".join(missing)


@pytest.mark.parametrize("document", ["interfaces.md", "rewix-api.md", "woocommerce.md", "architecture.md"])
def test_the_docs_link_only_to_files_that_exist(document: str) -> None:
    path = ROOT / "docs" / document
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", path.read_text())
    broken = [link for link in links if "://" not in link and not (path.parent / link).exists()]
    assert not broken, f"docs/{document} links to missing files: {broken}"
