"""The directory where ingest's worker processes keep their metrics (prometheus-client's multiprocess mode).

gunicorn runs several worker processes; each writes its counters to files
in PROMETHEUS_MULTIPROC_DIR and GET /metrics, answered by any of them,
adds up the files of all. prometheus-client reads the variable when it is
first imported, so this runs before anything imports it (and imports
nothing of it itself).

A directory given by the operator is used and emptied of an earlier run's
files; otherwise a private temporary one is made and removed at exit.
"""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def prepare() -> Path:
    given = os.environ.get(VARIABLE)
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        # Files of processes of an earlier run would be added to this run's figures.
        for stale in path.glob("*.db"):
            stale.unlink(missing_ok=True)
        return path
    path = Path(tempfile.mkdtemp(prefix="rewix-ingest-metrics-"))
    os.environ[VARIABLE] = str(path)
    owner = os.getpid()

    def remove() -> None:
        if os.getpid() == owner:  # the gunicorn master, not a worker leaving
            shutil.rmtree(path, ignore_errors=True)

    atexit.register(remove)
    return path
