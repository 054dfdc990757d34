"""The simulated SEDM night, written once per test session.

``sedm_sim``: the small default night (seed 0, the science cases, no few_arcs).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from astropy.io import fits


@dataclass(frozen=True)
class SedmSim:
    root: Path  # the data root: {date}/ifu*.fits, rc*.fits; standards/
    night: Path  # root / date
    truth: Path
    settings: dict

    def table(self, name: str) -> list[dict]:
        return pq.read_table(self.truth / f"{name}.parquet").to_pylist()

    def ifu(self, **match) -> list[dict]:
        """Truth rows of the IFU frames whose columns equal ``match``."""
        return [r for r in self.table("frames")
                if r["camera"] == "IFU" and all(r[k] == v for k, v in match.items())]

    def data(self, filename: str):
        return fits.getdata(self.night / filename).astype(float)


@pytest.fixture(scope="session")
def sedm_sim(tmp_path_factory) -> SedmSim:
    from steps.sedm.simulate import simulate_night

    root = tmp_path_factory.mktemp("sedm_sim")
    settings = simulate_night(root)
    return SedmSim(root, root / settings["date"], Path(settings["truth"]), settings)
