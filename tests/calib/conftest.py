"""Fixtures of the calibration library's tests: every test that takes ``db_url`` runs on SQLite
and on PostgreSQL, with the same assertions.

PostgreSQL is the local ``astroflow-postgres:15`` image (``images/postgres/Dockerfile``, built
with images/build.py's ``build_postgres_image`` when missing), one container per session started
with testcontainers; each test gets a database of its own in it.  Without a Docker engine the
PostgreSQL cases are skipped, or fail when ``ASTROFLOW_REQUIRE_DOCKER=1`` (CI).
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pytest

os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")  # the reaper image cannot be pulled

PASSWORD = "astroflow"  # set in images/postgres/Dockerfile


@pytest.fixture(scope="session")
def postgres_server(docker_engine, build_module):
    """(host, port) of a PostgreSQL 15 server in a container, ready for connections."""
    import psycopg
    from testcontainers.core.container import DockerContainer

    build = build_module
    if not build.image_exists(build.POSTGRES_IMAGE):
        build.build_postgres_image()
    container = DockerContainer(build.POSTGRES_IMAGE).with_exposed_ports(5432)
    container.start()
    try:
        host, port = container.get_container_host_ip(), int(container.get_exposed_port(5432))
        deadline = time.monotonic() + 60
        while True:
            try:
                psycopg.connect(host=host, port=port, user="postgres", password=PASSWORD, dbname="astroflow",
                                connect_timeout=2).close()
                break
            except psycopg.OperationalError as exc:
                if time.monotonic() > deadline:
                    logs = b"".join(container.get_logs()).decode(errors="replace")[-2000:]
                    pytest.fail(f"PostgreSQL did not accept connections within 60 s: {exc}\n{logs}")
                time.sleep(0.2)
        yield host, port
    finally:
        container.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.docker)])
def db_url(request, tmp_path):
    """A fresh, empty database: a SQLite file, or a new database on the session's PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'calibrations.db'}"
        return
    import psycopg

    host, port = request.getfixturevalue("postgres_server")
    name = f"t_{uuid.uuid4().hex[:16]}"
    admin = {"host": host, "port": port, "user": "postgres", "password": PASSWORD, "dbname": "astroflow",
             "autocommit": True}
    with psycopg.connect(**admin) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql+psycopg://postgres:{PASSWORD}@{host}:{port}/{name}"
    with psycopg.connect(**admin) as conn:  # keeps the container small (and quick to remove)
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


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
