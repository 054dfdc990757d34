"""Fixtures every test folder may use: a Docker engine, required in CI, and images/build.py."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")  # the reaper image cannot be pulled

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "astroflow"  # set in images/postgres/Dockerfile
REQUIRE_DOCKER = os.environ.get("ASTROFLOW_REQUIRE_DOCKER") == "1"


def _docker_problem() -> str | None:
    try:
        import docker
    except ImportError:
        return "the docker Python package is not installed"
    try:
        client = docker.from_env()
        client.ping()
        client.close()
    except Exception as exc:  # no socket, daemon down, permission denied...
        return f"no Docker engine answers ({type(exc).__name__}: {exc})"
    return None


@pytest.fixture(scope="session")
def docker_engine() -> None:
    """A Docker engine answers; skips (locally) or fails (ASTROFLOW_REQUIRE_DOCKER=1) without one."""
    problem = _docker_problem()
    if problem:
        message = f"{problem}; start one with .ci/docker-up.sh"
        if REQUIRE_DOCKER:
            pytest.fail(message + " (ASTROFLOW_REQUIRE_DOCKER=1)")
        pytest.skip(message)


@pytest.fixture(scope="session")
def build_module():
    """images/build.py as a module (its tags, Dockerfiles and docker_build)."""
    spec = importlib.util.spec_from_file_location("astroflow_images_build", ROOT / "images" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def register_pipeline(monkeypatch):
    """``register_pipeline(folder, "name=module:ATTR")``: a test pipeline importable here, in
    spawned workers and in CLI subprocesses."""

    def register(folder: Path, spec: str) -> None:
        monkeypatch.syspath_prepend(str(folder))
        monkeypatch.setenv("ASTROFLOW_PIPELINES", spec)
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(folder), os.environ.get("PYTHONPATH", "")]))

    return register


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


@pytest.fixture
def postgres_database(postgres_server):
    """The URL of a fresh, empty database on the session's PostgreSQL (dropped afterwards)."""
    import psycopg

    host, port = postgres_server
    name = f"t_{uuid.uuid4().hex[:16]}"
    admin = {"host": host, "port": port, "user": "postgres", "password": PASSWORD, "dbname": "astroflow",
             "autocommit": True}
    with psycopg.connect(**admin) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql+psycopg://postgres:{PASSWORD}@{host}:{port}/{name}"
    with psycopg.connect(**admin) as conn:  # keeps the container small (and quick to remove)
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture
def start_until_committed():
    """``start(cmd, manifests, n, timeout_s=300)``: start the CLI command ``cmd`` in a process group of
    its own and return it once ``n`` units are committed in ``manifests`` (a step's manifest folder),
    or the time is up; the caller kills it (``os.killpg(proc.pid, signal.SIGKILL)`` for kill -9)."""
    procs = []

    def start(cmd, manifests: Path, n: int, timeout_s: float = 300.0):
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        procs.append(proc)
        deadline = time.time() + timeout_s
        while time.time() < deadline and len(list(Path(manifests).glob("*.json"))) < n:
            time.sleep(0.05)
        return proc

    yield start
    for proc in procs:  # whatever a failed test left running
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
