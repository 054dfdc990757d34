"""Runbook step 15 (rgetmax, matchradec2, rmkcs, rext1): continuum sources.

Fans out over (shot, IFU).  Fibers whose median sky-subtracted counts in the blue (3600-3900 A)
or the red (5100-5400 A) exceed ``continuum_counts`` (per 2 A bin) are bright; a bright fiber that
is the brightest (4200-5200 A) within ``continuum_merge_arcsec`` (matchradec2's 5.5" in the
runbook, smaller here) starts a source, so a bright star's wings stay one source while two
neighbours stay two; the other bright fibers join their nearest source.  Each source is
re-centred on its band fluxes (PSF fit from its peak fiber), centres closer than the merge radius
are kept once (the brighter), and each is extracted like a line detection and kept when its
4200-5200 A continuum has S/N >= ``continuum_sn_min``.  detectid = line_id_base + 90,000,000 + ...
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from astroflow.step import FanOut, Resources
from steps.hetdex.calfib import load
from steps.hetdex.detections import FIBER, F, shot_ifus
from steps.hetdex.science import detect
from steps.hetdex.science.coords import focal_to_sky
from steps.hetdex.science.instrument import RECT_WAVE
from steps.hetdex.science.psf import fit_point_source

SCHEMA = pa.schema([
    ("detectid", pa.int64()), ("shotid", pa.int64()), ("datevobs", pa.string()), ("ifuslot", pa.string()),
    ("ra", pa.float64()), ("dec", pa.float64()), ("continuum", pa.float64()), ("continuum_err", pa.float64()),
    ("n_fibers_bright", pa.int32()), ("multiframe", pa.string()), ("fibnum", pa.int32()), ("expnum", pa.int32()),
    ("amp", pa.string()), ("x_focal", pa.float64()), ("y_focal", pa.float64()),
    ("spec1d", F), ("spec1d_err", F), ("spec1d_ffsky", F), ("fibers", pa.list_(FIBER)),
])
BLUE = (RECT_WAVE > 3600) & (RECT_WAVE < 3900)
RED = (RECT_WAVE > 5100) & (RECT_WAVE < 5400)
MID = (RECT_WAVE > 4200) & (RECT_WAVE < 5200)


def continuum_one(ctx, item) -> list[dict]:
    row = ctx.row("calfib", datevobs=item["datevobs"], ifuslot=item["ifuslot"])
    d = load(ctx.run_dir, row["path"])
    fwhm = ctx.row("throughput", datevobs=item["datevobs"])["fwhm"]
    ast = ctx.row("astrometry", datevobs=item["datevobs"])
    fx, fy = d["fpx"].astype(float), d["fpy"].astype(float)
    counts = d["calfib_counts"]
    bright = (np.median(counts[:, BLUE], axis=1) > ctx.settings.continuum_counts) | \
             (np.median(counts[:, RED], axis=1) > ctx.settings.continuum_counts)
    band = np.nansum(d["calfib"][:, MID], axis=1)
    band_err = np.sqrt(np.nansum(d["calfibe"][:, MID] ** 2, axis=1))
    idx = np.flatnonzero(bright)
    radius = ctx.settings.continuum_merge_arcsec
    peaks = idx[detect.local_peaks(fx[idx], fy[idx], band[idx], radius)]
    owner = np.argmin(np.hypot(fx[idx, None] - fx[peaks], fy[idx, None] - fy[peaks]), axis=1) if len(peaks) else []
    groups = [idx[owner == k] for k in range(len(peaks))]
    date, obs = item["datevobs"].split("v")
    base = ctx.settings.line_id_base + 90_000_000 + 100000 * item["shot_index"] + 1000 * item["ifu_index"]
    centres = []
    for peak in peaks:
        fit = fit_point_source(fx, fy, band, band_err, fx[peak], fy[peak], fwhm)
        centres.append((fit["x"], fit["y"]) if fit else (fx[peak], fy[peak]))
    keep = detect.distinct_centres(centres, band[peaks], radius)
    out = []
    for k in keep:
        g, (x, y) = groups[k], centres[k]
        spec, err, near, w = detect.extract_at(x, y, fx, fy, d["calfib"], d["calfibe"], fwhm)
        cont, cont_err = float(np.nanmedian(spec[MID])), float(np.nanmedian(err[MID]) / np.sqrt(MID.sum()))
        if not cont > ctx.settings.continuum_sn_min * cont_err:
            continue  # bright fibers from noise or a cosmetic defect, not a source
        spec_ff = detect.extract_at(x, y, fx, fy, d["calfib_ffsky"], d["calfibe"], fwhm)[0]
        ra, dec = focal_to_sky(x, y, ast["ra"], ast["dec"], ast["pa"])
        fib = np.flatnonzero(near)
        best = fib[int(np.argmax(w))]
        fibers = [{"multiframe": str(d["multiframe"][i]), "fibnum": int(d["fibnum"][i]), "expnum": int(d["expnum"][i]),
                   "ra": float(d["ra"][i]), "dec": float(d["dec"][i]), "x_ifu": float(d["ifux"][i]), "y_ifu": float(d["ifuy"][i]),
                   "distance": float(np.hypot(fx[i] - x, fy[i] - y)), "weight": float(wi)} for i, wi in zip(fib, w)]
        out.append({"detectid": base + len(out) + 1, "shotid": int(date) * 1000 + int(obs), "datevobs": item["datevobs"],
                    "ifuslot": item["ifuslot"], "ra": float(ra), "dec": float(dec),
                    "continuum": cont, "continuum_err": cont_err,
                    "n_fibers_bright": len(g), "multiframe": str(d["multiframe"][best]), "fibnum": int(d["fibnum"][best]),
                    "expnum": int(d["expnum"][best]), "amp": str(d["amp"][best]), "x_focal": x, "y_focal": y,
                    "spec1d": np.nan_to_num(spec).astype(np.float32), "spec1d_err": np.nan_to_num(err, posinf=0).astype(np.float32),
                    "spec1d_ffsky": np.nan_to_num(spec_ff).astype(np.float32), "fibers": fibers})
    return out


continuum = FanOut(
    "continuum",
    inputs=("calfib", "astrometry", "throughput"),
    items=shot_ifus,
    process=continuum_one,
    key=("datevobs", "ifuslot"),
    schema=SCHEMA,
    shard_size=2,
    resources=Resources(cpu="1", memory="4Gi"),
    doc=__doc__,
)
