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


def copy_frames(sim: SedmSim, out: Path, names: list[str]) -> Path:
    """A data root ``out`` holding the night's frames ``names`` (copies; the simulated night is shared)."""
    import shutil

    (out / sim.settings["date"]).mkdir(parents=True)
    for name in names:
        shutil.copy2(sim.night / name, out / sim.settings["date"] / name)
    return out


def raw_state(root: Path) -> dict[str, tuple[str, int]]:
    """SHA-256 and mtime (ns) of every file under ``root``."""
    import hashlib

    return {str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file()}


@dataclass
class SedmRun:
    out: Path
    sim: SedmSim
    result: object
    raw_before: dict

    def rows(self, step: str) -> list[dict]:
        from astroflow.rundir import read_dataset

        return read_dataset(self.out / step).to_pylist()


def sedm_settings(settings: dict) -> dict:
    """The settings a run takes from what the simulator returned (its truth folder left out)."""
    return {k: v for k, v in settings.items() if k != "truth"}


@pytest.fixture(scope="session")
def sedm_run(sedm_sim, tmp_path_factory) -> SedmRun:
    """The afternoon calibrations run once on the simulated night (2 workers), and the science steps
    declared after them (``flexure``, ``cube``: ``rows("cube")`` gives each frame's ``cube_path``)."""
    from astroflow import config, runner
    from steps.sedm.pipeline import SEDM

    before = raw_state(sedm_sim.root)
    out = tmp_path_factory.mktemp("sedm_run") / "run"
    cfg = config.resolve(SEDM, settings=sedm_settings(sedm_sim.settings), runner={"workers": 2})
    result = runner.run(SEDM, cfg, out, progress=False)
    return SedmRun(out, sedm_sim, result, before)
