"""The HETDEX pipeline scored against the simulator's truth (the issue's acceptance figures)."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
from astropy.io import fits

from astroflow.rundir import read_dataset


def truth_amps(demo):
    return {(r["ifuslot"], r["amp"]): r for r in pq.read_table(demo["data"] / "truth/amps.parquet").to_pylist()}


def test_master_bias_level_read_noise_and_traps(demo):
    truth = truth_amps(demo)
    rows = read_dataset(demo["run"] / "master_bias").to_pylist()
    assert len(rows) == len(truth)
    injected = found = 0
    for r in rows:
        t = truth[(r["ifuslot"], r["amp"])]
        assert abs(r["level"] / t["bias_level"] - 1) < 0.02, (r["amp"], r["level"], t["bias_level"])
        assert abs(r["read_noise"] / t["read_noise"] - 1) < 0.02, (r["amp"], r["read_noise"], t["read_noise"])
        assert r["n_rejected"] == 1  # the simulated bad zero frame
        want = {(tr["column"], tr["first_row"]) for tr in t["traps"]}
        got = {(tr["column"], tr["first_row"]) for tr in r["traps"]}
        assert len(got) == len(want), (r["amp"], got, want)  # every trap found, no false ones
        for c, y in want:
            assert any(gc == c and abs(gy - y) <= 3 for gc, gy in got), (c, y, got)
        injected += len(want)
        found += len(got)
    assert injected >= 1 and found == injected
    path = demo["run"] / rows[0]["path"]
    assert fits.getheader(path)["NFRAMES"] == rows[0]["n_frames"]


def test_bad_pixel_table_covers_injected_boxes(demo):
    truth = truth_amps(demo)
    boxes = read_dataset(demo["run"] / "bad_pixels").to_pylist()
    table = (demo["run"] / "lib_calib/lib_pflat/pix_mask.tab").read_text().splitlines()
    assert table[0] == "amp x1 x2 y1 y2" and len(table) == len(boxes) + 1
    for (slot, amp), t in truth.items():
        for x1, x2, y1, y2 in t["bad_boxes"]:
            hits = [b for b in boxes if b["amp"] == f"{t['specid']}{amp}" and b["x1"] <= x2 and b["x2"] >= x1
                    and b["y1"] <= y2 and b["y2"] >= y1]
            assert hits, (slot, amp, (x1, x2, y1, y2), boxes)


def test_wavelength_solution_residuals(demo):
    truth = truth_amps(demo)
    x = np.arange(1032) / 1032
    for r in read_dataset(demo["run"] / "twilight_cal").to_pylist():
        t = truth[(r["ifuslot"], r["amp"])]
        c = t["wave_c"]
        true = np.asarray(t["wave_c0"])[:, None] + c[0] * x + c[1] * x**2 + c[2] * x**3
        got = fits.getdata(demo["run"] / r["path"], "WAVELENGTH")
        rms = np.sqrt(np.mean((got - true) ** 2))
        assert rms < 0.1, (r["amp"], rms)
        assert not r["flagged"]


def test_astrometry_and_throughput(demo):
    shot = json.loads((demo["data"] / "truth/shots.json").read_text())[0]
    ast = read_dataset(demo["run"] / "astrometry").to_pylist()[0]
    assert abs(ast["dx"] - shot["dra"]) < 0.2 and abs(ast["dy"] - shot["ddec"]) < 0.2
    tp = read_dataset(demo["run"] / "throughput").to_pylist()[0]
    # the pipeline normalises the exposures to their mean transparency
    true_resp = shot["response_4540"] * np.mean(shot["transparency"])
    assert abs(tp["response_4540"] / true_resp - 1) < 0.05, (tp["response_4540"], true_resp)
    assert abs(tp["fwhm"] - shot["fwhm"]) < 0.15


def match(dets, lines, max_sep=2.5, max_dw=5.0):
    pairs = []
    for d in dets:
        best = None
        for k, t in enumerate(lines):
            sep = 3600 * np.hypot((d["ra"] - t["ra"]) * np.cos(np.radians(t["dec"])), d["dec"] - t["dec"])
            if sep < max_sep and abs(d["wave"] - t["wave"]) < max_dw and (best is None or sep < best[1]):
                best = (k, sep)
        pairs.append(best)
    return pairs


def test_detection_completeness_purity_and_wavelengths(demo):
    dets = read_dataset(demo["run"] / "detections").to_pylist()
    lines = pq.read_table(demo["data"] / "truth/lines.parquet").to_pylist()
    pairs = match(dets, lines)
    matched = {p[0] for p in pairs if p}
    purity = sum(p is not None for p in pairs) / len(dets)
    strong = [k for k, t in enumerate(lines) if t["sn_true"] >= 6]
    completeness = sum(k in matched for k in strong) / len(strong)
    assert len(strong) >= 15
    assert completeness >= 0.90, completeness
    assert purity >= 0.95, purity
    dw = np.array([d["wave"] - lines[p[0]]["wave"] for d, p in zip(dets, pairs) if p])
    assert np.median(np.abs(dw)) < 0.5
    # within 0.5 A for the well-measured lines
    good = [abs(d["wave"] - lines[p[0]]["wave"]) for d, p in zip(dets, pairs) if p and d["sn"] >= 10]
    assert np.mean(np.array(good) < 0.5) >= 0.9
    flux = np.array([d["flux"] * 1e-17 / lines[p[0]]["flux"] for d, p in zip(dets, pairs) if p])
    assert 0.85 < np.median(flux) < 1.15


def sep_arcsec(a, b):
    return 3600 * np.hypot((a["ra"] - b["ra"]) * np.cos(np.radians(b["dec"])), a["dec"] - b["dec"])


def test_continuum_sources_found_once_each(demo):
    """Every star and continuum galaxy found (within 0.5"), each once; every source is a real object."""
    found = read_dataset(demo["run"] / "continuum").to_pylist()
    bright = pq.read_table(demo["data"] / "truth/sources.parquet").to_pylist()
    # line emitters have host continuum too: F_lambda = line flux / observed EW
    hosts = [t for t in pq.read_table(demo["data"] / "truth/lines.parquet").to_pylist()
             if t["flux"] / (t["ew_rest"] * (1 + t["z"])) > 2e-18]
    assert len(bright) >= 4
    for s in bright:
        near = [f for f in found if sep_arcsec(f, s) < 0.5]
        assert len(near) == 1, (s["kind"], s["gmag"], len(near))
        assert sum(sep_arcsec(f, s) < 3.0 for f in found) == 1  # no split-off fragments in the wings
    for f in found:
        assert min(sep_arcsec(f, s) for s in bright + hosts) < 1.0, f["detectid"]


def test_pixel_residual_and_chi2_maps(demo):
    """Runbook 14_b-d: with the simulator's read noise and gain, the extraction chi^2 is ~1 and the
    sky-subtracted residuals over the exposures are unbiased in units of their errors."""
    rows = read_dataset(demo["run"] / "pixel_residuals").to_pylist()
    assert len(rows) == len(truth_amps(demo))
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
    hits = pq.read_table(demo["data"] / "truth/cosmics.parquet").to_pylist()
    rows = read_dataset(demo["run"] / "sci_reduce").to_pylist()
    n_events = n_found = n_masked = n_near = 0
    for r in rows:
        with fits.open(demo["run"] / r["path"]) as h:
            mask = h["COSMICS"].data.astype(bool)
            assert h[0].header["NCOSMIC"] == r["n_cosmics"]
        mine = [x for x in hits if (x["datevobs"], x["expnum"], x["ifuslot"], x["amp"])
                == (r["datevobs"], r["expnum"], r["ifuslot"], r["amp"])]
        truth = np.zeros_like(mask)
        events: dict[int, list] = {}
        for x in mine:
            truth[x["y"], x["x"]] = True
            events.setdefault(x["event"], []).append(x)
        n_events += len(events)
        n_found += sum(any(mask[p["y"], p["x"]] for p in px) for px in events.values())
        near = truth | np.roll(truth, 1, 0) | np.roll(truth, -1, 0) | np.roll(truth, 1, 1) | np.roll(truth, -1, 1)
        n_masked += mask.sum()
        n_near += (mask & (near | np.roll(near, 1, 0) | np.roll(near, -1, 0))).sum()
    assert n_events >= 100
    assert n_found == n_events
    assert n_near / n_masked >= 0.95  # masked pixels are hits or their neighbours
