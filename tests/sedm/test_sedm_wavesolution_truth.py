"""The per-spaxel wavelength solutions against the simulator's truth polynomials, the product's
layout, and the fallback of a night whose arcs are too few (the simulator's ``few_arcs`` case)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from numpy.polynomial import polynomial as P

from astroflow import config, runner
from astroflow.rundir import read_dataset
from astroflow.status import collect, render_text
from steps.sedm.geometry import read_trace_match
from steps.sedm.pipeline import SEDM
from steps.sedm.wavesolution import read_wavesolution, wavelengths


@pytest.fixture(scope="module")
def solution(sedm_run):
    rows = sedm_run.rows("wavesolution")
    assert len(rows) == 1 and rows[0]["status"] == "complete", rows
    return rows[0], read_wavesolution(sedm_run.out / rows[0]["path"])


def _truth_errors(sedm_run, sol) -> np.ndarray:
    """Per found trace, the rms (A) of solution - truth over the columns the trace and its true
    spaxel share."""
    sp = sedm_run.sim.table("spaxels")
    x0, y0, tilt, length = (np.array([r[k] for r in sp]) for k in ("x0", "y0", "tilt", "trace_len"))
    coeffs = np.array([r["wave_coeffs"] for r in sp])
    traces = read_trace_match(sedm_run.out / sedm_run.rows("geometry")[0]["path"])
    out = []
    for i, t in enumerate(traces):
        covers = (t.x_mid >= x0) & (t.x_mid <= x0 + length - 1)
        j = int(np.argmin(np.where(covers, np.abs(y0 + tilt * (t.x_mid - x0) - t.y_mid), np.inf)))
        xs = np.arange(max(t.x_min, int(np.ceil(x0[j]))), min(t.x_max, int(x0[j] + length[j] - 1)) + 1)
        out.append(np.sqrt(np.mean((wavelengths(sol, i, xs) - P.polyval(xs - x0[j], coeffs[j])) ** 2)))
    return np.array(out)


def test_wavelengths_against_the_truth(sedm_run, solution):
    row, sol = solution
    err = _truth_errors(sedm_run, sol)
    good = sol["good"]
    print(f"truth error: median {np.median(err):.2f} A (good spaxels {np.median(err[good]):.2f} A, "
          f"90 % {np.percentile(err[good], 90):.2f}, max {err[good].max():.2f}); fit rms median "
          f"{np.median(sol['rms']):.2f} A; {good.sum()}/{good.size} good")
    assert np.median(err) <= 2.0  # the acceptance: about 0.1 px
    assert np.median(err[good]) <= 1.0 and np.percentile(err[good], 90) <= 3.0
    assert good.mean() >= 0.8
    # the fitted rms is an honest measure: it is not smaller than the truth error for most spaxels
    assert np.mean(sol["rms"] >= 0.5 * err) > 0.9


def test_the_wavesolution_product(sedm_run, solution):
    row, sol = solution
    head = sol["header"]
    assert head["WAVEDEG"] == 5 and sol["coeffs"].shape == (row["n_traces"], 6)
    assert head["NTRACE"] == row["n_traces"] and head["NGOOD"] == row["n_good"] == int(sol["good"].sum())
    assert abs(head["MEDRMS"] - row["median_rms"]) < 1e-9 and head["TRACEMAT"] == "20240612_TraceMatch.json"
    with fits.open(sedm_run.out / row["path"]) as h:
        lines = h["LINES"].data
        assert set(lines["lamp"]) == {"Hg", "Cd", "Xe"} and lines["kept"].mean() > 0.8
    assert (sedm_run.out / row["plot"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from astroflow.calib import Library

    assert [Path(c.path).name for c in Library.for_run(sedm_run.out).list("WAVESOLUTION")] == \
        ["20240612_WaveSolution.fits"]
    table = {r["product"]: r for r in sedm_run.rows("calibrations")}
    assert table["20240612_WaveSolution.fits"]["status"] == "complete"
    assert table["20240612_WaveSolution.fits"]["wave_rms"] == pytest.approx(row["median_rms"])


def test_a_night_whose_arcs_are_too_few_falls_back(sedm_run, tmp_path):
    """The next night has 2 of each 5 arcs and nothing else: no geometry, no wavelength solution
    and no flat tonight (the wavesolution row names GeometrySolutionFailed), and the session
    night's products (in a copy of its library) are linked in, each recorded as a fallback."""
    from steps.sedm.simulate import simulate_night

    date = "20240613"
    simulate_night(tmp_path / "sim", date=date, cases=("few_arcs",))
    raw = tmp_path / "raw" / date
    raw.mkdir(parents=True)
    for p in (tmp_path / "sim" / date).glob("ifu*.fits"):
        if fits.getval(p, "IMGTYPE") == "lamp":
            shutil.copy2(p, raw / p.name)
    shutil.rmtree(tmp_path / "sim")
    shutil.copy2(sedm_run.out / "calibrations.db", tmp_path / "library.db")
    cfg = config.resolve(SEDM, settings={"data_root": str(raw.parent), "date": date},
                         runner={"workers": 2, "db_url": f"sqlite:///{tmp_path / 'library.db'}"},
                         steps={"debias_crr": {"niter": 1}})
    out = tmp_path / "run"
    result = runner.run(SEDM, cfg, out, progress=False)
    assert result.steps["fallback"].state == "done" and result.steps["calibrations"].state == "done"
    wave = read_dataset(out / "wavesolution").to_pylist()[0]
    assert wave["status"] == "failed" and wave["message"].startswith("GeometrySolutionFailed: too few arc frames")
    fb = {r["product"]: r for r in read_dataset(out / "fallback").to_pylist()}
    table = {r["product"]: r for r in read_dataset(out / "calibrations").to_pylist()}
    night = sedm_run.out / "redux" / "20240612"
    for name, suffix in (("TraceMatch", ".json"), ("HexaGrid", ".json"), ("WaveSolution", ".fits"),
                         ("Flat", ".fits")):
        product = f"{date}_{name}{suffix}"
        assert (fb[product]["status"], fb[product]["fallback_from"]) == ("fallback", "20240612"), fb[product]
        linked = out / fb[product]["path"]
        assert linked.name == f"20240612_{name}{suffix}" and linked.is_symlink()
        assert linked.resolve() == (night / linked.name).resolve()
        row = table[product]
        assert (row["night"], row["status"], row["fallback_from"]) == (date, "fallback", "20240612")
    row = table[f"{date}_WaveSolution.fits"]
    assert row["wave_rms"] == pytest.approx(sedm_run.rows("wavesolution")[0]["median_rms"])
    assert "GeometrySolutionFailed" in row["message"]
    assert "TooFewFrames" in render_text(collect(out))  # the arc and dome sets, named

SAMPLE = Path(__file__).resolve().parents[3] / "shared" / "samples" / "sedm-night" / "20230518"


@pytest.mark.skipif(not SAMPLE.is_dir(), reason="the independent SEDM sample is absent")
def test_the_independent_samples_arcs_are_solved_blind():
    """Another tool's night (one frame per lamp, its own instrument model, red at low x): on 60
    of its traces the lines are identified with no prior and the solutions are good."""
    from steps.sedm.science import ccd, spectra
    from steps.sedm.science import wavesolution as ws
    from steps.sedm.science.traces import find_traces
    from steps.sedm.settings import ARC_LINES

    def load(name):
        with fits.open(SAMPLE / name) as h:
            return ccd.debias(h[0].data, h[0].header["OSCANX0"], h[0].header["OSCANX1"], h[0].header["GAIN"])

    imaging = slice(0, fits.getval(SAMPLE / "ifu20230518_00_22_30.fits", "OSCANX0"))
    traces = find_traces(load("ifu20230518_00_22_30.fits"), imaging)
    chosen = [traces[i] for i in np.linspace(0, len(traces) - 1, 60).astype(int)]
    arcs = {}
    for lamp, name in (("Hg", "ifu20230518_00_28_20.fits"), ("Cd", "ifu20230518_00_35_50.fits"),
                       ("Xe", "ifu20230518_00_48_20.fits")):
        starts, arcs[lamp] = spectra.extract(load(name), chosen, imaging)
    groups = ws.read_line_list(ARC_LINES)
    night = ws.solve(starts, arcs, groups, min_good=48, rms_limit=3.0)
    sol = next(s for i, s in enumerate(night.solutions) if night.good[i])
    ends = sol.wavelength(np.array([starts[0], starts[0] + arcs["Hg"].shape[1] - 1]))
    print(f"sample: {night.identification.n_matched} lines identified, {night.good.sum()}/60 good, "
          f"median rms {np.nanmedian(night.rms):.2f} A, a spaxel spans {ends[0]:.0f}-{ends[1]:.0f} A")
    assert night.identification.n_matched >= 10
    assert np.nanmedian(night.rms) <= 2.0
    assert ends[0] > ends[1] and ends[1] < 3800 and ends[0] > 9300  # red at low x, the whole SEDM range
