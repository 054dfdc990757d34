"""SEDM extraction against truth: the PSF fit and forced photometry on cubes made from the
simulator's own spaxel layout and PSF (a Moffat of known seeing, integrated over each lenslet),
with sky and noise; the guider astrometry on the simulated night's guider frames; and, once the
pipeline has the ``cube`` step, the extraction rows of the simulated night."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from steps.sedm import simulate as sim
from steps.sedm import simulate_optics as opt
from steps.sedm import simulate_spectra as spec
from steps.sedm.science import extract as ex
from steps.sedm.science import guider

LAM = np.linspace(3700.0, 9300.0, 220)
BAND = (LAM > 4500) & (LAM < 8500)


@pytest.fixture(scope="module")
def spaxels():
    return opt.make_spaxels(opt.SMALL, np.random.default_rng(7))


def synthetic_cube(sp, sources, seeing, exptime, rng, sky_level=30.0, read_noise=5.0):
    """(flux, variance, truths) in e-/s/A per spaxel: point sources (x, y, F(lambda) e-/s/A) through
    the simulator's PSF, a sky continuum with the Na D line, Poisson and read noise."""
    lam2 = np.broadcast_to(LAM, (sp.n, LAM.size))
    model = np.zeros((LAM.size, sp.n))
    for x, y, f in sources:
        model += f[:, None] * sim._psf_fraction(sp, lam2, x, y, seeing).T
    sky = sky_level * (1.0 + 0.5 * (LAM / 6000.0)) + 400.0 * np.exp(-0.5 * ((LAM - spec.NA_D_VAC) / 12.0) ** 2)
    model += sky[:, None]
    var = (np.clip(model, 0, None) * exptime + read_noise ** 2) / exptime ** 2
    return model + rng.standard_normal(model.shape) * np.sqrt(var), var


def sn_like(lam, level):
    return level * (lam / 6000.0) ** -1.5 * (1.0 - 0.3 * np.exp(-0.5 * ((lam - 6150.0) / 80.0) ** 2))


@pytest.mark.parametrize("level,exptime", [(400.0, 1200.0), (40.0, 1200.0)])
def test_forced_psf_flux_position_width(spaxels, level, exptime):
    rng = np.random.default_rng(int(level))
    x0, y0, seeing = 0.9, -1.3, 1.7
    truth = sn_like(LAM, level)
    flux, var = synthetic_cube(spaxels, [(x0, y0, truth)], seeing, exptime, rng)
    out = ex.extract_point_source(LAM, flux, var, spaxels.sky_x, spaxels.sky_y, (x0 + 0.6, y0 - 0.4),
                                  centroid_err=3.0)
    snr = np.median(out.flux[BAND] / np.sqrt(out.variance[BAND]))
    assert snr >= 20
    ratio = np.median(out.flux[BAND] / truth[BAND])
    assert abs(ratio - 1) < 0.02, (ratio, snr)
    # the variance describes the scatter
    pull = (out.flux[BAND] - truth[BAND]) / np.sqrt(out.variance[BAND])
    assert 0.7 < np.std(pull) < 1.4
    assert np.hypot(out.centroid[0] - x0, out.centroid[1] - y0) < 0.05
    assert abs(out.fwhm / seeing - 1) < 0.05  # the simulator's seeing is the FWHM at 6000 A
    # the width follows seeing ~ lambda^-0.2 and the sky (with its Na line) went into the background
    assert out.psf.fwhm[0] > out.psf.fwhm[-1]
    na = np.abs(LAM - spec.NA_D_VAC) < 40
    assert np.all(np.abs(out.flux[na] - truth[na]) < 4 * np.sqrt(out.variance[na]))


def test_brightest_spaxel_and_faint_source(spaxels):
    rng = np.random.default_rng(3)
    x0, y0 = -1.9, 0.8
    flux, var = synthetic_cube(spaxels, [(x0, y0, sn_like(LAM, 800.0))], 1.5, 120.0, rng)
    _, img, _ = ex.metaslices(LAM, flux, var, (4000.0, 8000.0), 1)
    bx, by = ex.brightest(spaxels.sky_x, spaxels.sky_y, img[0])
    assert np.hypot(bx - x0, by - y0) < 0.5 * opt.SPAXEL_ARCSEC
    # a source far too faint: the spectrum is mostly noise, more than 20 % of it negative
    faint, fvar = synthetic_cube(spaxels, [(0.3, 0.2, sn_like(LAM, 0.3))], 1.5, 300.0, rng)
    out = ex.extract_point_source(LAM, faint, fvar, spaxels.sky_x, spaxels.sky_y, (0.3, 0.2), centroid_err=3.0)
    assert ex.negative_fraction(out.flux) > 0.2
    assert not ex.in_ifu(spaxels.sky_x, spaxels.sky_y, (12.0, 0.0))
    assert ex.in_ifu(spaxels.sky_x, spaxels.sky_y, (x0, y0))


def test_neighbour_is_the_brightest_spaxel(spaxels):
    rng = np.random.default_rng(5)
    tx, ty = 0.4, 0.6
    nx, ny = tx + 2.6, ty - 1.5  # the simulator's neighbour case: 1.5 mag brighter
    flux, var = synthetic_cube(spaxels, [(tx, ty, sn_like(LAM, 100.0)), (nx, ny, sn_like(LAM, 400.0))], 1.6,
                               1200.0, rng)
    _, img, _ = ex.metaslices(LAM, flux, var, (4000.0, 8000.0), 1)
    bx, by = ex.brightest(spaxels.sky_x, spaxels.sky_y, img[0])
    assert np.hypot(bx - nx, by - ny) < np.hypot(bx - tx, by - ty)
    # a hand centroid on the target (redex X Y): the fit stays on the target's side
    out = ex.extract_point_source(LAM, flux, var, spaxels.sky_x, spaxels.sky_y, (tx + 0.2, ty), centroid_err=1.5,
                                  buffer=4.0)
    assert np.hypot(out.centroid[0] - tx, out.centroid[1] - ty) < np.hypot(out.centroid[0] - nx, out.centroid[1] - ny)


def _guider_sets(sim_):
    frames = sim_.table("frames")
    science = [r for r in frames if r["camera"] == "IFU" and r["imgtype"] == "science"]
    return [(r, [g for g in frames if g["camera"] == "RC" and g["ifu_file"] == r["filename"]]) for r in science]


def test_guider_wcs_places_target_as_truth(sedm_sim):
    checked = 0
    for ifu, rc in _guider_sets(sedm_sim):
        head = fits.getheader(sedm_sim.night / ifu["filename"])
        images, headers = [], []
        for g in rc:
            with fits.open(sedm_sim.night / g["filename"]) as h:
                images.append(h[0].data.astype(float))
                headers.append(h[0].header)
        centre = guider.parse_ra(head["RA"]), guider.parse_dec(head["DEC"])
        target = guider.parse_ra(head["OBJRA"]), guider.parse_dec(head["OBJDEC"])
        stacked = guider.stack(images)
        wcs, why = guider.check_wcs(headers, images[0].shape, stacked, centre)
        assert (wcs is not None) == ifu["guider_wcs"], (ifu["case"], why)
        if wcs is None:
            continue
        dx, dy = guider.ifu_offset(wcs, target, centre)
        assert abs(dx - ifu["target_x_arcsec"]) < 0.05 and abs(dy - ifu["target_y_arcsec"]) < 0.05
        checked += 1
    assert checked >= 3


def test_extract_rows_of_the_night(sedm_run):
    from steps.sedm.pipeline import SEDM

    if "extract" not in [s.name for s in SEDM.steps]:
        pytest.skip("the pipeline has no extract step yet")
    rows = {r["filename"]: r for r in sedm_run.rows("extract")}
    truth = [r for r in sedm_run.sim.table("frames") if r["camera"] == "IFU" and r["imgtype"] in ("standard", "science")]
    assert {r["filename"] for r in truth} == set(rows)
    for t in truth:
        r = rows[t["filename"]]
        case = t["case"]
        if t["imgtype"] == "standard":
            assert r["position_source"] == "brightest"
        elif case in ("guider_failed", "neighbour"):
            assert r["position_source"] == "brightest" and not r["guider_ok"]
        elif case == "outside":
            assert r["guider_ok"] and not r["in_ifu"]
        else:
            assert r["position_source"] == "wcs" and r["guider_ok"] and r["in_ifu"]
            assert abs(r["target_x"] - t["target_x_arcsec"]) < 0.05 and abs(r["target_y"] - t["target_y_arcsec"]) < 0.05
        if case in ("", "guider_failed") or t["imgtype"] == "standard":
            # the PSF centroid is on the source, the width its seeing
            assert np.hypot(r["centroid_x"] - t["target_x_arcsec"], r["centroid_y"] - t["target_y_arcsec"]) < 0.25, t
            assert abs(r["psf_fwhm"] / t["seeing_arcsec"] - 1) < 0.15, t
        if case == "neighbour":  # the brightest spaxel is the brighter neighbour, not the target
            tr = next(x for x in sedm_run.sim.table("transients") if x["filename"] == t["filename"])
            assert np.hypot(r["centroid_x"] - tr["neighbour_x_arcsec"], r["centroid_y"] - tr["neighbour_y_arcsec"]) < \
                np.hypot(r["centroid_x"] - t["target_x_arcsec"], r["centroid_y"] - t["target_y_arcsec"])
        spectrum = sedm_run.out / r["spectrum_path"]
        with fits.open(spectrum) as h:
            assert h[0].data.shape == h["VARIANCE"].data.shape
            assert h[0].header["POSSRC"] == r["position_source"]


def test_extracted_flux_relative_to_the_standard(sedm_run):
    """The science spectra divided by the standard's extraction (its reference spectrum known)
    give the transients' true F_lambda: the extraction keeps the flux to 2.5 % (median over
    4500-8100 A outside the telluric bands) for every transient with S/N >= 20 on its source."""
    from steps.sedm.extract import read_spectrum
    from steps.sedm.pipeline import SEDM

    if "extract" not in [s.name for s in SEDM.steps]:
        pytest.skip("the pipeline has no extract step yet")
    rows = sedm_run.rows("extract")
    std = next(r for r in rows if r["kind"] == "standard")
    s = read_spectrum(sedm_run.out / std["spectrum_path"])
    lam = s["wavelength"]
    response = s["flux"] / spec.standard_flux(lam)
    clean = ((lam > 4500) & (lam < 6800)) | ((lam > 7000) & (lam < 7550)) | ((lam > 7700) & (lam < 8100))
    checked = 0
    for t in sedm_run.sim.table("transients"):
        r = next(x for x in rows if x["filename"] == t["filename"])
        if t["case"] in ("outside", "neighbour") or r["snr_median"] < 20:
            continue
        x = read_spectrum(sedm_run.out / r["spectrum_path"])
        ratio = np.median((x["flux"] / np.interp(lam, t["wavelength"], t["flux"]) / response)[clean])
        assert abs(ratio - 1) < 0.025, (t["object"], t["case"], ratio)
        checked += 1
    assert checked >= 4
