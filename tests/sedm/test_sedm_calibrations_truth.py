"""The afternoon calibrations against the simulator's truth: the master bias of each ADC speed
(its level, its pattern, the read noise) and the cosmic rays LA-Cosmic masks."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from scipy.ndimage import binary_dilation


@pytest.fixture(scope="module")
def detector(sedm_run):
    return {r["adcspeed"]: r for r in sedm_run.sim.table("detector")}


def test_every_step_done(sedm_run):
    assert sedm_run.result.ok, {n: (s.state, s.message) for n, s in sedm_run.result.steps.items()}


@pytest.mark.parametrize("speed", [2.0, 0.1])
def test_master_bias_level_and_read_noise_within_2_percent(sedm_run, detector, speed):
    (row,) = [r for r in sedm_run.rows("master_bias") if r["adcspeed"] == speed]
    truth = detector[speed]
    assert row["status"] == "complete" and row["n_frames"] == 10 and row["combine"] == "minmax mean"
    assert abs(row["level_adu"] / truth["bias_level_adu"] - 1) < 0.02
    assert abs(row["read_noise_e"] / truth["read_noise_e"] - 1) < 0.02
    # the header carries what the row says
    head = fits.getheader(sedm_run.out / row["path"])
    assert head["NCOMBINE"] == 10 and head["RDNOISE"] == pytest.approx(row["read_noise_e"])


@pytest.mark.parametrize("speed", [2.0, 0.1])
def test_master_bias_recovers_the_fixed_pattern(sedm_run, detector, speed):
    """Pixel by pixel, the master (e- above the overscan) is the truth's pattern times the gain,
    to the noise of the stack: rms about read noise / sqrt(frames), no offset beyond what the
    4-column overscan allows."""
    (row,) = [r for r in sedm_run.rows("master_bias") if r["adcspeed"] == speed]
    master = fits.getdata(sedm_run.out / row["path"])
    structure = fits.getdata(sedm_run.sim.truth / "bias_structure.fits", f"ADC{speed:.1f}")
    gain, rn = detector[speed]["gain"], detector[speed]["read_noise_e"]
    resid = master[:, :structure.shape[1]] - structure * gain
    expected = rn / np.sqrt(10)
    assert resid.std() < 1.15 * expected  # a min/max-rejected mean of 10 is nearly as good as the mean
    # the overscan of 4 columns, smoothed over 50 rows, sets each frame's zero to ~0.1 e-
    assert abs(resid.mean()) < 0.1 * rn
    assert abs(master[:, :structure.shape[1]].mean() / (structure.mean() * gain) - 1) < 0.15


def _cr_scores(sedm_run, kinds):
    cosmics = sedm_run.sim.table("cosmics")
    by_frame: dict[str, list] = {}
    for c in cosmics:
        by_frame.setdefault(c["filename"], []).append((c["row"], c["column"]))
    hit = injected = false = pixels = 0
    for r in sedm_run.rows("debias_crr"):
        if r["kind"] not in kinds:
            continue
        with fits.open(sedm_run.out / r["crr_path"]) as h:
            mask = h["MASK"].data.astype(bool)
        truth = np.zeros(mask.shape, bool)
        if by_frame.get(r["filename"]):
            rows, cols = np.array(by_frame[r["filename"]]).T
            truth[rows, cols] = True
        near = binary_dilation(truth)  # LA-Cosmic grows each detection into its neighbours
        hit += int((mask & truth).sum())
        injected += int(truth.sum())
        false += int((mask & ~near).sum())
        pixels += int(mask[:, :-4].size)
    return hit / injected, false / pixels, injected


def test_cosmic_rays_masked_on_the_sky_frames(sedm_run):
    completeness, false_rate, injected = _cr_scores(sedm_run, ("science", "standard"))
    print(f"sky frames: {injected} cosmic-ray pixels, {completeness:.3f} flagged, false rate {false_rate:.2e}")
    assert injected > 200
    assert completeness > 0.9
    assert false_rate < 1e-3


def test_cosmic_rays_masked_on_the_arc_frames(sedm_run):
    """The arcs (fast readout, sharp lines): fewer rays, more structure that looks like one to
    LA-Cosmic, still a small fraction of the pixels."""
    completeness, false_rate, injected = _cr_scores(sedm_run, ("Hg", "Cd", "Xe"))
    print(f"lamp frames: {injected} cosmic-ray pixels, {completeness:.3f} flagged, false rate {false_rate:.2e}")
    assert injected > 50
    assert completeness > 0.8
    assert false_rate < 1e-2


def test_short_frames_are_not_searched(sedm_run):
    """CosmicX's 60 s minimum: the 30 s dome flats keep every pixel, their mask is empty."""
    domes = [r for r in sedm_run.rows("debias_crr") if r["kind"] == "dome"]
    assert len(domes) == 5 and all(r["n_cosmic_pixels"] == 0 for r in domes)
    with fits.open(sedm_run.out / domes[0]["crr_path"]) as crr, fits.open(sedm_run.out / domes[0]["b_path"]) as b:
        assert (crr[0].data == b[0].data).all() and not crr["MASK"].data.any()
        assert crr[0].header["CRRSUB"] == "skipped"


def test_the_debiased_frames_are_electrons_above_the_master(sedm_run):
    """An arc frame's dark pixels (between the traces) sit at zero once debiased: the master
    removed the pattern and the overscan the level."""
    rows = [r for r in sedm_run.rows("debias_crr") if r["kind"] == "Hg"]
    assert rows and all(r["bias"] == "bias2.0.fits" and not r["bias_fallback"] for r in rows)
    data = fits.getdata(sedm_run.out / rows[0]["b_path"])
    assert fits.getheader(sedm_run.out / rows[0]["b_path"])["BUNIT"] == "electron"
    assert abs(np.median(data[:, :-4])) < 3.0


def test_the_products_name_their_code_run_and_master_bias(sedm_run):
    """Issue 15: every FITS the night writes says what made it (DATE the creation time, PIPEVER,
    RUNNAME, CONFHASH), and a debiased frame names its master bias (CALBIAS); the raw frames the
    night links in stay links."""
    import re

    from astroflow import config

    want = config.load(sedm_run.out).config_hash()
    products = [p for p in sedm_run.out.rglob("*.fits") if "input" not in p.parts and not p.is_symlink()]
    assert products
    for path in products:
        head = fits.getheader(path)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", head["DATE"]), path
        assert head["PIPELINE"] == "sedm" and head["PIPEVER"] and head["CONFHASH"] == want, path
    row = next(r for r in sedm_run.rows("debias_crr") if r["kind"] == "Hg")
    assert fits.getheader(sedm_run.out / row["b_path"])["CALBIAS"] == row["bias"]
