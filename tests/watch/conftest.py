from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def nightly_registered(register_pipeline):
    """The toy pipeline of arriving frames, importable here and in the watcher subprocesses."""
    register_pipeline(Path(__file__).parent, "nightly=night_pipeline:NIGHTLY")
