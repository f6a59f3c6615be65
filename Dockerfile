# One image for every service; docker-compose.yml picks the command
# (python -m services.ingest, python -m services.supplier_sync, ...).
# The last stage, `production`, is what `docker build .` makes: the product only, with
# the runtime dependencies of requirements.lock (the test tools are in requirements-dev.lock).
# The `demo` stage adds the bundled simulators and the dev stack for compose's demo profile.
FROM python:3.11-slim AS app

# The release, as `rewix-sync --version` prints it (pyproject.toml's version; the git tag is
# v<version>, and tests/unit/test_release.py keeps the three the same).
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="rewix-sync" \
      org.opencontainers.image.description="Keeps a WooCommerce shop and its supplier's Rewix B2B platform in step." \
      org.opencontainers.image.version="${VERSION}"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --create-home --uid 10001 --user-group rewix
WORKDIR /app

# Pinned runtime dependencies first: this layer is rebuilt only when the lock changes.
COPY requirements.lock ./
RUN pip install -r requirements.lock

COPY pyproject.toml ./
COPY shared ./shared
COPY services ./services
RUN pip install --no-deps . && rm -rf build ./*.egg-info

USER rewix
EXPOSE 8080 8081
# No HEALTHCHECK here: only some services serve HTTP. docker-compose.yml checks
# those with a Python one-liner (the slim image has no curl).
CMD ["python", "-m", "services.ingest"]

# Development tools on top of the product: `python -m simulators.rewix`, `python -m simulators.shop`
# and `rewix-sync demo --feed-only` (which imports devstack) find them on PYTHONPATH.
FROM app AS demo
COPY simulators ./simulators
COPY devstack ./devstack
ENV PYTHONPATH=/app

FROM app AS production
