"""The simulated vison day folders, each written once per test session, and the independent sample.

``vison_day``: the small default geometry, seed 0, BIAS01, DARK01, PTC01, CHINJ01 and TP01.
``vison_faults``: BIAS01 with every fault (the same seed: its other frames are the same bytes as
``vison_day``'s BIAS01 frames).
``vison_flats``: FLAT01 and COSMETICS00 at their default structures (FLAT01's and COSMETICS00's tests).
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


def run_tests(day, out: Path, tests, **settings):
    """Run ``tests`` of the simulated ``day`` (its serials, one worker) into ``out``; every step must
    end done with no failed item. ``settings`` add to or override the run's settings."""
    from astroflow import config, runner
    from steps.vison.pipeline import VISON
    from steps.vison.simulate import SERIALS

    cfg = config.resolve(VISON, settings={"data_root": str(day.day_folder), "tests": list(tests),
                                          "serials": {f"CCD{i + 1}": s for i, s in enumerate(SERIALS)}, **settings},
                         runner={"workers": 1})
    res = runner.run(VISON, cfg, out, progress=False)
    assert res.ok and res.failed_items == 0, {n: s.message for n, s in res.steps.items() if s.state != "done"}
    return out


def task_flags(out: Path, task: str, not_raised: set[str]) -> list[dict]:
    """The ``flags`` contract rows of ``task`` in session D00: one per CCD and quadrant, none raising
    a flag of ``not_raised``."""
    from steps.vison import scoring

    flags = scoring.contract(out, "D00", task, "flags")
    assert len(flags) == 12 and {r["task"] for r in flags} == {task}
    for r in flags:
        assert not set(r["flag_names"]) & not_raised, r
    return flags


@pytest.fixture(scope="session")
def vison_injection_run(vison_day, tmp_path_factory):
    """CHINJ01 and TP01 of ``vison_day`` run with its PTC01 (TP01's capture probability takes that gain)."""
    day, truth = vison_day
    return run_tests(day, tmp_path_factory.mktemp("vison_injection") / "run", ("PTC01", "CHINJ01", "TP01")), day, truth


@pytest.fixture(scope="session")
def vison_flats(tmp_path_factory):
    """FLAT01 (its default 80 + 60 + 30 frames) and COSMETICS00 (5 biases, 5 flats), small geometry, seed 0."""
    from steps.vison.simulate import simulate_day

    day = simulate_day(tmp_path_factory.mktemp("vison_flats"), tests=("FLAT01", "COSMETICS00"))
    return day, Truth(day)
