"""Runbook step 16 (rcal0; append_calfib): calibrated fibers of a shot, per IFU.

Fans out over (shot, IFU slot).  Local-sky-subtracted counts are divided by exposure time,
relative normalisation and the shot's response polynomial (rat_poly) to give calfib/calfibe in
1e-17 erg/s/cm^2 per 2 A bin; calfib_ffsky uses the full-field sky of step 20 (factor and
wavelength offset per amp) instead of the local sky.  Written per IFU to
``calfib/{DATEvOBS}/{ifuslot}.npz`` with the fiber coordinates of the astrometry.
"""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from astropy.io import fits

from astroflow.atomic import write_bytes
from astroflow.step import FanOut, Resources
from steps.hetdex.full_sky import shift
from steps.hetdex.sci_reduce import read_multi
from steps.hetdex.science.instrument import FLUX_UNIT, RECT_WAVE, electrons_per_flux

SCHEMA = pa.schema([("datevobs", pa.string()), ("shotid", pa.int64()), ("ifuslot", pa.string()), ("n_fibers", pa.int32()),
                    ("median_calfibe_4600", pa.float64()), ("path", pa.string())])
FIELDS = ("calfib", "calfibe", "calfib_ffsky", "calfib_counts", "calfibe_counts")


def ifus(ctx) -> list[dict]:
    rows = ctx.rows("sci_reduce", columns=["datevobs", "ifuslot"])
    return [{"datevobs": d, "ifuslot": s} for d, s in sorted({(r["datevobs"], r["ifuslot"]) for r in rows})]


def calfib_one(ctx, item) -> dict:
    dv, slot = item["datevobs"], item["ifuslot"]
    tp = ctx.row("throughput", datevobs=dv)
    ast = ctx.row("astrometry", datevobs=dv)
    response = np.asarray(tp["rat_poly"], float)
    ctab = pq.read_table(ctx.run_dir / ast["fibers_path"]).to_pylist()
    coords = {(c["expnum"], c["multiframe"], c["fibnum"]): c for c in ctab}
    ff = {(r["expnum"], r["multiframe"]): r for r in ctx.lookup("full_sky", datevobs=dv).to_pylist()}
    rows = sorted(ctx.lookup("sci_reduce", datevobs=dv, ifuslot=slot).to_pylist(),
                  key=lambda r: (r["expnum"], r["multiframe"]))
    out = {k: [] for k in FIELDS}
    meta = {k: [] for k in ("expnum", "multiframe", "fibnum", "ra", "dec", "ifux", "ifuy", "fpx", "fpy", "amp")}
    for r in rows:
        m = read_multi(ctx.run_dir, r["path"], ("RECT_SUB", "RECT_ERR", "RECT_FLAT"))
        rel = ast["relflux"][r["expnum"] - 1]
        conv = r["exptime"] * rel * response * electrons_per_flux(RECT_WAVE, 2.0, 1.0) / 2.0 * FLUX_UNIT
        # conv: electrons per 2 A bin per (1e-17 erg/s/cm^2 per 2 A bin)
        f = ff.get((r["expnum"], r["multiframe"]))
        if f is not None:
            sky = fits.getdata(ctx.run_dir / f["sky_path"]).astype(float)
            ffsub = m["rect_flat"] - f["factor"] * shift(sky, f["woff"])[None, :]
        else:
            ffsub = m["rect_sub"]
        out["calfib"].append(m["rect_sub"] / conv)
        out["calfibe"].append(m["rect_err"] / conv)
        out["calfib_ffsky"].append(ffsub / conv)
        out["calfib_counts"].append(m["rect_sub"])
        out["calfibe_counts"].append(m["rect_err"])
        n = m["rect_sub"].shape[0]
        c = [coords[(r["expnum"], r["multiframe"], k + 1)] for k in range(n)]
        meta["expnum"] += [r["expnum"]] * n
        meta["multiframe"] += [r["multiframe"]] * n
        meta["fibnum"] += list(range(1, n + 1))
        meta["amp"] += [r["amp"]] * n
        for k in ("ra", "dec", "ifux", "ifuy", "fpx", "fpy"):
            meta[k] += [x[k] for x in c]
    arrays = {k: np.nan_to_num(np.concatenate(v), nan=0.0).astype(np.float32) for k, v in out.items()}
    arrays.update({k: np.asarray(v) for k, v in meta.items()})
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    rel_path = f"calfib/{dv}/{slot}.npz"
    write_bytes(ctx.product(rel_path), buf.getvalue())
    i4600 = np.argmin(np.abs(RECT_WAVE - 4600))
    date, obs = dv.split("v")
    return {"datevobs": dv, "shotid": int(date) * 1000 + int(obs), "ifuslot": slot, "n_fibers": len(meta["fibnum"]),
            "median_calfibe_4600": float(np.median(arrays["calfibe"][:, i4600])), "path": rel_path}


def load(run_dir, rel: str) -> dict:
    with np.load(run_dir / rel, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


calfib = FanOut(
    "calfib",
    inputs=("sci_reduce", "full_sky", "astrometry", "throughput"),
    items=ifus,
    process=calfib_one,
    key=("datevobs", "ifuslot"),
    schema=SCHEMA,
    shard_size=4,
    resources=Resources(cpu="1", memory="4Gi"),
    doc=__doc__,
)
