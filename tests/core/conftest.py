from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def toy_registered(register_pipeline):
    """The toy pipeline, importable here, in spawned workers and in CLI subprocesses."""
    register_pipeline(Path(__file__).parent, "toy=toy_pipeline:TOY")
