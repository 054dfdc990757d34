import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent


@pytest.fixture(autouse=True)
def toy_registered(monkeypatch):
    """Make the toy pipeline importable here, in spawned workers and in CLI subprocesses."""
    monkeypatch.syspath_prepend(str(HERE))
    monkeypatch.setenv("ASTROFLOW_PIPELINES", "toy=toy_pipeline:TOY")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setattr(sys, "path", sys.path)
