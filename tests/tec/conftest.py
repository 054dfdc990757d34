from pathlib import Path

import pytest

SAMPLES = Path(__file__).resolve().parents[2].parent / "shared" / "samples"


@pytest.fixture(scope="session")
def sample_sector() -> Path:
    path = SAMPLES / "tec-sector-033"
    if not path.is_dir():
        pytest.fail(f"the shared samples are missing: {path} (CI runs with ../shared beside the clone)")
    return path


N_SIM_TCES = 120


@pytest.fixture(scope="session")
def tec_sim(tmp_path_factory):
    """One simulated sector shared by the TEC truth tests: (data folder, run settings, truth)."""
    import pyarrow.parquet as pq

    from steps.tec.pipeline import TecSimulation, simulate

    data = tmp_path_factory.mktemp("tec-sim")
    settings = simulate(data, TecSimulation(n_tces=N_SIM_TCES, seed=11))
    truth = {(t["tic"], t["planet_number"]): t for t in pq.read_table(data / "truth.parquet").to_pylist()}
    return data, settings, truth


@pytest.fixture(scope="session")
def tec_run(tec_sim, tmp_path_factory):
    """All TEC steps run once on the shared simulated sector (2 workers); the run folder."""
    from astroflow import config, runner
    from steps.tec.pipeline import TEC

    out = tmp_path_factory.mktemp("tec-run")
    cfg = config.resolve(TEC, settings=tec_sim[1], runner={"workers": 2})
    res = runner.run(TEC, cfg, out, progress=False)
    assert res.ok, {n: (s.state, s.message) for n, s in res.steps.items() if s.state != "done"}
    return out
