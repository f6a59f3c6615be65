"""A `.env` for a throw-away compose stack: .env.example with every secret generated.

    python3 -m devstack.compose_env .env.example DEST [NAME=VALUE ...]

scripts/compose-check writes one into its temporary copy of the repository. Every
variable of .env.example keeps its place and comment; the secrets get fresh random
letters and digits (they go into URLs, and the services refuse short or placeholder
ones), NAME=VALUE arguments set or add others. The file is made readable by its
owner only. The standard library only: it runs with the host's python3.
"""
from __future__ import annotations

import os
import re
import secrets
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

# Each gets 48 random hex digits; the two simulators' credentials follow the services'
# through docker-compose.yml, so the generated ones work with them.
SECRETS = ("RABBITMQ_PASSWORD", "POSTGRES_PASSWORD", "REWIX_API_PASSWORD", "WC_CONSUMER_SECRET",
           "WC_WEBHOOK_SECRET", "ADMIN_TOKEN")
_ASSIGNMENT = re.compile(r"^(#\s*)?([A-Z][A-Z0-9_]*)=(.*)$")


def render(example: str, overrides: Mapping[str, str], token: Callable[[], str] = lambda: secrets.token_hex(24)) -> str:
    """.env.example's text with the secrets generated and `overrides` applied (a commented-out
    variable that is overridden is set in its place; one the example lacks goes at the end)."""
    values = {name: token() for name in SECRETS}
    values.update(overrides)
    done: set[str] = set()
    lines = []
    for line in example.splitlines():
        match = _ASSIGNMENT.match(line)
        if match and match.group(2) in values and match.group(2) not in done:
            name = match.group(2)
            line = f"{name}={values[name]}"
            done.add(name)
        lines.append(line)
    missing = [name for name in values if name not in done]
    if missing:
        lines += ["", "# Set for this stack only."] + [f"{name}={values[name]}" for name in missing]
    return "\n".join(lines) + "\n"


def parse_overrides(arguments: list[str]) -> dict[str, str]:
    overrides = {}
    for argument in arguments:
        name, sep, value = argument.partition("=")
        if not sep or not re.fullmatch(r"[A-Z][A-Z0-9_]*", name):
            raise ValueError(f"not NAME=VALUE: {argument!r}")
        if "\n" in value:
            raise ValueError(f"{name}: a value is one line")
        overrides[name] = value
    return overrides


def write(destination: Path, text: str) -> None:
    fd = os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    try:
        overrides = parse_overrides(argv[2:])
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    write(Path(argv[1]), render(Path(argv[0]).read_text(), overrides))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
