from pathlib import Path

import pytest

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "samples"


@pytest.fixture(scope="session")
def sample_sector() -> Path:
    path = SAMPLES / "tec-sector-033"
    if not path.is_dir():
        pytest.fail(f"the shared samples are missing: {path} (CI runs with ../shared beside the clone)")
    return path
