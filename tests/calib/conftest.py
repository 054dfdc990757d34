"""Fixtures of the calibration library's tests: every test that takes ``db_url`` runs on SQLite
and on PostgreSQL, with the same assertions.

PostgreSQL is the local ``astroflow-postgres:15`` image (``images/postgres/Dockerfile``, built
with images/build.py's ``build_postgres_image`` when missing), one container per session started
with testcontainers; each test gets a database of its own in it.  Without a Docker engine the
PostgreSQL cases are skipped, or fail when ``ASTROFLOW_REQUIRE_DOCKER=1`` (CI).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")  # the reaper image cannot be pulled



@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.docker)])
def db_url(request, tmp_path):
    """A fresh, empty database: a SQLite file, or a new database on the session's PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'calibrations.db'}"
        return
    yield request.getfixturevalue("postgres_database")


@pytest.fixture
def lib(db_url):
    from astroflow.calib import Library

    library = Library(db_url)
    yield library
    library.close()


@pytest.fixture
def make_file(tmp_path):
    """make_file(name, content=None) -> path of a new file under tmp_path/lib (unique content by
    default, so every file has its own checksum)."""
    folder = tmp_path / "lib"
    folder.mkdir(exist_ok=True)

    def make(name: str, content: str | None = None) -> Path:
        path = folder / name
        path.write_text(content if content is not None else f"{name} {uuid.uuid4().hex}")
        return path

    return make
