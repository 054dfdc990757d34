"""Fixtures every test folder may use: a Docker engine, required in CI, and images/build.py."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")  # the reaper image cannot be pulled

ROOT = Path(__file__).resolve().parents[1]
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
