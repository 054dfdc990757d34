"""Integration tests run the step images in a real Docker engine.

Without a Docker engine they are skipped locally, and they fail when ``ASTROFLOW_REQUIRE_DOCKER=1``
(CI, after ``.ci/docker-up.sh`` and ``python images/build.py``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")  # the reaper image cannot be pulled

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="session")
def docker_client(docker_engine):
    """A Docker client (the engine is required in CI: see tests/conftest.py)."""
    import docker

    client = docker.from_env()
    yield client
    client.close()




@pytest.fixture()
def toy_registered(monkeypatch):
    """The test-only toy pipeline, registered like a plugin pipeline."""
    from integration_toy import REGISTRATION

    monkeypatch.setenv("ASTROFLOW_PIPELINES", REGISTRATION)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))


sys.path.insert(0, str(HERE))
