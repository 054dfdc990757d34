"""Runbook step 8 (rta${mth}, vdrp astrometry): fiber coordinates of a shot.

Fans out over shots.  Nominal fiber positions are the fplane IFU positions plus the IFU fiber
layout plus the dither pattern; the catalogue stars on the IFUs are fitted (position, amplitude)
in a 4200-5200 A band image of the sky-subtracted fibers, their mean offset from the catalogue
is the pointing correction, and the per-exposure amplitudes give the relative normalisation
(relflux_virus).  Fiber coordinates go to ``astrometry/{DATEvOBS}_fibers.parquet``.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from astropy.stats import biweight_location

from astroflow.atomic import write_table
from astroflow.step import FanOut, Resources
from steps.hetdex.rawdata import read_fplane, read_star_catalog
from steps.hetdex.sci_reduce import read_multi
from steps.hetdex.science.coords import focal_to_sky, sky_to_focal
from steps.hetdex.science.instrument import DITHERS, RECT_WAVE, amp_fibers, ifuslot_position
from steps.hetdex.science.psf import fiber_fraction, fit_point_source

BAND = (RECT_WAVE > 4200) & (RECT_WAVE < 5200)
SCHEMA = pa.schema([
    ("datevobs", pa.string()), ("shotid", pa.int64()), ("ra", pa.float64()), ("dec", pa.float64()), ("pa", pa.float64()),
    ("dx", pa.float64()), ("dy", pa.float64()), ("nstars", pa.int32()), ("rms", pa.float64()),
    ("relflux", pa.list_(pa.float64())), ("nstars_exp", pa.list_(pa.int32())), ("fibers_path", pa.string()),
])


def shots(ctx) -> list[dict]:
    return [{"datevobs": d} for d in sorted({r["datevobs"] for r in ctx.rows("sci_reduce", columns=["datevobs"])})]


def shot_fibers(ctx, datevobs: str, names=("RECT_SUB", "RECT_ERR")) -> tuple[list[dict], dict]:
    """Per-fiber metadata (nominal focal positions) and the stacked arrays of a shot's amps."""
    rows = sorted(ctx.lookup("sci_reduce", datevobs=datevobs).to_pylist(), key=lambda r: (r["expnum"], r["multiframe"]))
    fplane = read_fplane(ctx.uses(ctx.settings.fplane) if ctx.settings.fplane else None)
    meta, arrays = [], {n.lower(): [] for n in names}
    for r in rows:
        m = read_multi(ctx.run_dir, r["path"], names)
        fp = fplane.get(r["ifuslot"])
        cx, cy = (fp["fpx"], fp["fpy"]) if fp else ifuslot_position(r["ifuslot"])
        f = amp_fibers(r["amp"])
        dx, dy = DITHERS[(r["expnum"] - 1) % len(DITHERS)]
        for k in range(len(f)):
            meta.append({**{c: r[c] for c in ("expnum", "multiframe", "ifuslot", "specid", "ifuid", "contid", "amp", "exptime", "mjd")},
                         "fibnum": k + 1, "ifux": f[k, 0], "ifuy": f[k, 1], "fpx": cx + f[k, 0] + dx, "fpy": cy + f[k, 1] + dy,
                         "ra0": m["header"].get("RA", np.nan)})
        for n in names:
            arrays[n.lower()].append(m[n.lower()])
    return meta, {k: np.concatenate(v) for k, v in arrays.items()}


def band_flux(sub: np.ndarray, err: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    f = np.nansum(sub[:, BAND], axis=1)
    e = np.sqrt(np.nansum(err[:, BAND] ** 2, axis=1))
    return f, np.where(e > 0, e, np.nan)


def pointing(ctx, datevobs: str) -> dict:
    date, obs = datevobs.split("v")
    inv = ctx.lookup("inventory", date=date, obs=int(obs), kind="sci").to_pylist()
    return {"ra": inv[0]["ra"], "dec": inv[0]["dec"], "pa": inv[0]["pa"]}


def astrometry_one(ctx, item) -> dict:
    dv = item["datevobs"]
    meta, arr = shot_fibers(ctx, dv)
    p = pointing(ctx, dv)
    fx = np.array([m["fpx"] for m in meta])
    fy = np.array([m["fpy"] for m in meta])
    ex = np.array([m["expnum"] for m in meta])
    flux, err = band_flux(arr["rect_sub"], arr["rect_err"])
    stars = read_star_catalog(ctx.uses(ctx.settings.star_catalog) if ctx.settings.star_catalog else None)
    offs, amps = [], []
    for s in stars:
        sx, sy = sky_to_focal(s["ra"], s["dec"], p["ra"], p["dec"], p["pa"])
        if np.min(np.hypot(fx - sx, fy - sy)) > 1.5:
            continue
        fit = fit_point_source(fx, fy, flux, err, sx, sy, ctx.settings.fwhm_guess, fit_fwhm=True)
        if fit is None or fit["amp"] <= 0:
            continue
        offs.append((fit["x"] - sx, fit["y"] - sy))
        per_exp = []
        for e in sorted(set(ex)):
            sel = (ex == e) & np.isfinite(flux) & (np.hypot(fx - fit["x"], fy - fit["y"]) < 5)
            w = fiber_fraction(fx[sel] - fit["x"], fy[sel] - fit["y"], fit["fwhm"])
            iv = 1 / err[sel] ** 2
            per_exp.append(float(np.sum(w * (flux[sel] - fit["bkg"]) * iv) / max(np.sum(w * w * iv), 1e-30)))
        amps.append(np.array(per_exp) / np.mean(per_exp))
    offs = np.array(offs) if offs else np.zeros((0, 2))
    dx, dy = (biweight_location(offs, axis=0) if len(offs) >= 3 else offs.mean(axis=0)) if len(offs) else (0.0, 0.0)
    rms = float(np.sqrt(np.mean(np.sum((offs - [dx, dy]) ** 2, axis=1)))) if len(offs) else np.nan
    relflux = np.median(np.array(amps), axis=0) if amps else np.ones(len(set(ex)))
    ra, dec = focal_to_sky(fx - dx, fy - dy, p["ra"], p["dec"], p["pa"])
    table = pa.table({
        "expnum": pa.array(ex, pa.int32()), "multiframe": [m["multiframe"] for m in meta],
        "fibnum": pa.array([m["fibnum"] for m in meta], pa.int32()),
        "ifux": pa.array([m["ifux"] for m in meta], pa.float32()), "ifuy": pa.array([m["ifuy"] for m in meta], pa.float32()),
        "fpx": pa.array(fx - dx, pa.float32()), "fpy": pa.array(fy - dy, pa.float32()),
        "ra": pa.array(ra, pa.float64()), "dec": pa.array(dec, pa.float64()),
    })
    rel = f"astrometry/{dv}_fibers.parquet"
    write_table(ctx.product(rel), table)
    date, obs = dv.split("v")
    return {"datevobs": dv, "shotid": int(date) * 1000 + int(obs), **p, "dx": float(dx), "dy": float(dy),
            "nstars": len(offs), "rms": rms, "relflux": [float(v) for v in relflux],
            "nstars_exp": [len(offs)] * len(relflux), "fibers_path": rel}


astrometry = FanOut(
    "astrometry",
    inputs=("inventory", "sci_reduce"),
    items=shots,
    process=astrometry_one,
    key=("datevobs",),
    schema=SCHEMA,
    shard_size=1,
    resources=Resources(cpu="1", memory="6Gi", heavy=True),
    doc=__doc__,
)
