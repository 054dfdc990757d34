"""Runbook "reduce all of the science frames": extracted, wavelength-calibrated 1-D spectra.

Per TARGET frame (reduced by ``reduce_target``): optimal extraction (Horne 1986) of every order
of the lit fibers along the night's traces, with the profile and blaze of the flat of the same
fiber state; wavelengths from the night's solution, corrected by the drift of the simultaneous
ThAr fiber measured against the TRIPLE; blaze division and the 201-pixel running-median
continuum after masking lines.  Writes ``spec/...-spec.fits``, banzai-nres's 1-D table (SPECTRUM: id,
order, fiber, wavelength, flux, uncertainty, blaze, blaze_error, mask, normflux,
normuncertainty; the header names the calibrations; the rv step adds the velocities) and a row
per frame.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pyarrow as pa
from astropy.io import fits
from astropy.table import Table

from astroflow.atomic import atomic_path
from astroflow.errors import ItemError
from astroflow.step import FanOut, Resources
from steps.nres.products import read_profile
from steps.nres.science.continuum import normalize_orders
from steps.nres.science.extract import optimal_extract, variance_image
from steps.nres.science.wavelength import apply_drift, drift, find_lines
from steps.nres.trace import CAMERA_KEYS
from steps.nres.wavelength import read_solutions, read_triple

SCHEMA = pa.schema([
    ("filename", pa.string()), ("object", pa.string()), ("day_obs", pa.string()), ("dateobs", pa.string()),
    ("site", pa.string()), ("instrument", pa.string()), ("camera", pa.string()), ("science_fiber", pa.int8()),
    ("exptime", pa.float64()), ("snr", pa.float64()), ("drift_m_s", pa.float64()), ("drift_err_m_s", pa.float64()),
    ("n_orders", pa.int32()), ("wavelength", pa.string()), ("path", pa.string()),
])
THAR_FIBER = 1


def science_frames(ctx) -> list[dict]:
    return [r for r in ctx.table("reduce_target").to_pylist() if r["science_fiber"] >= 0]


def extract_frame(ctx, item) -> dict:
    at = datetime.fromisoformat(item["dateobs"])
    attrs = {k: item[k] for k in CAMERA_KEYS}
    image = fits.getdata(ctx.run_dir / item["path"]).astype(np.float32)
    read_noise = float(item["read_noise"]) if np.isfinite(item["read_noise"]) else 5.0
    profile, blaze, blaze_err = read_profile(ctx.calibration("PROFILE", at, **attrs, fiber_state=item["fiber_state"]))
    solution_path = ctx.calibration("WAVELENGTH", at, **attrs)
    solutions = read_solutions(solution_path)
    reference = read_triple(ctx.calibration("TRIPLE", at, **attrs))
    ex = optimal_extract(image, variance_image(image, read_noise), profile, read_noise=read_noise)
    fiber = item["science_fiber"]
    drift_ms, drift_err = _drift(ex, reference, solutions)
    rows = np.flatnonzero(ex["fiber"] == fiber)
    if rows.size == 0:
        raise ItemError(f"no traces of fiber {fiber} in the profile", path=item["path"])
    sol = solutions[fiber]
    m = sol.m_of_index(ex["order"][rows])
    wave = apply_drift(sol(np.arange(image.shape[1])[None, :], m[:, None]), drift_ms)
    flux, var = ex["flux"][rows], ex["variance"][rows]
    unc = np.sqrt(np.clip(var, 0, None))
    norm, norm_unc = normalize_orders(flux, unc, blaze[rows], blaze_err[rows], wave, mask=ex["mask"][rows])
    snr = float(np.nanmedian(np.nanpercentile(np.where(unc > 0, flux / np.where(unc > 0, unc, 1), np.nan), 90, axis=1)))
    head = fits.Header()
    for key in ("object", "day_obs", "dateobs", "exptime", "site", "instrument", "camera"):
        head[key.upper().replace("_", "-")[:8]] = item[key]
    head["DRIFT"] = (drift_ms, "[m/s] ThAr fiber against the TRIPLE")
    head["SNR"] = (snr, "median over orders of 90th pct flux/err")
    ctx.stamp_fits(head)
    n, nx = flux.shape
    table = Table({
        "id": np.arange(n), "order": m.astype(np.int16), "fiber": np.full(n, fiber, np.int8),
        "wavelength": wave, "flux": flux, "uncertainty": unc, "blaze": blaze[rows], "blaze_error": blaze_err[rows],
        "mask": ex["mask"][rows], "normflux": norm, "normuncertainty": norm_unc})
    rel = (f"reduced/{item['site']}/{item['instrument']}/spec/{item['day_obs']}/"
           f"{item['filename'].removesuffix('.fz').removesuffix('.fits')}-spec.fits")
    with atomic_path(ctx.product(rel)) as tmp:
        fits.HDUList([fits.PrimaryHDU(header=head), fits.BinTableHDU(table, name="SPECTRUM")]).writeto(tmp)
    return {**{k: item[k] for k in ("filename", "object", "day_obs", "dateobs", "site", "instrument", "camera",
                                   "science_fiber", "exptime")},
            "snr": snr, "drift_m_s": drift_ms, "drift_err_m_s": drift_err, "n_orders": int(n),
            "wavelength": solution_path.name, "path": rel}


def _drift(ex: dict, reference: dict, solutions: dict) -> tuple[float, float]:
    """The ThAr fiber's drift against the TRIPLE (m/s); 0 when the frame has no ThAr fiber."""
    rows = np.flatnonzero(ex["fiber"] == THAR_FIBER)
    if rows.size == 0 or THAR_FIBER not in reference:
        return 0.0, float("nan")
    ref = reference[THAR_FIBER]
    frame_lines = [find_lines(ex["flux"][r], ex["variance"][r]) for r in rows]
    by_order = {int(o): i for i, o in enumerate(ref["order"])}
    ref_lines = [find_lines(ref["flux"][by_order[int(o)]], ref["variance"][by_order[int(o)]])
                 for o in ex["order"][rows]]
    d = drift(frame_lines, ref_lines, solutions[THAR_FIBER], ex["order"][rows])
    return float(d["drift"]), float(d["drift_err"])


extract = FanOut("extract", inputs=("reduce_target", "profile", "wavelength"), items=science_frames,
                 process=extract_frame, key=("filename",), schema=SCHEMA, shard_size=2,
                 resources=Resources(cpu="1", memory="3Gi"), doc=__doc__)
