"""The spaxel traces found blind from the dome flats, against the simulator's truth, and on the
independent sample's dome flat (no truth there: the traces must be consistent with one
another)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from steps.sedm.science import ccd
from steps.sedm.science.traces import find_traces

SAMPLE_DOME = (Path(__file__).resolve().parents[3] / "shared" / "samples" / "sedm-night" / "20230518"
               / "ifu20230518_00_22_30.fits")


@pytest.fixture(scope="module")
def found(sedm_run):
    rows = sedm_run.rows("geometry")
    assert rows, "geometry wrote no trace"
    return rows


@pytest.fixture(scope="module")
def truth(sedm_run):
    sp = sedm_run.sim.table("spaxels")
    return {k: np.array([r[k] for r in sp]) for k in ("x0", "y0", "tilt", "trace_len")}


def _match(rows, truth):
    """For each found trace, the truth spaxel whose line passes nearest at the trace's middle."""
    out = []
    for r in rows:
        x = r["x_mid"]
        covers = (x >= truth["x0"]) & (x <= truth["x0"] + truth["trace_len"] - 1)
        y = truth["y0"] + truth["tilt"] * (x - truth["x0"])
        d = np.where(covers, np.abs(y - r["y_mid"]), np.inf)
        j = int(np.argmin(d))
        out.append((j, r["y_mid"] - y[j], r["tilt"] - truth["tilt"][j], r["x_min"] - truth["x0"][j],
                    r["x_max"] - (truth["x0"][j] + truth["trace_len"][j] - 1)))
    return np.array(out)


def test_every_spaxel_found_once_and_nothing_else(found, truth):
    m = _match(found, truth)
    assert len(found) == truth["x0"].size
    assert len(set(m[:, 0].astype(int))) == truth["x0"].size
    assert np.abs(m[:, 1]).max() < 0.5  # every trace is next to a true one


def test_trace_lines_and_extents_against_the_truth(found, truth):
    m = _match(found, truth)
    dy, dtilt, start, end = m[:, 1], m[:, 2], m[:, 3], m[:, 4]
    print(f"trace centre: rms {dy.std():.4f} px, max {np.abs(dy).max():.4f} px; tilt rms {dtilt.std():.5f}; "
          f"ends within {np.abs(start).max():.1f} / {np.abs(end).max():.1f} px")
    assert np.sqrt(np.mean(dy ** 2)) < 0.05 and np.abs(dy).max() < 0.2
    assert np.abs(dtilt).max() < 0.002
    assert np.abs(start).max() <= 6 and np.abs(end).max() <= 6
    widths = np.array([r["sigma"] for r in found])
    assert np.all((widths > 0.7) & (widths < 1.4))  # the truth's sigma_y is about 1 px


def test_the_trace_match_file(sedm_run, found):
    doc = json.loads((sedm_run.out / found[0]["path"]).read_text())
    assert doc["n_traces"] == len(found) == len(doc["traces"]) and len(doc["frames"]) == 5
    t = doc["traces"][0]
    (x0, y0), (x1, y1), (x2, y2), (x3, y3) = t["polygon"]
    assert x0 == x3 < x1 == x2 and y0 < y3 and y1 < y2
    from astroflow.calib import Library

    assert [Path(c.path).name for c in Library.for_run(sedm_run.out).list("TRACEMATCH")] == [Path(found[0]["path"]).name]


def _overlaps(traces) -> int:
    """Pairs of trace polygons that overlap (sharing columns and closer than their half-widths)."""
    x_min = np.array([t.x_min for t in traces])
    x_max = np.array([t.x_max for t in traces])
    h = np.array([2.5 * t.sigma for t in traces])
    n = 0
    for i, t in enumerate(traces):
        lo, hi = np.maximum(x_min, t.x_min), np.minimum(x_max, t.x_max)
        share = np.nonzero(hi >= lo)[0]
        share = share[share > i]
        if share.size:
            mid = 0.5 * (lo[share] + hi[share])
            other = np.array([traces[j].y(m) for j, m in zip(share, mid)])
            n += int(np.sum(np.abs(other - t.y(mid)) < h[share] + h[i]))
    return n


@pytest.mark.skipif(not SAMPLE_DOME.is_file(), reason="the independent SEDM sample is absent")
def test_traces_of_the_independent_sample_dome_are_consistent():
    """Written by another tool: one dome flat of a full-size IFU.  Without its truth, the traces
    found must look like one family: many, of one length and width, straight, none overlapping."""
    with fits.open(SAMPLE_DOME) as h:
        raw, head = h[0].data, h[0].header
    image = ccd.debias(raw, head["OSCANX0"], head["OSCANX1"], head["GAIN"])
    traces = find_traces(image, slice(0, head["OSCANX0"]))
    lengths = np.array([t.x_max - t.x_min + 1 for t in traces])
    widths = np.array([t.sigma for t in traces])
    print(f"sample dome: {len(traces)} traces, length median {np.median(lengths):.0f} px, "
          f"width median {np.median(widths):.2f} px, centroid rms median {np.median([t.rms for t in traces]):.3f} px")
    assert len(traces) > 500
    assert np.mean(np.abs(lengths / np.median(lengths) - 1) < 0.3) > 0.9
    assert np.mean(np.abs(widths / np.median(widths) - 1) < 0.2) > 0.95
    assert np.median([t.rms for t in traces]) < 0.1
    tilts = np.array([t.tilt for t in traces])
    assert np.std(tilts) < 0.01
    assert _overlaps(traces) == 0
