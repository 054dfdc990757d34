"""SEDM ``flexure`` against the simulator's truth: every standard and science frame has a row, the
across-dispersion shift within 0.2 px and the along-dispersion one within 2 A of the injected
flexure (issue 14's acceptance).

The truth (``truth/{date}/frames.parquet``): ``flexure_across_px`` (rows every trace of the
frame moved), ``flexure_along_px`` (columns) and ``flexure_lambda_a`` (the along shift times the
median dispersion at the Na D line, A), relative to the afternoon calibrations (no flexure).
"""

from __future__ import annotations

import numpy as np
import pytest

from steps.sedm.science import flexure as fx
from steps.sedm.science.traces import Trace


@pytest.fixture(scope="module")
def measured(sedm_run):
    truth = {r["filename"]: r for r in sedm_run.sim.ifu() if r["imgtype"] in ("standard", "science")}
    rows = {r["filename"]: r for r in sedm_run.rows("flexure")}
    return truth, rows


def test_every_sky_frame_is_measured(measured):
    truth, rows = measured
    assert sorted(rows) == sorted(truth)
    assert {r["kind"] for r in rows.values()} == {"standard", "science"}
    for r in rows.values():
        assert r["status"] == "measured", (r["filename"], r["message"])
        assert r["features"] == "Na+O2"


def test_across_dispersion_within_0p2_px(measured):
    truth, rows = measured
    err = np.array([rows[f]["flexure_x"] - t["flexure_across_px"] for f, t in truth.items()])
    spread = np.std([t["flexure_across_px"] for t in truth.values()])
    assert spread > 0.2  # the injected flexure is larger than the tolerance: a zero would fail
    assert np.max(np.abs(err)) < 0.2, err


def test_along_dispersion_within_2_angstrom(measured):
    truth, rows = measured
    err = np.array([rows[f]["flexure_lambda"] - t["flexure_lambda_a"] for f, t in truth.items()])
    assert np.std([t["flexure_lambda_a"] for t in truth.values()]) > 2.0
    assert np.max(np.abs(err)) < 2.0, err


def test_the_sodium_line_alone_is_within_its_errors(measured):
    """The Na D shift by itself (the better-measured feature) agrees with the truth in pixels."""
    truth, rows = measured
    for f, t in truth.items():
        r = rows[f]
        assert abs(r["na_shift_px"] - t["flexure_along_px"]) < max(5 * r["na_error_px"], 0.05), r


def test_trace_scan_finds_a_known_shift():
    """On a synthetic frame of Gaussian traces moved by 0.63 rows the scan's maximum is there."""
    ny, nx = 120, 200
    traces = [Trace(x_min=20, x_max=180, x_mid=100.0, y_mid=y, tilt=0.02, sigma=1.0, flux=1.0, rms=0.0)
              for y in (20.3, 45.1, 70.6, 95.2)]
    yy = np.arange(ny)[:, None]
    xs = np.arange(nx)[None, :]
    image = np.zeros((ny, nx))
    for t in traces:
        on = (xs >= t.x_min) & (xs <= t.x_max)
        image += on * 100.0 * np.exp(-0.5 * ((yy - (t.y(xs) + 0.63)) / 1.0) ** 2)
    assert fx.across_shift(image, traces).shift == pytest.approx(0.63, abs=0.03)
