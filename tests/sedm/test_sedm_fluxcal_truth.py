"""Flux calibration against the simulator's truth (steps/sedm/science/fluxcal.py, telluric.py).

Until the pipeline's extraction exists the spectra are built here the way the simulator makes
its frames' light (``simulate_spectra``: the source above the atmosphere, the simulator's own
extinction and telluric bands at the airmass, the instrument's efficiency and collecting area),
blurred by the prism's line spread (sigma ~0.9 % of the wavelength, what ``simulate_optics``
draws), sampled on the cube's 220 bins, extinction-corrected with the pipeline's Palomar curve
(as the cube is), with Poisson-like noise at a chosen S/N.  The calibration never sees the
simulator's atmosphere: it is measured on the standard.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from steps.sedm import simulate_spectra as spec
from steps.sedm.science import extinction, fluxcal, telluric

from conftest import sedm_settings

GRID = np.linspace(3700.0, 9300.0, 220)
FINE = np.arange(3300.0, 9800.0, 2.0)
LSF_LN = 0.009  # line spread sigma in ln(lambda)
BAND = (GRID >= 4500) & (GRID <= 8500)


def observe(f_lambda, airmass: float, snr: float, rng, exptime: float = 300.0):
    """(counts e-/s/A, variance) on GRID of a source F_lambda(FINE), extinction-corrected."""
    per_a = spec.photons(f_lambda, FINE) * spec.atmosphere(FINE, airmass) * spec.AREA_CM2 * spec.efficiency(FINE)
    counts = np.interp(np.log(GRID), np.log(FINE), _blur(per_a)) * extinction.correction(GRID, airmass)
    sigma = np.median(counts[BAND]) / snr * np.sqrt(np.clip(counts / np.median(counts[BAND]), 0.05, None))
    return counts + rng.normal(0.0, sigma), sigma ** 2


@pytest.fixture(scope="module")
def standard():
    rng = np.random.default_rng(11)
    wave, flux = spec.standard_reference()
    airmass = 1.12
    counts, var = observe(spec.standard_flux(FINE), airmass, 300.0, rng, exptime=120.0)
    return fluxcal.derive(GRID, counts, var, wave, flux, airmass), (counts, var, airmass)


def test_the_inverse_sensitivity_is_the_instruments(standard):
    """The fitted inverse sensitivity over 4500-9000 A equals the truth (efficiency x area x
    photon energy; the simulator's extinction differs from the Palomar curve the cube corrects,
    so the truth here includes that difference at the standard's airmass) to < 1 %, over
    4000-4500 A (the blue Balmer lines' wings, spread by the line spread beyond pysedm's masks)
    to < 3 %."""
    cal, (_, _, airmass) = standard
    truth = 1.0 / (spec.photons(1.0, GRID) * spec.AREA_CM2 * spec.efficiency(GRID)
                   * 10 ** (-0.4 * spec.extinction_mag(GRID) * airmass) * extinction.correction(GRID, airmass))
    ratio = cal.sensitivity_at(GRID) / truth
    red, blue = (GRID > 4500) & (GRID < 9000), (GRID > 4000) & (GRID <= 4500)
    print(f"inverse sensitivity / truth: median {np.median(ratio[red]):.4f}, max |dev| 4500-9000 "
          f"{np.abs(ratio[red] - 1).max():.4f}, 4000-4500 {np.abs(ratio[blue] - 1).max():.4f}; "
          f"bins used {cal.n_used}, rms {cal.residual_rms:.4f}")
    assert np.abs(np.median(ratio[red]) - 1) < 0.005 and np.abs(ratio[red] - 1).max() < 0.01
    assert np.abs(ratio[blue] - 1).max() < 0.03


def test_the_standards_telluric_bands_are_measured(standard):
    """The O2 A and B bands' depths at the standard's airmass are the simulator's (at the
    instrument's resolution) and the H2O amplitude is small; outside pysedm's regions nothing."""
    cal, (_, _, airmass) = standard
    t = telluric.transmission(cal.tau1, airmass)
    true_t = np.exp(np.interp(np.log(GRID), np.log(FINE), _blur(np.log(spec.telluric(FINE, airmass)))))
    a_band = (GRID > 7550) & (GRID < 7720)
    b_band = (GRID > 6840) & (GRID < 6930)
    print(f"A band min T {t[a_band].min():.3f} (truth {true_t[a_band].min():.3f}), B band {t[b_band].min():.3f} "
          f"(truth {true_t[b_band].min():.3f}); EW O2 {cal.equivalent_width['O2']:.1f} A, "
          f"H2O {cal.equivalent_width['H2O']:.1f} A")
    assert abs(t[a_band].min() - true_t[a_band].min()) < 0.03
    assert abs(t[b_band].min() - true_t[b_band].min()) < 0.03
    assert t[a_band].min() < 0.9  # ~15 % deep at the prism's resolution
    outside = ~(telluric.species_masks(GRID)["O2"] | telluric.species_masks(GRID)["H2O"])
    assert np.all(t[outside] == 1.0)


def _blur(values):
    """Values on FINE seen through the line spread (a Gaussian of LSF_LN in ln lambda), on FINE."""
    ln = np.log(FINE)
    step = np.median(np.diff(ln))
    uniform = np.arange(ln[0], ln[-1], step)
    on_ln = np.interp(uniform, ln, values)
    k = np.arange(-int(5 * LSF_LN / step), int(5 * LSF_LN / step) + 1) * step
    kernel = np.exp(-0.5 * (k / LSF_LN) ** 2)
    return np.interp(ln, uniform, np.convolve(on_ln, kernel / kernel.sum(), mode="same"))


@pytest.mark.parametrize("kind,z,mag,airmass,snr", [
    ("Ia", 0.05, 17.5, 1.45, 40.0), ("II", 0.02, 18.0, 1.9, 25.0), ("Ia", 0.08, 18.5, 1.05, 20.0),
    ("II", 0.04, 18.2, 1.25, 60.0),
])
def test_calibrated_transients_are_within_2_percent_of_the_truth(standard, kind, z, mag, airmass, snr):
    """A transient at another airmass than the standard's, flux-calibrated and telluric-corrected
    at its own AIRMASS: the median ratio to the truth over 4500-8500 A within 2 %, and the
    telluric A band corrected (its bins within 5 % of the truth's continuum level)."""
    cal, _ = standard
    rng = np.random.default_rng(int(z * 1000) + int(snr))
    counts, var = observe(spec.transient_flux(kind, z, mag, FINE), airmass, snr, rng)
    flux, fvar, transmission = fluxcal.calibrate(GRID, counts, var, cal, airmass)
    truth = np.interp(np.log(GRID), np.log(FINE), _blur(spec.transient_flux(kind, z, mag, FINE)))
    ratio = flux / truth
    median = float(np.median(ratio[BAND]))
    a_band = (GRID > 7580) & (GRID < 7700)
    smooth = np.median(ratio[a_band])
    snr_measured = float(np.median((flux / np.sqrt(fvar))[BAND]))
    print(f"{kind} z={z} X={airmass} S/N {snr_measured:.0f}: median calibrated/truth {median:.4f}, "
          f"A band {smooth:.4f} (T min {transmission[a_band].min():.3f})")
    assert abs(median - 1) < 0.02
    assert abs(smooth - 1) < 0.05 + 3 / snr
    assert snr_measured == pytest.approx(snr, rel=0.3)


def test_without_telluric_correction_the_a_band_stays():
    """The test can fail: calibrating at airmass 0 (no telluric correction) leaves the A band
    ~15 % deep (at the prism's resolution) in a calibrated spectrum."""
    rng = np.random.default_rng(3)
    wave, flux = spec.standard_reference()
    counts, var = observe(spec.standard_flux(FINE), 1.3, 300.0, rng)
    cal = fluxcal.derive(GRID, counts, var, wave, flux, 1.3)
    out, _, t = fluxcal.calibrate(GRID, counts, var, cal, 1e-9)
    ref = fluxcal.reference_on_bins(GRID, wave, flux)
    a_band = (GRID > 7600) & (GRID < 7660)
    assert np.min(out[a_band] / ref[a_band]) < 0.9
    assert np.all(t > 0.999)


def test_too_few_bins_is_an_error():
    wave, flux = spec.standard_reference()
    with pytest.raises(ValueError, match="bins"):
        fluxcal.derive(GRID[:10], np.ones(10), np.ones(10), wave, flux, 1.0)


# --- the pipeline on the simulated night ------------------------------------------------------

def _truth_on(lam, row):
    return np.interp(lam, row["wavelength"], row["flux"])


def test_the_standard_makes_a_registered_fluxcal(sedm_run):
    """The night's standard: ``fluxcal_{date}_{HH_MM_SS}_{OBJECT}.fits`` in the night directory,
    registered as FLUXCAL at its MJD_OBS, read back as the fit the row describes."""
    from astroflow.calib import Library
    from steps.sedm.fluxcal import read_fluxcal

    rows = sedm_run.rows("fluxcal")
    std = sedm_run.sim.ifu(imgtype="standard")
    assert [r["filename"] for r in rows] == [s["filename"] for s in std]
    row = rows[0]
    stamp = row["filename"][3:-5]
    assert row["status"] == "made" and row["star"] == "BD+33d2642"
    assert row["path"] == f"redux/{sedm_run.sim.settings['date']}/fluxcal_{stamp}_STD-BD+33d2642.fits"
    cal = read_fluxcal(sedm_run.out / row["path"])
    assert cal.n_used == row["n_used"] and cal.airmass == pytest.approx(row["airmass"])
    assert row["residual_rms"] < 0.02 and row["ew_o2"] > 5
    registered = Library.for_run(sedm_run.out).list("FLUXCAL")
    assert [Path(c.path).name for c in registered] == [Path(row["path"]).name]


def test_calibrated_transients_are_within_2_percent_in_the_pipeline(sedm_run):
    """Every transient with S/N >= 20 whose extraction is of the target (the neighbour case is the
    brighter star's, by design): median calibrated / truth over 4500-8500 A within 2 %, with
    tonight's fluxcal, nearest in MJD_OBS, recorded."""
    from steps.sedm.extract import read_spectrum

    truth = {r["filename"]: r for r in sedm_run.sim.table("transients")}
    rows = {r["filename"]: r for r in sedm_run.rows("calibrate") if r["kind"] == "science"}
    assert set(rows) == set(truth)
    fluxcal_file = Path(sedm_run.rows("fluxcal")[0]["path"]).name
    scored = 0
    for name, r in sorted(rows.items()):
        assert r["status"] == "calibrated" and r["calibrated"] and r["fluxcal_file"] == fluxcal_file
        assert not r["earlier_night"] and not r["fallback"] and r["reason"].startswith("nearest in time")
        t = truth[name]
        if r["snr"] < 20 or t["case"] == "neighbour":
            continue
        sp = read_spectrum(sedm_run.out / r["calibrated_path"])
        lam = sp["wavelength"]
        band = (lam >= 4500) & (lam <= 8500)
        median = float(np.median(sp["flux"][band] / _truth_on(lam, t)[band]))
        print(f"{t['object']} {t['type']} {t['case'] or 'regular'} S/N {r['snr']:.0f} X={r['airmass']}: "
              f"calibrated / truth {median:.4f}")
        assert abs(median - 1) < 0.02
        assert sp["header"]["FLUXCAL"] == fluxcal_file and sp["header"]["BUNIT"].startswith("erg")
        scored += 1
    assert scored >= 4


def test_the_standard_calibrated_by_its_own_fluxcal_is_its_reference(sedm_run):
    """The check of the calibration: the standard's spectrum through its fluxcal equals its
    reference (averaged over the bins) to 1 % (median over 4500-8500 A outside the masks), and
    the file carries the telluric transmission divided out and the extraction's PSF."""
    from steps.sedm.extract import read_spectrum

    (row,) = [r for r in sedm_run.rows("calibrate") if r["kind"] == "standard"]
    sp = read_spectrum(sedm_run.out / row["calibrated_path"])
    wave, flux = spec.standard_reference()
    ref = fluxcal.reference_on_bins(sp["wavelength"], wave, flux)
    band = (sp["wavelength"] >= 4500) & (sp["wavelength"] <= 8500) & fluxcal.mask(sp["wavelength"])
    ratio = float(np.median(sp["flux"][band] / ref[band]))
    print(f"standard / reference: {ratio:.4f}")
    assert abs(ratio - 1) < 0.01
    assert sp["telluric"].size == sp["flux"].size and np.all(sp["telluric"] <= 1.0)
    assert len(sp["psf"]) > 0


def test_without_a_fluxcal_the_spectra_are_flagged_uncalibrated(sedm_run, tmp_path):
    """The night's only fluxcal marked bad (and no earlier one): the same command recomputes
    calibrate, whose spectra say uncalibrated, in e-/s/A, FLUXCAL 'none'."""
    import shutil

    from astroflow import config, runner
    from astroflow.calib import Library
    from steps.sedm.extract import read_spectrum
    from steps.sedm.pipeline import SEDM

    out = tmp_path / "run"
    shutil.copytree(sedm_run.out, out, symlinks=True)
    lib = Library.for_run(out)
    (cal,) = lib.list("FLUXCAL")
    lib.mark_bad(cal.path, "test: the standard was clipped")
    cfg = config.resolve(SEDM, settings=sedm_settings(sedm_run.sim.settings), runner={"workers": 1})
    result = runner.run(SEDM, cfg, out, only="calibrate", progress=False)
    assert result.steps["calibrate"].state == "done"
    from astroflow.rundir import read_dataset

    rows = read_dataset(out / "calibrate").to_pylist()
    assert rows and all(r["status"] == "uncalibrated" and not r["calibrated"] and r["fluxcal_file"] == "none"
                        for r in rows)
    assert all("no fluxcal" in r["reason"] for r in rows)
    sp = read_spectrum(out / rows[0]["calibrated_path"])
    assert sp["header"]["FLUXCAL"] == "none" and sp["header"]["BUNIT"].startswith("electron")


def test_the_nearest_fluxcal_policy(tmp_path):
    """FLUXCAL_NEAREST: tonight's later standard beats last night's; with only an older one it is
    a recorded fallback; fluxcal_link's FLUXCAL policy still takes only earlier ones."""
    from datetime import datetime, timezone

    from astroflow.calib import Library
    from steps.sedm.calibrations import CALIBRATIONS, FLUXCAL, FLUXCAL_NEAREST

    lib = Library(f"sqlite:///{tmp_path / 'lib.db'}")
    made = {}
    for name, when in (("last", datetime(2024, 6, 11, 4, 0, tzinfo=timezone.utc)),
                       ("tonight", datetime(2024, 6, 12, 6, 0, tzinfo=timezone.utc))):
        made[name] = tmp_path / f"fluxcal_{name}.fits"
        made[name].write_bytes(b"x")
        lib.register(FLUXCAL, made[name], when, {})
    at = datetime(2024, 6, 12, 4, 30, tzinfo=timezone.utc)
    near = lib.select(CALIBRATIONS[FLUXCAL_NEAREST], at, {})
    assert Path(near.record.path).name == "fluxcal_tonight.fits" and not near.fallback
    before = lib.select(CALIBRATIONS[FLUXCAL], at, {})
    assert Path(before.record.path).name == "fluxcal_last.fits"
    lib.mark_bad(made["tonight"], "test")
    fallback = lib.select(CALIBRATIONS[FLUXCAL_NEAREST], datetime(2024, 6, 12, 8, 0, tzinfo=timezone.utc), {})
    assert Path(fallback.record.path).name == "fluxcal_last.fits" and fallback.fallback


def test_names_of_the_standard_and_its_fluxcal(tmp_path):
    """The star is the OBJECT without ``STD-``; its reference is ``{standards}/{star}.csv``; a
    missing or unreadable reference is a named error naming the file."""
    from types import SimpleNamespace

    from astroflow.errors import ItemError
    from steps.sedm.fluxcal import fluxcal_name, read_reference, reference_path, star_name

    assert star_name("STD-BD+33d2642") == "BD+33d2642" and star_name("STD-Feige34") == "Feige34"
    assert fluxcal_name("ifu20240612_04_00_00.fits", "STD-BD+33d2642") == \
        "fluxcal_20240612_04_00_00_STD-BD+33d2642.fits"
    assert reference_path(SimpleNamespace(standards=tmp_path), "HZ44") == tmp_path / "HZ44.csv"
    assert reference_path(SimpleNamespace(standards=None), "BD+33d2642").is_file()  # shipped
    bad = tmp_path / "HZ44.csv"
    bad.write_text("wavelength,flux\n4000,oops\n")
    with pytest.raises(ItemError, match="HZ44.csv"):
        read_reference(bad)
