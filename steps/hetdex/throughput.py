"""Runbook steps 9-13 (rsetstar_w, qfit_gaia, rgettp0, rgettp0b, rfitpoly): star extractions,
FWHM, SED fits and the throughput of a shot with its two-parameter polynomial.

Fans out over shots.  The catalogue stars on the IFUs are re-centred and the PSF FWHM fitted
jointly; each star is extracted (PSF-weighted, all exposures, relflux applied) in 40 A bins; its
blackbody SED is fitted to the catalogue colours (stellarSEDfits in the original) and scaled to
its g magnitude; the throughput of a star is the extracted electrons over the SED's photons.
Stars are accepted when the std/avg of their throughput over the band is < 0.2 about the
median curve; the accepted curves are biweight-combined and fitted by nominal x (a + b (lambda -
4540)/1000) (Robin's fitpoly).  Response at 4540 A, FWHM and the curves go to the shot row.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from astropy.stats import biweight_location, biweight_scale

from astroflow.errors import ItemError
from astroflow.step import FanOut, Resources
from steps.hetdex.astrometry import band_flux, shot_fibers
from steps.hetdex.rawdata import read_star_catalog
from steps.hetdex.science import sources
from steps.hetdex.science.instrument import RECT_WAVE, electrons_per_flux, nominal_throughput
from steps.hetdex.science.coords import sky_to_focal
from steps.hetdex.science.psf import fiber_fraction, fit_point_source

F = pa.list_(pa.float32())
SCHEMA = pa.schema([
    ("datevobs", pa.string()), ("shotid", pa.int64()), ("fwhm", pa.float64()), ("fwhm_err", pa.float64()),
    ("nstars", pa.int32()), ("nstars_accepted", pa.int32()), ("norm", pa.float64()), ("slope", pa.float64()),
    ("response_4540", pa.float64()), ("wavelength", F), ("throughput", F), ("tp_low", F), ("tp_high", F),
    ("rat_poly", F), ("tp_gband", F),
])
BIN = 20  # rectified bins (40 A) per throughput point


def shots(ctx) -> list[dict]:
    return [{"datevobs": r["datevobs"]} for r in ctx.rows("astrometry", columns=["datevobs"])]


def throughput_one(ctx, item) -> dict:
    dv = item["datevobs"]
    ast = ctx.row("astrometry", datevobs=dv)
    meta, arr = shot_fibers(ctx, dv)
    fx = np.array([m["fpx"] for m in meta]) - ast["dx"]
    fy = np.array([m["fpy"] for m in meta]) - ast["dy"]
    ex = np.array([m["expnum"] for m in meta])
    texp = np.array([m["exptime"] for m in meta])
    rel = np.asarray(ast["relflux"])[ex - 1]
    sub, err = arr["rect_sub"] / rel[:, None], arr["rect_err"] / rel[:, None]
    flux, ferr = band_flux(sub, err)
    stars = []
    for s in read_star_catalog(ctx.uses(ctx.settings.star_catalog) if ctx.settings.star_catalog else None):
        sx, sy = sky_to_focal(s["ra"], s["dec"], ast["ra"], ast["dec"], ast["pa"])
        if np.min(np.hypot(fx - sx, fy - sy)) > 1.5:
            continue
        fit = fit_point_source(fx, fy, flux, ferr, sx, sy, ctx.settings.fwhm_guess, fit_fwhm=True, max_shift=1.5)
        if fit is not None and fit["amp"] > 0:
            stars.append((s, fit))
    if not stars:
        raise ItemError(f"{dv}: no catalogue star on the IFUs")
    fwhms = np.array([f["fwhm"] for _, f in stars])
    fwhm = float(np.median(fwhms))
    nb = len(RECT_WAVE) // BIN
    wb = RECT_WAVE[: nb * BIN].reshape(nb, BIN).mean(axis=1)
    curves = []
    for s, fit in stars:
        near = np.hypot(fx - fit["x"], fy - fit["y"]) < 5
        w = fiber_fraction(fx[near] - fit["x"], fy[near] - fit["y"], fwhm)[:, None]
        d, e = sub[near], err[near]
        iv = np.where(np.isfinite(d) & (e > 0), 1 / np.where(e > 0, e, 1) ** 2, 0)
        amp = np.nansum(w * np.nan_to_num(d) * iv, axis=0) / np.maximum(np.sum(w * w * iv, axis=0), 1e-30)
        ampb = amp[: nb * BIN].reshape(nb, BIN).sum(axis=1)  # electrons per 40 A (mean exposure)
        temp = sources.fit_star_temperature({b: s[b] for b in "ugriz"})
        model = sources.star_spectrum(wb, temp, s["g"])
        photons = model * electrons_per_flux(wb, 2.0 * BIN, float(np.median(texp)))
        curves.append(ampb / photons)
    curves = np.array(curves)
    med = np.nanmedian(curves, axis=0)
    dev = np.nanstd(curves / med, axis=1)
    ok = dev < 0.2
    if not ok.any():
        ok = dev == dev.min()
    tp = biweight_location(curves[ok], axis=0) if ok.sum() >= 3 else np.nanmean(curves[ok], axis=0)
    spread = biweight_scale(curves[ok], axis=0) if ok.sum() >= 3 else 0.05 * tp
    # fitpoly: nominal shape x (a + b (lambda - 4540) / 1000)
    good = np.isfinite(tp) & (wb > 3600) & (wb < 5400)
    x = (wb[good] - 4540.0) / 1000.0
    base = nominal_throughput(wb[good])
    a_mat = np.vstack([base, base * x]).T
    (a, b), *_ = np.linalg.lstsq(a_mat, tp[good], rcond=None)
    poly = nominal_throughput(RECT_WAVE) * (a + b * (RECT_WAVE - 4540.0) / 1000.0)
    tp_full = np.interp(RECT_WAVE, wb, np.where(np.isfinite(tp), tp, np.interp(wb, wb[good], tp[good])))
    sp_full = np.interp(RECT_WAVE, wb, np.nan_to_num(spread))
    date, obs = dv.split("v")
    return {"datevobs": dv, "shotid": int(date) * 1000 + int(obs), "fwhm": fwhm,
            "fwhm_err": float(np.std(fwhms) / np.sqrt(len(fwhms))), "nstars": len(stars), "nstars_accepted": int(ok.sum()),
            "norm": float(a), "slope": float(b / a) if a else 0.0, "response_4540": float(a * nominal_throughput(4540.0)),
            "wavelength": RECT_WAVE.astype(np.float32), "throughput": tp_full.astype(np.float32),
            "tp_low": (tp_full - sp_full).astype(np.float32), "tp_high": (tp_full + sp_full).astype(np.float32),
            "rat_poly": poly.astype(np.float32), "tp_gband": np.full(RECT_WAVE.size, a * nominal_throughput(4680.0), np.float32)}


throughput = FanOut(
    "throughput",
    inputs=("astrometry", "sci_reduce"),
    items=shots,
    process=throughput_one,
    key=("datevobs",),
    schema=SCHEMA,
    shard_size=1,
    resources=Resources(cpu="1", memory="6Gi", heavy=True),
    doc=__doc__,
)
