"""Integration tests run the step images in a real Docker engine.

Without a Docker engine they are skipped locally, and they fail when ``ASTROFLOW_REQUIRE_DOCKER=1``
(CI, after ``.ci/docker-up.sh`` and ``python images/build.py``).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")  # the reaper image cannot be pulled

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
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
def docker_client():
    """A Docker client; skips (locally) or fails (ASTROFLOW_REQUIRE_DOCKER=1) without an engine."""
    problem = _docker_problem()
    if problem:
        message = f"{problem}; start one with .ci/docker-up.sh"
        if REQUIRE_DOCKER:
            pytest.fail(message + " (ASTROFLOW_REQUIRE_DOCKER=1)")
        pytest.skip(message)
    import docker

    client = docker.from_env()
    yield client
    client.close()


@pytest.fixture(scope="session")
def build_module():
    """images/build.py as a module (its tags, Dockerfiles and docker_build)."""
    spec = importlib.util.spec_from_file_location("astroflow_images_build", ROOT / "images" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture()
def toy_registered(monkeypatch):
    """The test-only toy pipeline, registered like a plugin pipeline."""
    from integration_toy import REGISTRATION

    monkeypatch.setenv("ASTROFLOW_PIPELINES", REGISTRATION)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))


sys.path.insert(0, str(HERE))
