"""The HETDEX pipeline scored against the simulator's truth (the issue's acceptance figures)."""

from __future__ import annotations

from astropy.io import fits

from astroflow.rundir import read_dataset
from steps.hetdex import scoring


def test_master_bias_level_read_noise_and_traps(demo):
    s = scoring.master_bias(demo["data"], demo["run"])
    assert s["amps"] == s["amps_truth"]
    assert s["level_err_max"] < 0.02 and s["read_noise_err_max"] < 0.02, s
    assert set(s["rejected_frames"]) == {1}  # the simulated bad zero frame
    assert s["traps_injected"] >= 1 and s["traps_found"] == s["traps_injected"] and s["traps_false"] == 0, s
    row = read_dataset(demo["run"] / "master_bias").to_pylist()[0]
    assert fits.getheader(demo["run"] / row["path"])["NFRAMES"] == row["n_frames"]


def test_bad_pixel_table_covers_injected_boxes(demo):
    truth = scoring.truth_amps(demo["data"])
    boxes = read_dataset(demo["run"] / "bad_pixels").to_pylist()
    table = (demo["run"] / "lib_calib/lib_pflat/pix_mask.tab").read_text().splitlines()
    assert table[0] == "amp x1 x2 y1 y2" and len(table) == len(boxes) + 1
    for (slot, amp), t in truth.items():
        for x1, x2, y1, y2 in t["bad_boxes"]:
            hits = [b for b in boxes if b["amp"] == f"{t['specid']}{amp}" and b["x1"] <= x2 and b["x2"] >= x1
                    and b["y1"] <= y2 and b["y2"] >= y1]
            assert hits, (slot, amp, (x1, x2, y1, y2), boxes)


def test_wavelength_solution_residuals(demo):
    s = scoring.wavelength(demo["data"], demo["run"])
    assert s["rms_max"] < 0.1 and s["flagged"] == 0, s


def test_astrometry_and_throughput(demo):
    for s in scoring.shots(demo["data"], demo["run"]):
        assert abs(s["dx_err"]) < 0.2 and abs(s["dy_err"]) < 0.2, s
        assert abs(s["throughput_ratio"] - 1) < 0.05, s
        assert abs(s["fwhm_err"]) < 0.15, s


def test_detection_completeness_purity_and_wavelengths(demo):
    s = scoring.detections(demo["data"], demo["run"])
    assert s["injected_strong"] >= 15
    assert s["completeness"] >= 0.90 and s["purity"] >= 0.95, s
    # within 0.5 A typically, and for the bright lines; otherwise within their quoted errors
    assert s["dwave_abs_median"] < 0.5 and s["dwave_within_0p5_sn15"] >= 0.9 and s["dwave_within_3err"] >= 0.9, s
    assert 0.85 < s["flux_ratio_median"] < 1.15, s


def test_continuum_sources_found_once_each(demo):
    """Every star and continuum galaxy found (within 0.5"), each once; every source a real object."""
    s = scoring.continuum(demo["data"], demo["run"])
    assert s["injected"] >= 4 and s["found_once"] == s["injected"], s
    assert s["fragments"] == 0 and s["spurious"] == 0, s


def test_pixel_residual_and_chi2_maps(demo):
    """Runbook 14_b-d: with the simulator's read noise and gain, the extraction chi^2 is ~1 and the
    sky-subtracted residuals over the exposures are unbiased in units of their errors."""
    rows = scoring.residual_maps(demo["run"])
    assert len(rows) == len(scoring.truth_amps(demo["data"]))
    for r in rows:
        assert r["n_exposures"] == 3
        assert 0.8 < r["chi2_median"] < 1.25, r
        assert abs(r["residual_loc"]) < 0.15, r
        # biweight of three unit normals per pixel: scale ~0.6 (1 would mean no combination)
        assert 0.45 < r["residual_scale"] < 0.8, r
        assert r["flat_scale"] < 0.03, r
        with fits.open(demo["run"] / r["path"]) as h:
            assert h["FLAT"].shape == h["RESIDUAL"].shape == (112, 1036) and h["CHI2"].shape == (112, 1032)
            assert h[0].header["NEXP"] == 3


def test_cosmic_rays_masked(demo):
    """Every injected cosmic-ray event is masked in the extraction, and little else is."""
    s = scoring.cosmics(demo["data"], demo["run"])
    assert s["events"] >= 100 and s["found"] == s["events"], s
    assert s["stray_pixels"] <= 0.05 * s["masked_pixels"], s
    row = read_dataset(demo["run"] / "sci_reduce").to_pylist()[0]
    assert fits.getheader(demo["run"] / row["path"])["NCOSMIC"] == row["n_cosmics"]
