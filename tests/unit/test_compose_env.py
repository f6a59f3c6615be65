"""devstack/compose_env.py: the .env scripts/compose-check writes for its throw-away stack."""
from __future__ import annotations

import itertools
import stat
from pathlib import Path

import pytest

from devstack.compose_env import SECRETS, main, parse_overrides, render
from shared.settings import PLACEHOLDER_SECRETS

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = (ROOT / ".env.example").read_text()


def values(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))


def test_every_secret_is_generated_strong_and_different() -> None:
    rendered = values(render(EXAMPLE, {}))
    generated = [rendered[name] for name in SECRETS]
    assert len(set(generated)) == len(SECRETS)
    for name in SECRETS:
        assert rendered[name].isalnum() and len(rendered[name]) >= 32, name
        assert rendered[name] != values(EXAMPLE).get(name)
    assert not set(PLACEHOLDER_SECRETS.values()) & set(rendered.values())


def test_the_example_keeps_its_order_and_comments_and_overrides_land_in_place() -> None:
    counter = itertools.count()
    text = render(EXAMPLE, {"POLL_INTERVAL_SECONDS": "2", "METRICS_PORT": "9200", "NEW_ONE": "x"},
                  token=lambda: f"t{next(counter)}")
    assert [l for l in text.splitlines() if l.startswith("#")][:5] == [l for l in EXAMPLE.splitlines()
                                                                        if l.startswith("#")][:5]
    rendered = values(text)
    assert rendered["POLL_INTERVAL_SECONDS"] == "2"
    # A commented-out variable of the example is set where it is documented ...
    assert "# METRICS_PORT=" not in text and text.index("METRICS_PORT=9200") < text.index("METRICS_HOST=")
    # ... one the example lacks goes at the end, and everything else is the example's.
    assert text.rstrip().endswith("NEW_ONE=x")
    untouched = set(values(EXAMPLE)) - set(SECRETS) - {"POLL_INTERVAL_SECONDS"}
    assert all(rendered[name] == values(EXAMPLE)[name] for name in untouched)


def test_overrides_are_name_value_pairs_on_one_line() -> None:
    assert parse_overrides(["A_B=1=2", "C="]) == {"A_B": "1=2", "C": ""}
    for bad in ("lower=1", "NOVALUE", "X=a\nb"):
        with pytest.raises(ValueError):
            parse_overrides([bad])


def test_the_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    example = tmp_path / "example"
    example.write_text(EXAMPLE)
    assert main([str(example), str(tmp_path / ".env"), "LOG_LEVEL=DEBUG"]) == 0
    assert stat.S_IMODE((tmp_path / ".env").stat().st_mode) == 0o600
    assert values((tmp_path / ".env").read_text())["LOG_LEVEL"] == "DEBUG"
    assert main([str(example), str(tmp_path / ".env"), "bad"]) == 2
