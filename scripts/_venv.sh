# Sourced by scripts/test and scripts/demo: moves to the repository root and
# makes sure .venv holds the pinned dependencies (the product's and the
# development tools') and this project.
cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv || { echo "error: cannot create .venv with python3 (is python3-venv installed?)" >&2; exit 1; }
fi
.venv/bin/python -m pip install -q --disable-pip-version-check -r requirements.lock -r requirements-dev.lock || exit 1
.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps -e . || exit 1
