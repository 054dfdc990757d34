"""SEDM ``cube`` against the simulator's truth.

What the truth provides (``truth/{date}/``): ``frames.parquet`` gives each frame's target offset
on the IFU (arcsec east and north of the header's RA/DEC), seeing, AIRMASS and flexure;
``spaxels.parquet`` each lenslet's true sky position and throughput; ``transients.parquet`` each
transient's F_lambda above the atmosphere (the standard's is the shipped reference file).  The
simulator's own light model (``simulate_spectra``: P60 area, instrument efficiency, its
atmosphere; ``simulate._psf_fraction``: the Moffat PSF integrated over each lenslet) turns that
into the electrons per s per A each spaxel saw; the cube, sky-subtracted and summed over the
spaxels near the source, must have that spectrum's shape (per 250-A bin, to a few per cent) once
the pipeline's Hayes & Latham extinction correction is applied to it (the cube is corrected with
that curve, not the simulator's), and its sky lines must sit at their true wavelengths.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from astropy.io import fits
from astropy.stats import mad_std
from scipy.optimize import curve_fit

from steps.sedm import simulate as sim
from steps.sedm import simulate_spectra as spec
from steps.sedm.cube import cube_name, read_cube
from steps.sedm.science import extinction

SOURCE_R = 3.0  # arcsec: spaxels summed around the source
SKY_R = 4.0  # arcsec: spaxels beyond are the sky


@pytest.fixture(scope="module")
def cubes(sedm_run):
    frames = {r["filename"]: r for r in sedm_run.sim.ifu() if r["imgtype"] in ("standard", "science")}
    rows = {r["filename"]: r for r in sedm_run.rows("cube")}
    spaxels = sedm_run.sim.table("spaxels")
    transients = {r["filename"]: r for r in sedm_run.sim.table("transients")}
    return SimpleNamespace(run=sedm_run, frames=frames, rows=rows, spaxels=spaxels, transients=transients)


def _matched(c, cube):
    """Indices of the truth spaxels at each cube spaxel's sky position, and the largest offset."""
    tx = np.array([s["sky_x_arcsec"] for s in c.spaxels])
    ty = np.array([s["sky_y_arcsec"] for s in c.spaxels])
    x, y = cube["spaxels"]["x_arcsec"], cube["spaxels"]["y_arcsec"]
    d = np.hypot(x[:, None] - tx[None, :], y[:, None] - ty[None, :])
    return d.argmin(axis=1), float(d.min(axis=1).max()), tx, ty


def test_one_cube_per_sky_frame_in_the_documented_layout(cubes):
    assert sorted(cubes.rows) == sorted(cubes.frames)
    settings = cubes.run.sim.settings
    for name, row in cubes.rows.items():
        assert row["cube_path"].endswith(cube_name(name, row["object"]))
        assert row["cube_path"].split("/")[-1].startswith(f"e3d_crr_b_ifu{settings['date']}_")
        with fits.open(cubes.run.out / row["cube_path"]) as h:
            head = h[0].header
            assert h[0].data.dtype == np.dtype(">f4") and h[0].data.shape == (220, row["n_spaxels"])
            assert h["VARIANCE"].data.shape == h[0].data.shape
            t = h["SPAXELS"].data
            assert t["spaxel"].dtype.kind == "i" and t["x_arcsec"].dtype == np.dtype(">f8")
            assert list(t["spaxel"]) == list(range(row["n_spaxels"]))
            for key in ("AIRMASS", "EXPTIME", "MJD_OBS", "OBJECT", "RA", "DEC", "FLEXX", "FLEXLAM", "EXTCORR", "BUNIT"):
                assert key in head, key
            assert head["CRVAL1"] == 3700.0 and head["CDELT1"] == pytest.approx(5600.0 / 219)
            assert head["OBJECT"] == row["object"] and head["EXTCORR"] is True
            assert head["FLEXX"] == pytest.approx(row["flexure_x"])
        assert row["n_spaxels"] >= 0.8 * len(cubes.spaxels)


def test_spaxels_sit_at_their_true_sky_positions(cubes):
    for row in cubes.rows.values():
        cube = read_cube(cubes.run.out / row["cube_path"])
        index, worst, _, _ = _matched(cubes, cube)
        assert worst < 0.05  # arcsec
        assert len(set(index)) == len(index)


def _expected(c, frame, cube, flux):
    """Electrons / s / A of the source in the sky-subtracted sum over the spaxels near it."""
    lam = cube["wavelength"]
    index, _, tx, ty = _matched(c, cube)
    x, y = cube["spaxels"]["x_arcsec"], cube["spaxels"]["y_arcsec"]
    r = np.hypot(x - frame["target_x_arcsec"], y - frame["target_y_arcsec"])
    near, far = r < SOURCE_R, r > SKY_R
    sp = SimpleNamespace(sky_x=tx[index], sky_y=ty[index], n=index.size)
    frac = sim._psf_fraction(sp, np.broadcast_to(lam, (index.size, lam.size)), frame["target_x_arcsec"],
                             frame["target_y_arcsec"], frame["seeing_arcsec"])
    enclosed = frac[near].sum(axis=0) - near.sum() * np.median(frac[far], axis=0)
    am = frame["airmass"]
    model = spec.photons(flux, lam) * spec.AREA_CM2 * spec.efficiency(lam) * spec.atmosphere(lam, am) * enclosed
    return model * extinction.correction(lam, am), near, far


def _shape_deviation(measured, expected, lam, lo=4250.0, hi=9000.0, width=250.0):
    edges = np.arange(lo, hi + 1, width)
    ratio = np.array([measured[(lam >= a) & (lam < b)].sum() / expected[(lam >= a) & (lam < b)].sum()
                      for a, b in zip(edges[:-1], edges[1:])])
    return ratio / np.median(ratio) - 1.0


def _sources(c):
    for name, frame in c.frames.items():
        if frame["imgtype"] == "standard":
            yield name, frame, spec.standard_flux
        elif c.transients[name]["case"] == "":  # the regular transients, bright and inside the IFU
            t = c.transients[name]
            yield name, frame, lambda lam, _t=t: np.interp(lam, _t["wavelength"], _t["flux"])


def test_the_summed_source_has_the_injected_spectrum_shape(cubes):
    checked = 0
    for name, frame, flux in _sources(cubes):
        cube = read_cube(cubes.run.out / cubes.rows[name]["cube_path"])
        lam, data = cube["wavelength"], cube["flux"]
        expected, near, far = _expected(cubes, frame, cube, flux(lam))
        sky = np.median(data[:, far], axis=1)
        measured = (data[:, near] - sky[:, None]).sum(axis=1)
        dev = _shape_deviation(measured, expected, lam)
        assert np.max(np.abs(dev)) < 0.05, (name, np.round(dev, 3))
        assert np.sqrt(np.mean(dev ** 2)) < 0.02, (name, np.round(dev, 3))
        if frame["imgtype"] == "science":  # the variance is the noise of the sky spaxels about their median
            resid = (data[:, far] - sky[:, None]) / np.sqrt(cube["variance"][:, far])
            band = (lam > 4500) & (lam < 8500)
            assert 0.7 < mad_std(resid[band]) < 1.3, (name, mad_std(resid[band]))
        checked += 1
    assert checked >= 3


def _line_centre(lam, spectrum, centre, half=130.0):
    k = np.abs(lam - centre) < half

    def model(x, a, mu, s, c0, c1):
        return a * np.exp(-0.5 * ((x - mu) / s) ** 2) + c0 + c1 * (x - centre)

    p, _ = curve_fit(model, lam[k], spectrum[k], p0=[spectrum[k].max() - np.median(spectrum[k]), centre, 40.0,
                                                   np.median(spectrum[k]), 0.0])
    return p[1]


def test_sky_lines_sit_at_their_true_wavelengths(cubes):
    """The simulator's Na D blend and [O I] 5577 sky lines (vacuum, ``simulate_spectra.SKY_LINES``)
    in the sky of every long science exposure's cube, within 2 A (the flexure acceptance), while
    the flexure the cube corrects moves them by up to tens of A."""
    moved = []
    for name, frame in cubes.frames.items():
        if frame["imgtype"] != "science" or frame["exptime"] < 600:
            continue
        cube = read_cube(cubes.run.out / cubes.rows[name]["cube_path"])
        sky = np.median(cube["flux"], axis=1)
        for line, _ in spec.SKY_LINES[:2]:
            assert _line_centre(cube["wavelength"], sky, line) == pytest.approx(line, abs=2.0), (name, line)
        moved.append(abs(frame["flexure_lambda_a"]))
    assert len(moved) >= 3 and max(moved) > 10.0
