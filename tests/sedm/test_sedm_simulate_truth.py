"""The simulated SEDM frames agree with their truth: arc lines where the wavelength solution puts
them, dome-flat throughput, flexure of the traces, sources where the truth puts them, the cases."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from steps.sedm import simulate_detector as det
from steps.sedm import simulate_guider as gdr
from steps.sedm import simulate_optics as opt
from steps.sedm import simulate_spectra as spec
from steps.sedm.simulate import lamp_light
from steps.sedm.simulate_plan import CASES, parse_sexagesimal, plan_night


def spaxels(sim) -> opt.Spaxels:
    rows = sim.table("spaxels")
    col = {k: np.array([r[k] for r in rows]) for k in rows[0]}
    return opt.Spaxels(q=col["q"], r=col["r"], sky_x=col["sky_x_arcsec"], sky_y=col["sky_y_arcsec"], x0=col["x0"],
                       y0=col["y0"], tilt=col["tilt"], sigma_y=col["sigma_y_px"], sigma_line=col["sigma_line_px"],
                       throughput=col["throughput"], wave_coeffs=np.vstack(col["wave_coeffs"]),
                       trace_len=int(rows[0]["trace_len"]))


def debiased(sim, filenames) -> np.ndarray:
    """Electrons: the per-row overscan median removed, times GAIN, median of the frames."""
    frames = []
    for name in filenames:
        d = sim.data(name)
        frames.append((d[:, :-det.N_OVERSCAN] - np.median(d[:, -det.N_OVERSCAN:], axis=1)[:, None]) * det.GAIN)
    return np.median(frames, axis=0)


def row_sum(img, x, y, half=3):
    """Sum over rows y +- half (nearest rows) of column x."""
    y0 = int(np.rint(y))
    return img[y0 - half:y0 + half + 1, x].sum(axis=0)


@pytest.fixture(scope="module")
def sp(sedm_sim):
    return spaxels(sedm_sim)


def test_wavelength_solutions_cover_the_cube_range(sedm_sim, sp):
    p = np.broadcast_to(np.arange(sp.trace_len, dtype=float), (sp.n, sp.trace_len))
    assert np.all(opt.dispersion(sp.wave_coeffs, p) > 0)
    rows = sedm_sim.table("spaxels")
    assert max(r["lambda_min"] for r in rows) < 3700 and min(r["lambda_max"] for r in rows) > 9300


def test_arc_lines_land_where_the_truth_solution_says(sedm_sim, sp):
    img = debiased(sedm_sim, [r["filename"] for r in sedm_sim.ifu(lamp="Hg")])
    lam = spec.arc_lines()["Hg"][0]
    line = lam[np.argmin(np.abs(lam - 5462.2))]  # Hg 5460.7 air, isolated
    p_line = opt.pixel_of(sp.wave_coeffs, np.array([line]))[:, 0]
    errors = []
    for i in range(0, sp.n, 3):
        x_true = sp.x0[i] + p_line[i]
        xs = np.arange(int(np.rint(x_true)) - 4, int(np.rint(x_true)) + 5)
        profile = np.array([row_sum(img, x, sp.y0[i] + sp.tilt[i] * (x - sp.x0[i])) for x in xs])
        profile -= np.median(profile[[0, -1]])
        errors.append(np.sum(profile * xs) / np.sum(profile) - x_true)
    errors = np.abs(errors)
    assert np.median(errors) < 0.05 and errors.max() < 0.1, (np.median(errors), errors.max())


def test_dome_flat_carries_the_spaxel_throughput(sedm_sim, sp):
    img = debiased(sedm_sim, [r["filename"] for r in sedm_sim.ifu(imgtype="dome")])
    expected, cols = lamp_light(sp, "dome", 1.0, 30.0)
    measured = np.array([sum(row_sum(img, x, sp.y0[i] + sp.tilt[i] * p)
                             for x, p in zip(cols.x[i], cols.p[i])) for i in range(sp.n)])
    ratio = measured / expected.sum(axis=1)
    assert np.std(ratio) / np.mean(ratio) < 0.01
    shape = expected.sum(axis=1) / sp.throughput  # the lamp seen through each spaxel's wavelengths
    assert np.corrcoef(measured / shape, sp.throughput)[0, 1] > 0.95
    assert np.std(sp.throughput) > 0.03


def _longest_science(sedm_sim):
    return max(sedm_sim.ifu(imgtype="science", case=""), key=lambda r: r["exptime"])


def test_flexure_shifts_the_traces_across_by_the_truth(sedm_sim, sp):
    frame = _longest_science(sedm_sim)
    img = debiased(sedm_sim, [frame["filename"]])
    dx, dy = frame["flexure_along_px"], frame["flexure_across_px"]
    assert abs(dy) > 0.2
    cols = opt.columns(sp, dx)
    errors = []
    for i in range(0, sp.n, 2):
        y_true = sp.y0[i] + dy + sp.tilt[i] * cols.p[i]
        base = np.rint(y_true).astype(int)
        rows = base[None, :] + np.arange(-3, 4)[:, None]
        values = img[rows, cols.x[i][None, :]]
        errors.append(np.sum(values * (rows - y_true[None, :])) / values.sum())
    assert abs(np.median(errors)) < 0.05, np.median(errors)


def test_flexure_shifts_the_sky_line_along_by_the_truth(sedm_sim, sp):
    frame = _longest_science(sedm_sim)
    img = debiased(sedm_sim, [frame["filename"]])
    dx, dy = frame["flexure_along_px"], frame["flexure_across_px"]
    p_na = opt.pixel_of(sp.wave_coeffs, np.array([spec.NA_D_VAC]))[:, 0]
    errors = []
    for i in range(sp.n):
        x_true = sp.x0[i] + dx + p_na[i]
        xs = np.arange(int(np.rint(x_true)) - 4, int(np.rint(x_true)) + 5)
        profile = np.array([row_sum(img, x, sp.y0[i] + dy + sp.tilt[i] * (x - sp.x0[i] - dx)) for x in xs])
        profile -= np.interp(xs, xs[[0, -1]], profile[[0, -1]])
        errors.append(np.sum(profile * xs) / np.sum(profile) - x_true)
    assert abs(np.median(errors)) < 0.1, np.median(errors)
    assert abs(np.median(errors) + dx) > 0.3  # without the flexure the line would sit dx away


def _brightest_spaxel(sedm_sim, sp, frame):
    img = debiased(sedm_sim, [frame["filename"]])
    cols = opt.columns(sp, frame["flexure_along_px"])
    flux = [sum(row_sum(img, x, sp.y0[i] + frame["flexure_across_px"] + sp.tilt[i] * p)
                for x, p in zip(cols.x[i], cols.p[i])) for i in range(sp.n)]
    return int(np.argmax(flux))


def _near(sp, i, x, y) -> bool:
    """Spaxel ``i`` is one of those nearest to (x, y): within one lenslet pitch."""
    return bool(np.hypot(sp.sky_x[i] - x, sp.sky_y[i] - y) < opt.SPAXEL_ARCSEC)


def test_targets_where_the_truth_puts_them(sedm_sim, sp):
    radius = sedm_sim.table("night")[0]["ring"] * opt.SPAXEL_ARCSEC
    by_case = {r["case"]: r for r in sedm_sim.table("transients")}
    assert set(by_case) == {"", "outside", "faint", "guider_failed", "neighbour"}
    for t in sedm_sim.table("transients"):
        assert t["quality"] == (CASES[t["case"]][0] if t["case"] else 0)
        inside = np.hypot(t["target_x_arcsec"], t["target_y_arcsec"]) < radius
        assert inside == (t["case"] != "outside")
    for frame in sedm_sim.ifu(imgtype="standard") + [_longest_science(sedm_sim), sedm_sim.ifu(case="guider_failed")[0]]:
        assert _near(sp, _brightest_spaxel(sedm_sim, sp, frame), frame["target_x_arcsec"], frame["target_y_arcsec"])
    nb = by_case["neighbour"]
    assert nb["neighbour_mag"] < nb["mag"]
    frame = sedm_sim.ifu(case="neighbour")[0]
    brightest = _brightest_spaxel(sedm_sim, sp, frame)
    assert _near(sp, brightest, nb["neighbour_x_arcsec"], nb["neighbour_y_arcsec"])
    assert not _near(sp, brightest, nb["target_x_arcsec"], nb["target_y_arcsec"])


def test_guider_wcs_puts_the_target_on_a_star(sedm_sim):
    frames = sedm_sim.table("frames")
    for r in frames:
        if r["camera"] != "RC" or not r["guider_wcs"]:
            continue
        with fits.open(sedm_sim.night / r["filename"]) as hdul:
            h, data = hdul[0].header, hdul[0].data.astype(float)
        w = WCS(h)
        x, y = w.all_world2pix([[parse_sexagesimal(h["OBJRA"], True), parse_sexagesimal(h["OBJDEC"], False)]], 0)[0]
        cx, cy = (np.array(data.shape[::-1]) - 1) / 2.0
        scale = gdr.PIXEL_ARCSEC
        assert abs(-(x - cx) * scale - r["target_x_arcsec"]) < 0.01
        assert abs((y - cy) * scale - r["target_y_arcsec"]) < 0.01
        if r["case"]:
            continue
        stamp = data[round(y) - 3:round(y) + 4, round(x) - 3:round(x) + 4]
        assert stamp.max() > np.median(data) + 200


def test_truth_frames_match_the_headers(sedm_sim):
    for r in sedm_sim.table("frames"):
        h = fits.getheader(sedm_sim.night / r["filename"])
        assert (h["OBJECT"], h["EXPTIME"]) == (r["object"], r["exptime"])
        assert abs(h["MJD_OBS"] - r["mjd_obs"]) < 1e-6 and h["AIRMASS"] == r["airmass"]
        if r["camera"] == "IFU":
            assert h["IMGTYPE"] == r["imgtype"] and h["ADCSPEED"] == r["adcspeed"]
            if r["imgtype"] in ("bias", "dome", "lamp"):
                assert r["flexure_along_px"] == r["flexure_across_px"] == 0.0


def test_transient_truth_spectra_have_their_magnitude():
    from steps.sedm.simulate_spectra import ab_flux, transient_flux

    for kind in spec.SN_TYPES:
        assert transient_flux(kind, 0.05, 18.0, np.array([6200.0]))[0] == pytest.approx(ab_flux(18.0, 6200.0))


def test_few_arcs_night_keeps_two_of_each_five():
    import datetime as dt

    plan = plan_night(dt.date(2024, 6, 12), full=False, cases=("few_arcs",), ifu_radius_arcsec=5.25,
                      rng=np.random.default_rng(0))
    arcs = [e.object for e in plan if e.imgtype == "lamp"]
    assert arcs == [f"Calib: {lamp} {i} of 5" for lamp in ("Hg", "Cd", "Xe") for i in (1, 2)]
    assert sum(e.imgtype == "dome" for e in plan) == 5


GRID = np.linspace(3800.0, 9200.0, 220)


def sky_subtracted(sim, sp, frame, radius):
    """Electrons per A on GRID within ``radius`` arcsec of the target, the median of the spaxels
    beyond 3.5 arcsec subtracted as sky (a plain aperture on the truth geometry)."""
    img = debiased(sim, [frame["filename"]])
    cols = opt.columns(sp, frame["flexure_along_px"])
    per_a = np.empty((sp.n, GRID.size))
    for i in range(sp.n):
        trace = np.array([row_sum(img, x, sp.y0[i] + frame["flexure_across_px"] + sp.tilt[i] * p)
                          for x, p in zip(cols.x[i], cols.p[i])])
        per_a[i] = np.interp(GRID, cols.lam[i], trace / cols.dlam[i] / sp.throughput[i])
    d = np.hypot(sp.sky_x - frame["target_x_arcsec"], sp.sky_y - frame["target_y_arcsec"])
    return (per_a[d < radius] - np.median(per_a[d > 3.5], axis=0)).sum(axis=0)


def test_faint_case_is_mostly_negative_and_a_regular_one_not(sedm_sim, sp):
    faint = sedm_sim.ifu(case="faint")[0]
    assert np.mean(sky_subtracted(sedm_sim, sp, faint, 1.2) < 0) > 0.2
    regular = _longest_science(sedm_sim)
    assert np.mean(sky_subtracted(sedm_sim, sp, regular, 1.2) < 0) < 0.02


def test_transient_flux_scale_matches_its_truth_spectrum(sedm_sim, sp):
    frame = min(sedm_sim.ifu(imgtype="science", case=""), key=lambda r: np.hypot(r["target_x_arcsec"],
                                                                                  r["target_y_arcsec"]))
    truth = next(t for t in sedm_sim.table("transients") if t["filename"] == frame["filename"])
    flux = np.interp(GRID, truth["wavelength"], truth["flux"])
    expected = (spec.photons(flux, GRID) * spec.atmosphere(GRID, frame["airmass"]) * spec.efficiency(GRID)
                * spec.AREA_CM2 * frame["exptime"])
    measured = sky_subtracted(sedm_sim, sp, frame, 3.0)
    band = (GRID > 4500) & (GRID < 8500)
    assert np.median(measured[band] / expected[band]) == pytest.approx(1.0, abs=0.08)
