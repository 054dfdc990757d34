"""The simulated vison day folders, each written once per test session, and the independent sample.

``vison_day``: the small default geometry, seed 0, BIAS01, DARK01, PTC01, CHINJ01 and TP01.
``vison_faults``: BIAS01 with every fault (the same seed: its other frames are the same bytes as
``vison_day``'s BIAS01 frames).
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

SAMPLE = Path(__file__).resolve().parents[3] / "shared" / "samples" / "vison-day" / "02_Mar_19"


class Truth:
    def __init__(self, day):
        self.day = day

    def table(self, name: str) -> list[dict]:
        return pq.read_table(self.day.truth / f"{name}.parquet").to_pylist()


@pytest.fixture(scope="session")
def sample() -> Path:
    if not SAMPLE.is_dir():
        pytest.skip("the independent vison sample is not here")
    return SAMPLE


@pytest.fixture(scope="session")
def vison_day(tmp_path_factory):
    from steps.vison.simulate import simulate_day

    day = simulate_day(tmp_path_factory.mktemp("vison_day"), tests=("BIAS01", "DARK01", "PTC01", "CHINJ01", "TP01"))
    return day, Truth(day)


@pytest.fixture(scope="session")
def vison_faults(tmp_path_factory):
    from steps.vison.simulate import FAULTS, simulate_day

    day = simulate_day(tmp_path_factory.mktemp("vison_faults"), tests=("BIAS01",), faults=FAULTS)
    return day, Truth(day)
