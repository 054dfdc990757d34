"""The science kernels on the independent sample night (../shared/samples/nres-night, written by
another tool in the archive's format): blind traces from the two flats, the hand-trace path, and
the blind ThAr solution of every fiber from the two DOUBLE arcs."""

from pathlib import Path

import numpy as np
import pytest

from steps.nres.science import ccd, extract, trace
from steps.nres.science import wavelength as W

ROOT = Path(__file__).resolve().parents[3] / "shared" / "samples" / "nres-night" / "cpt" / "nres03" / "20240115" / "raw"
LIST = Path(__file__).resolve().parents[2] / "steps" / "nres" / "data" / "thar_lines.csv"

pytestmark = pytest.mark.skipif(not ROOT.is_dir(), reason="the sample night is not here")


@pytest.fixture(scope="module")
def night():
    from astropy.io import fits
    frames = {}
    for path in sorted(ROOT.glob("*.fits.fz")):
        h = fits.getheader(path, 1)
        if h["OBSTYPE"] not in ("BIAS", "LAMPFLAT", "DOUBLE"):
            continue
        img, _ = ccd.overscan_correct(fits.getdata(path, 1), h["BIASSEC"], h["TRIMSEC"])
        frames.setdefault((h["OBSTYPE"], h["OBJECTS"]), []).append(img)
        gain, rn = h["GAIN"], h["RDNOISE"]
    biases = frames[("BIAS", "none&none&none")]
    bias, _ = ccd.sigma_clipped_stack(biases)
    def master(key):
        return ccd.sigma_clipped_stack([(f - bias) * gain for f in frames[key]])[0]
    out = {"read_noise_e": ccd.read_noise(biases, gain), "header_rn": rn,
           "flat01": master(("LAMPFLAT", "tung&tung&none")), "flat12": master(("LAMPFLAT", "none&tung&tung")),
           "arc01": (frames[("DOUBLE", "thar&thar&none")][0] - bias) * gain,
           "arc12": (frames[("DOUBLE", "none&thar&thar")][0] - bias) * gain}
    out["traces"] = trace.trace_two_flats(out["flat01"], [0, 1], out["flat12"], [1, 2])
    return out


def test_read_noise_from_the_sample_biases(night):
    assert abs(night["read_noise_e"] / night["header_rn"] - 1) < 0.02


def test_blind_traces_of_the_sample(night):
    ts = night["traces"]
    assert len(ts) == 36 and ts.n_orders == 12 and sorted(set(ts.fiber)) == [0, 1, 2]
    assert np.all(ts.rms < 0.01)                       # centroids about the degree-5 fits (px)
    assert np.all(ts.x_min == 0) and np.all(ts.x_max == ts.nx - 1)
    yc = ts.y([512])[:, 0]
    for o in range(12):
        y0, y1, y2 = (yc[ts.index(o, f)] for f in (0, 1, 2))
        assert y0 > y1 > y2 and abs((y0 - y1) - (y1 - y2)) < 0.05


def test_hand_trace_path_on_the_sample(night):
    ts = night["traces"]
    hand = trace.read_hand_trace(trace.write_hand_trace(trace.hand_trace_from_traces(ts, fibers=(0, 1))))
    t0 = trace.trace_from_hand(hand, ts.nx, ts.ny, n_orders=ts.n_orders)
    refined = trace.refine_two_flats(night["flat01"], [0, 1], night["flat12"], [1, 2], t0)
    for i in range(len(ts)):
        j = refined.index(ts.order[i], ts.fiber[i])
        assert np.max(np.abs(refined.y()[j] - ts.y()[i])) < 0.05


def test_blind_wavelength_solution_of_the_sample(night):
    wl, amp = W.parse_line_list(LIST.read_text())
    ts = night["traces"]
    prof = extract.profile_from_flat(night["flat01"] + night["flat12"], ts)
    rn = night["header_rn"]
    ex = {k: extract.optimal_extract(night[k], extract.variance_image(night[k], rn), prof, read_noise=rn)
          for k in ("arc01", "arc12")}
    rows = lambda e, f: np.flatnonzero(e["fiber"] == f)
    e1 = ex["arc01"]
    sol1, _, q1 = W.solve(e1["flux"][rows(e1, 1)], e1["order"][rows(e1, 1)], wl, amp,
                          variances=e1["variance"][rows(e1, 1)])
    assert (sol1.m0, sol1.s) == (91, -1)               # orders 91 (bottom) to 80
    assert q1["NLINES"] >= 100 and q1["RMS"] <= 0.005 and q1["RVPRECSN"] < 10
    for key, fiber in (("arc01", 0), ("arc12", 2)):
        e = ex[key]
        sol, _, q = W.solve(e["flux"][rows(e, fiber)], e["order"][rows(e, fiber)], wl, amp,
                            variances=e["variance"][rows(e, fiber)], guess=sol1)
        assert q["NLINES"] >= 100 and q["RMS"] <= 0.005
        # fibers differ by a shift of a few pixels along the orders
        assert 0.5 < abs(sol.meta["guide_shift_px"]) < 5
