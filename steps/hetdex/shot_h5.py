"""Runbook step 17, shot files (create_shot_hdf5 --tar, append_calfib, create_astrometry_hdf5,
create_cal_hdf5): ``release/shots/{DATEvOBS}.h5`` in the hetdex_api layout.

Fans out over shots.  /Shot (one row), /Data/Fibers (one row per fiber and exposure, ordered by
exposure, multiframe, fiber), /Data/FiberIndex (same order), /Data/Images (one row per amp and
exposure, optional), /Astrometry (StarCatalog, fplane, NominalVals, QA, groups),
/Calibration/Throughput/throughput and /FullSkyModel/expNN (create_fullskymodel_hdf5: the
exposure's full-field sky, columns wavelength and counts, from runbook step 20).  Written to a
temporary name and renamed.
"""

from __future__ import annotations

import h5py
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from astropy.io import fits

from astroflow.atomic import atomic_path
from astroflow.step import FanOut, Resources
from steps.hetdex import h5files as L
from steps.hetdex.calfib import load
from steps.hetdex.rawdata import read_fplane, read_star_catalog
from steps.hetdex.sci_reduce import read_multi
from steps.hetdex.science.instrument import DITHERS, RECT_WAVE

SCHEMA = pa.schema([("datevobs", pa.string()), ("shotid", pa.int64()), ("n_fibers", pa.int64()), ("n_ifu", pa.int32()),
                    ("path", pa.string())])
NATIVE = ("SPECTRUM", "WAVELENGTH", "FIBER_TO_FIBER", "CHI2", "TRACE", "SKY_SUBTRACTED", "SKY_SPECTRUM", "ERROR1DFIB")


def shots(ctx) -> list[dict]:
    return [{"datevobs": r["datevobs"]} for r in ctx.rows("throughput", columns=["datevobs"])]


def shot_row(ctx, dv: str, red: list[dict]) -> dict:
    date, obs = dv.split("v")
    inv = ctx.lookup("inventory", date=date, obs=int(obs), kind="sci").to_pylist()
    by_exp = {}
    for r in inv:
        by_exp.setdefault(r["exp"], r)
    exps = sorted(by_exp)[:3]
    ast = ctx.row("astrometry", datevobs=dv)
    tp = ctx.row("throughput", datevobs=dv)
    first = by_exp[exps[0]]
    pad = lambda v: (list(v) + [0] * 3)[:3]  # noqa: E731
    objid = first["object"][:18] or "DEX"
    return {
        "shotid": int(date) * 1000 + int(obs), "field": "dex-spring" if 90 < ast["ra"] < 270 else "dex-fall", "objid": objid,
        "date": int(date), "obsid": int(obs), "ra": ast["ra"], "dec": ast["dec"], "pa": ast["pa"],
        "n_ifu": len({r["ifuslot"] for r in red}), "datevobs": dv, "trajcra": first["ra"], "trajcdec": first["dec"],
        "trajcpa": first["pa"], "structaz": first["structaz"], "time": first["ut"].replace(":", "")[:7],
        "ambtemp": first["ambtemp"], "humidity": first["humidity"], "dewpoint": first["dewpoint"], "pressure": first["pressure"],
        "expnum": pad(exps), "exptime": pad([by_exp[e]["exptime"] for e in exps]),
        "darktime": pad([by_exp[e]["darktime"] for e in exps]), "mjd": pad([by_exp[e]["mjd"] for e in exps]),
        "fwhm_virus": tp["fwhm"], "fwhm_virus_err": tp["fwhm_err"], "nstars_fit_fwhm": tp["nstars"],
        "relflux_virus": pad(ast["relflux"]), "response_4540": tp["response_4540"],
        "xditherpos": pad(DITHERS[:, 0]), "yditherpos": pad(DITHERS[:, 1]), "xoffset": [ast["dx"]] * 3,
        "yoffset": [ast["dy"]] * 3, "xrms": [ast["rms"] / np.sqrt(2)] * 3, "yrms": [ast["rms"] / np.sqrt(2)] * 3,
        "nstars_fit": pad(ast["nstars_exp"]), "obsind": 1,
    }


def _write_amp(ctx, k, r, cal, coords, shotid, fibers, index, images) -> int:
    """The fibers of one amplifier exposure (``r``, a sci_reduce row) appended to the Fibers
    and FiberIndex writers, its images to row ``k`` of /Data/Images; returns the fiber count."""
    names = NATIVE + (("IMAGE", "ERROR", "CLEAN_IMAGE") if images is not None else ())
    m = read_multi(ctx.run_dir, r["path"], names)
    c = cal[r["ifuslot"]]
    sel = np.flatnonzero((c["expnum"] == r["expnum"]) & (c["multiframe"] == r["multiframe"]))
    sel = sel[np.argsort(c["fibnum"][sel])]
    n = len(sel)
    arr = np.zeros(n, L.FIBERS)
    arr["multiframe"] = r["multiframe"].encode()
    fib = np.arange(1, n + 1)
    arr["fiber_id"] = [f"{shotid}_{r['expnum']}_{r['multiframe']}_{f:03d}".encode() for f in fib]
    arr["obsind"], arr["fibidx"], arr["fibnum"], arr["expnum"] = 1, fib - 1, fib, r["expnum"]
    cc = [coords[(r["expnum"], r["multiframe"], f)] for f in fib]
    for key in ("ifux", "ifuy", "fpx", "fpy", "ra", "dec"):
        arr[key] = [x[key] for x in cc]
    for ext, col in zip(NATIVE, ("spectrum", "wavelength", "fiber_to_fiber", "chi2", "trace", "sky_subtracted",
                                 "sky_spectrum", "error1D")):
        arr[col] = np.nan_to_num(m[ext.lower()])
    arr["rms"] = np.sqrt(np.nan_to_num(m["chi2"]))
    for col in ("calfib", "calfibe", "calfib_ffsky", "calfib_counts", "calfibe_counts"):
        arr[col] = c[col][sel]
    for col in ("ifuslot", "ifuid", "specid", "contid", "amp"):
        arr[col] = r[col].encode()
    fibers.append(arr)
    idx = np.zeros(n, L.FIBER_INDEX_SHOT)
    for col in L.FIBER_INDEX_SHOT.names:
        idx[col] = arr[col]
    index.append(idx)
    if images is not None:
        im = np.zeros(1, L.IMAGES)
        im["obsind"], im["multiframe"], im["expnum"] = 1, r["multiframe"].encode(), r["expnum"]
        im["image"][0], im["error"][0] = np.nan_to_num(m["image"]), np.nan_to_num(m["error"])
        im["clean_image"][0] = np.nan_to_num(m["clean_image"])
        for col in ("ifuslot", "ifuid", "specid", "contid", "amp"):
            im[col] = r[col].encode()
        images[k:k + 1] = im
    return n


def write_shot(ctx, item) -> dict:
    dv = item["datevobs"]
    date, obs = dv.split("v")
    shotid = int(date) * 1000 + int(obs)
    red = sorted(ctx.lookup("sci_reduce", datevobs=dv).to_pylist(), key=lambda r: (r["expnum"], r["multiframe"]))
    cal = {r["ifuslot"]: load(ctx.run_dir, r["path"]) for r in ctx.lookup("calfib", datevobs=dv).to_pylist()}
    ast = ctx.row("astrometry", datevobs=dv)
    tp = ctx.row("throughput", datevobs=dv)
    coords = {(c["expnum"], c["multiframe"], c["fibnum"]): c for c in pq.read_table(ctx.run_dir / ast["fibers_path"]).to_pylist()}
    n_fib = 112 * len(red)
    rel = f"release/shots/{dv}.h5"
    path = ctx.product(rel)
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as h:
        h.attrs["title"] = f"HETDEX shot {dv} (astroflow)"
        ctx.stamp_h5(h)
        L.table(h, "Shot", L.rows(L.SHOT, [shot_row(ctx, dv, red)]))
        data = h.create_group("Data")
        fibers = L.empty_table(data, "Fibers", L.FIBERS, n_fib, 112)
        index = L.empty_table(data, "FiberIndex", L.FIBER_INDEX_SHOT, n_fib, 1024)
        images = (L.empty_table(data, "Images", L.IMAGES, len(red), 1, compress=False)
                  if ctx.settings.images_in_shot_files else None)
        pos = 0
        with L.ChunkWriter(fibers) as fibers_out, L.ChunkWriter(index) as index_out:
            for k, r in enumerate(red):
                pos += _write_amp(ctx, k, r, cal, coords, shotid, fibers_out, index_out, images)
        if pos != n_fib:
            fibers.resize((max(pos, 1),))
            index.resize((max(pos, 1),))
        astro = h.create_group("Astrometry")
        for g in ("CoaddImages", "Dithall", "PositionOffsets", "CatalogMatches"):
            astro.create_group(g)
        fp = read_fplane(ctx.uses(ctx.settings.fplane) if ctx.settings.fplane else None)
        slots = sorted({r["ifuslot"] for r in red})
        L.table(astro, "fplane", L.rows(L.FPLANE, [fp.get(s, {"ifuslot": s}) for s in slots]))
        stars = read_star_catalog(ctx.uses(ctx.settings.star_catalog) if ctx.settings.star_catalog else None)
        L.table(astro, "StarCatalog", L.rows(L.STARCAT, [{"ignore": i, "ra_cat": s["ra"], "dec_cat": s["dec"], **s}
                                                         for i, s in enumerate(stars)]))
        L.table(astro, "NominalVals", L.rows(np.dtype([("dx", "<f4"), ("dy", "<f4"), ("nstars", "<i4"), ("rms", "<f4")]),
                                             [{"dx": ast["dx"], "dy": ast["dy"], "nstars": ast["nstars"], "rms": ast["rms"]}]))
        thr = h.create_group("Calibration").create_group("Throughput")
        L.table(thr, "throughput", L.rows(L.THROUGHPUT, [
            {k: tp[k][i] for k in L.THROUGHPUT.names} for i in range(len(tp["wavelength"]))]))
        sky = h.create_group("FullSkyModel")
        paths = {r["expnum"]: r["sky_path"] for r in ctx.lookup("full_sky", datevobs=dv).to_pylist()}  # one per exposure
        for expnum, rel_sky in sorted(paths.items()):
            counts = fits.getdata(ctx.run_dir / rel_sky)
            sky.create_dataset(f"exp{expnum:02d}", data=np.column_stack([RECT_WAVE, counts]).astype("<f8"))
    return {"datevobs": dv, "shotid": shotid, "n_fibers": pos, "n_ifu": len(cal), "path": rel}


shot_h5 = FanOut(
    "shot_h5",
    inputs=("inventory", "sci_reduce", "full_sky", "astrometry", "throughput", "calfib"),
    items=shots,
    process=write_shot,
    key=("datevobs",),
    schema=SCHEMA,
    shard_size=1,
    resources=Resources(cpu="1", memory="8Gi", heavy=True),
    doc=__doc__,
)
