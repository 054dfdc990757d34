"""The simulated NRES nights, each written once per test session.

``nres_sim``: the small default simulation (cpt and lsc, two nights, no defects).
``nres_sim_defects``: cpt alone, two nights, every defect (the same seed: its other frames are
the same bytes as ``nres_sim``'s cpt frames).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
import pytest


@dataclass(frozen=True)
class NresSim:
    root: Path  # the data root: {site}/nres{NN}/{DAY-OBS}/raw/*.fits.fz and targets.csv
    truth: Path  # the truth tables: truth/{frames,traces,wavelengths,ccds,instruments,stars,defects}.parquet
    settings: dict  # what simulate_nights returned: the settings that reduce the first site

    def table(self, name: str) -> list[dict]:
        return pq.read_table(self.truth / f"{name}.parquet").to_pylist()


@pytest.fixture(scope="session")
def nres_sim(tmp_path_factory) -> NresSim:
    from steps.nres.simulate import simulate_nights

    root = tmp_path_factory.mktemp("nres_sim")
    return NresSim(root, root / "truth", simulate_nights(root))


@pytest.fixture(scope="session")
def nres_sim_defects(tmp_path_factory) -> NresSim:
    from steps.nres.simulate import DEFECTS, simulate_nights

    root = tmp_path_factory.mktemp("nres_sim_defects")
    return NresSim(root, root / "truth", simulate_nights(root, sites=("cpt",), nights=2, defects=DEFECTS))
