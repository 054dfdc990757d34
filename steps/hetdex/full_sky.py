"""Runbook step 20 (rfft, raddsky: vred3, imaddsky): full-field sky subtraction.

Fans out over (shot, exposure).  The fiber-to-fiber corrected, rectified spectra of every amp of
the exposure give one full-field sky (biweight over fibers, continuum fibers removed); each amp
gets its normalisation factor to the local sky and a wavelength offset.  The per-amp table
(``Spc_slt_iid_am Factor N_c Avg Scale Woff``) goes to ``ffsky/d{date}s{obs}exp{NN}amp.dat`` and
the sky to ``ffsky/d{date}s{obs}exp{NN}sky.fits``; calfib_ffsky is made from them by ``calfib``.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from astropy.io import fits
from astropy.stats import biweight_location, biweight_scale

from astroflow.atomic import write_text
from astroflow.filters import biweight
from astroflow.step import FanOut, Resources
from steps.hetdex.common import write_fits
from steps.hetdex.sci_reduce import read_multi
from steps.hetdex.science.instrument import RECT_WAVE

SCHEMA = pa.schema([
    ("datevobs", pa.string()), ("expnum", pa.int32()), ("multiframe", pa.string()), ("ifuslot", pa.string()),
    ("specid", pa.string()), ("ifuid", pa.string()), ("amp", pa.string()), ("factor", pa.float64()), ("n_cont", pa.int32()),
    ("avg", pa.float64()), ("scale", pa.float64()), ("woff", pa.float64()), ("sky_path", pa.string()),
])


def exposures(ctx) -> list[dict]:
    rows = ctx.rows("sci_reduce", columns=["datevobs", "expnum"])
    return [{"datevobs": d, "expnum": e} for d, e in sorted({(r["datevobs"], r["expnum"]) for r in rows})]


def continuum_fibers(flat: np.ndarray, nsig: float = 5.0) -> np.ndarray:
    """Fibers whose median is far above the amp's (continuum sources)."""
    med = np.nanmedian(flat, axis=1)
    loc, sc = biweight_location(med, ignore_nan=True), biweight_scale(med, ignore_nan=True)
    return med > loc + nsig * max(sc, 1e-3)


def shift(spec: np.ndarray, woff: float) -> np.ndarray:
    return np.interp(RECT_WAVE, RECT_WAVE + woff, spec)


def best_offset(local: np.ndarray, sky: np.ndarray, factor: float) -> float:
    offs = np.arange(-0.6, 0.61, 0.05)
    ok = np.isfinite(local) & np.isfinite(sky)
    rms = [np.nanstd((local - factor * shift(sky, o))[ok]) for o in offs]
    return float(offs[int(np.argmin(rms))])


def full_sky_one(ctx, item) -> list[dict]:
    rows = ctx.lookup("sci_reduce", datevobs=item["datevobs"], expnum=item["expnum"]).to_pylist()
    amps = []
    for r in sorted(rows, key=lambda r: r["multiframe"]):
        m = read_multi(ctx.run_dir, r["path"], ("RECT_FLAT", "RECT_SKY"))
        cont = continuum_fibers(m["rect_flat"])
        amps.append((r, m["rect_flat"], m["rect_sky"], cont))
    allfib = np.concatenate([f[~c] for _, f, _, c in amps])
    sky = biweight(allfib.T, scale=False)[0].astype(np.float32)
    out, lines = [], ["Spc_slt_iid_am Factor N_c    Avg  Scale Woff"]
    date, obs = item["datevobs"].split("v")
    stem = f"ffsky/d{date}s{obs}exp{item['expnum']:02d}"
    for r, flat, local, cont in amps:
        ratio = local / sky
        factor = float(np.nanmedian(ratio[np.isfinite(ratio)]))
        woff = best_offset(local, sky, factor)
        resid = flat[~cont] - factor * shift(sky, woff)[None, :]
        avg, scale = float(np.nanmean(resid)), float(biweight_scale(resid[np.isfinite(resid)]))
        out.append({"datevobs": item["datevobs"], "expnum": item["expnum"], "multiframe": r["multiframe"],
                    "ifuslot": r["ifuslot"], "specid": r["specid"], "ifuid": r["ifuid"], "amp": r["amp"], "factor": factor,
                    "n_cont": int(cont.sum()), "avg": avg, "scale": scale, "woff": woff, "sky_path": stem + "sky.fits"})
        lines.append(f"{r['specid']}_{r['ifuslot']}_{r['ifuid']}_{r['amp']} {factor:6.3f} {int(cont.sum()):3d} "
                     f"{avg:6.2f} {scale:6.2f} {woff:5.2f}")
    write_fits(ctx.product(stem + "sky.fits"), [fits.PrimaryHDU(sky)], ctx=ctx)
    write_text(ctx.product(stem + "amp.dat"), "\n".join(lines) + "\n")
    return out


full_sky = FanOut(
    "full_sky",
    inputs=("sci_reduce",),
    items=exposures,
    process=full_sky_one,
    key=("datevobs", "expnum"),
    schema=SCHEMA,
    shard_size=1,
    resources=Resources(cpu="1", memory="6Gi", heavy=True),
    doc=__doc__,
)
