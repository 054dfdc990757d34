"""The hexagonal grid and the 3D flat against the simulator's truth (lattice indices, injected
throughput), and the most recent fluxcal linked in from the calibration library."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone

import numpy as np
import pytest
from astropy.io import fits

from astroflow import config, runner
from astroflow.rundir import read_dataset
from steps.sedm.flat import read_flat
from steps.sedm.geometry import read_trace_match
from steps.sedm.pipeline import SEDM
from steps.sedm.science.hexagrid import NoHexagonalGrid, fit_grid


@pytest.fixture(scope="module")
def matched(sedm_run):
    """For each found trace (in the trace match's order), the index of its true spaxel."""
    sp = sedm_run.sim.table("spaxels")
    x0, y0, tilt, length = (np.array([r[k] for r in sp]) for k in ("x0", "y0", "tilt", "trace_len"))
    traces = read_trace_match(sedm_run.out / sedm_run.rows("geometry")[0]["path"])
    out = []
    for t in traces:
        covers = (t.x_mid >= x0) & (t.x_mid <= x0 + length - 1)
        out.append(int(np.argmin(np.where(covers, np.abs(y0 + tilt * (t.x_mid - x0) - t.y_mid), np.inf))))
    assert len(set(out)) == len(sp)
    return np.array(out), sp


def test_the_hexagonal_grid_is_the_true_lattice(sedm_run, matched):
    """Up to the grid's orientation (which the CCD alone cannot tell), every pair of spaxels is as
    far apart on the grid found as on the true lenslet grid."""
    m, sp = matched
    row = sedm_run.rows("hexagrid")[0]
    assert row["status"] == "complete" and row["n_spaxels"] == len(sp)
    doc = json.loads((sedm_run.out / row["path"]).read_text())
    fx, fy = (np.array([s[k] for s in doc["spaxels"]]) for k in ("x", "y"))
    q, r = (np.array([s[k] for s in sp])[m] for k in ("q", "r"))
    tx, ty = q + r / 2.0, r * np.sqrt(3.0) / 2.0
    found = np.hypot(fx[:, None] - fx[None, :], fy[:, None] - fy[None, :])
    true = np.hypot(tx[:, None] - tx[None, :], ty[:, None] - ty[None, :])
    assert np.abs(found - true).max() < 1e-9
    assert doc["pitch_px"] == pytest.approx(38.0, rel=0.01)  # the simulator's lattice: 38 px at 25.25 deg
    assert doc["angle_deg"] % 60 == pytest.approx(25.25, abs=0.3)


def test_a_scattered_set_of_points_is_no_grid():
    rng = np.random.default_rng(3)
    with pytest.raises(NoHexagonalGrid):
        fit_grid(rng.uniform(0, 500, (150, 2)))


def test_the_flat_recovers_the_injected_throughput(sedm_run, matched):
    m, sp = matched
    row = sedm_run.rows("flat")[0]
    assert row["status"] == "complete" and row["wavesolution"] == "20240612_WaveSolution.fits"
    flat = read_flat(sedm_run.out / row["path"])
    truth = np.array([s["throughput"] for s in sp])[m]
    good = flat["good"]
    ratio = flat["throughput"] / truth
    ratio /= ratio[good].mean()
    print(f"throughput / truth: rms {ratio[good].std():.5f}, max {np.abs(ratio[good] - 1).max():.5f} "
          f"({good.sum()} good of {good.size}); injected scatter {truth.std():.3f}")
    assert ratio[good].std() < 0.003 and np.abs(ratio[good] - 1).max() < 0.01
    # the simulated throughput is grey: over the flat's band the 3D flat is flat in wavelength to
    # < 1 % per spaxel (at the blue end, where the dome spectrum is steep, the wavelength
    # solution's error of a few tenths of an A shows as a few %)
    band = (flat["wavelength"] >= 4500) & (flat["wavelength"] <= 8500)
    per_lambda = flat["flat"][good][:, band] / flat["throughput"][good, None]
    assert np.nanmedian(np.nanstd(per_lambda, axis=1)) < 0.01
    assert flat["wavelength"][0] == 3700.0 and flat["wavelength"][-1] == pytest.approx(9300.0)
    assert flat["flat"].shape == (len(sp), 220)
    assert (sedm_run.out / row["plot"]).read_bytes()[:4] == b"\x89PNG"


def test_the_most_recent_fluxcal_is_linked_in(sedm_sim, sedm_run, tmp_path):
    """A library with two fluxcals from earlier nights and one marked bad: the latest good one is
    linked into tonight's directory and the table says which night it came from."""
    from astroflow.calib import Library

    shutil.copy2(sedm_run.out / "calibrations.db", tmp_path / "library.db")
    url = f"sqlite:///{tmp_path / 'library.db'}"
    lib = Library(url)
    made = {}
    for name, day in (("fluxcal_20240609_STD.fits", 9), ("fluxcal_20240610_STD.fits", 10),
                      ("fluxcal_20240611_STD.fits", 11)):
        made[name] = tmp_path / "earlier" / name
        made[name].parent.mkdir(exist_ok=True)
        fits.PrimaryHDU(np.ones(3)).writeto(made[name])
        lib.register("FLUXCAL", made[name], datetime(2024, 6, day, 6, 0, tzinfo=timezone.utc), {})
    lib.mark_bad(made["fluxcal_20240611_STD.fits"], "standard clipped by the dome")
    raw = tmp_path / "raw" / "20240612"
    raw.mkdir(parents=True)
    first = min(sedm_sim.ifu(), key=lambda r: r["mjd_obs"])["filename"]
    shutil.copy2(sedm_sim.night / first, raw / first)
    cfg = config.resolve(SEDM, settings={"data_root": str(raw.parent), "date": "20240612"},
                         runner={"workers": 1, "db_url": url})
    out = tmp_path / "run"
    assert runner.run(SEDM, cfg, out, until="fluxcal_link", progress=False).steps["fluxcal_link"].state == "done"
    row = read_dataset(out / "fluxcal_link").to_pylist()[0]
    assert (row["product"], row["status"], row["fallback_from"]) == ("fluxcal_20240610_STD.fits", "linked", "20240610")
    linked = out / row["path"]
    assert linked.is_symlink() and linked.resolve() == made["fluxcal_20240610_STD.fits"].resolve()
