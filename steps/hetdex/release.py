"""Runbook step 17, survey and catalogue files (create_survey_hdf5, create_fiber_index_hdf5,
create_detect_hdf5 [--merge], the continuum-source call): ``release/survey_{release}.h5``,
``flim4600_averages.txt``, ``fiber_index_{release}.h5`` (+ ``fiber_mask.h5``),
``detect_{release}.h5`` and ``continuum_sources.h5``.

The survey is the vstack of every shot file's /Shot row; the fiber index collects each shot's
/Data/FiberIndex with shotid, datevobs, date and healpix (nside 2**15, RING), in the shots' row
order; detections carry /Detections, /Spectra and /Fibers as ELiXer and hetdex_api read them
(flux in 1e-17 erg/s/cm^2, continuum per A, spectra per 2 A bin).
"""

from __future__ import annotations

import h5py
import numpy as np
import pyarrow as pa
from astropy.stats import biweight_location

from astroflow.atomic import atomic_path, write_text
from astroflow.step import Step
from steps.hetdex import h5files as L
from steps.hetdex.science.healpix import ang2pix_ring
from steps.hetdex.science.instrument import RECT_WAVE

NSIDE = 2**15


def _shot_files(ctx) -> list[dict]:
    return sorted(ctx.rows("shot_h5"), key=lambda r: r["shotid"])


def write_survey(ctx) -> list[dict]:
    rel = ctx.settings.release
    shots = _shot_files(ctx)
    survey_rows, index_parts = [], []
    for s in shots:
        with h5py.File(ctx.run_dir / s["path"], "r") as h:
            survey_rows.append(h["Shot"][:])
            fi = h["Data/FiberIndex"][:]
        part = np.zeros(len(fi), L.FIBER_INDEX)
        for col in L.FIBER_INDEX_SHOT.names:
            part[col] = fi[col]
        part["shotid"], part["datevobs"], part["date"] = s["shotid"], s["datevobs"].encode(), int(s["datevobs"][:8])
        part["healpix"] = ang2pix_ring(NSIDE, fi["ra"].astype(np.float64), fi["dec"].astype(np.float64))
        mf = np.char.decode(fi["multiframe"])
        part["specid"] = [m[6:9].encode() for m in mf]
        part["ifuslot"] = [m[10:13].encode() for m in mf]
        part["ifuid"] = [m[14:17].encode() for m in mf]
        part["amp"] = [m[18:20].encode() for m in mf]
        index_parts.append(part)
    survey = np.concatenate(survey_rows) if survey_rows else np.zeros(1, L.SHOT)
    with atomic_path(ctx.product(f"release/survey_{rel}.h5")) as tmp, h5py.File(tmp, "w") as h:
        ctx.stamp_h5(h)
        L.table(h, "Survey", survey)
    index = np.concatenate(index_parts) if index_parts else np.zeros(1, L.FIBER_INDEX)
    with atomic_path(ctx.product(f"release/fiber_index_{rel}.h5")) as tmp, h5py.File(tmp, "w") as h:
        ctx.stamp_h5(h)
        L.table(h, "FiberIndex", index)
    flags = np.zeros(len(index), L.FIBER_FLAGS)
    flags["fiber_id"], flags["flag"] = index["fiber_id"], True
    with atomic_path(ctx.product("release/fiber_mask.h5")) as tmp, h5py.File(tmp, "w") as h:
        ctx.stamp_h5(h)
        L.table(h, "Flags", flags)
    # flux limits: biweight 1-sigma point-source noise at 4600 A (1e-17 erg/s/cm^2)
    det = ctx.rows("detections", columns=["shotid", "flux_noise_1sigma"])
    cal = ctx.rows("calfib", columns=["shotid", "median_calfibe_4600"])
    lines = ["shotid f1sigma_biweight"]
    out = []
    for s in shots:
        vals = [d["flux_noise_1sigma"] for d in det if d["shotid"] == s["shotid"]]
        if len(vals) >= 3:
            f1 = float(biweight_location(vals))
        else:  # no detections: a PSF-weighted aperture of about 4 fibers x 3 exposures x 3 bins
            f1 = float(np.median([c["median_calfibe_4600"] for c in cal if c["shotid"] == s["shotid"]])) * 2.5 / np.sqrt(3.0)
        lines.append(f"{s['shotid']} {f1:.4f}")
        out.append({"shotid": s["shotid"], "datevobs": s["datevobs"], "f1sigma_biweight": f1, "n_fibers": len(index)})
    write_text(ctx.product("release/flim4600_averages.txt"), "\n".join(lines) + "\n")
    return out


survey_h5 = Step(
    "survey_h5",
    inputs=("shot_h5", "detections", "calfib"),
    run=write_survey,
    schema=pa.schema([("shotid", pa.int64()), ("datevobs", pa.string()), ("f1sigma_biweight", pa.float64()),
                      ("n_fibers", pa.int64())]),
    doc=__doc__,
)


def _fiber_rows(det: dict, obsid_date) -> list[dict]:
    date, obsid = obsid_date
    out = []
    for f in det["fibers"]:
        mf = f["multiframe"]
        out.append({"detectid": det["detectid"], "ra": f["ra"], "dec": f["dec"], "x_ifu": f["x_ifu"], "y_ifu": f["y_ifu"],
                    "multiframe": mf, "fibnum": f["fibnum"], "expnum": f["expnum"], "distance": f["distance"],
                    "fiber_id": f"{det['shotid']}_{f['expnum']}_{mf}_{f['fibnum']:03d}", "wavein": det.get("wave", 0.0),
                    "timestamp": f"{date}T000000.0", "date": date, "obsid": obsid, "flag": 1, "weight": f["weight"],
                    "specid": mf[6:9], "ifuslot": mf[10:13], "ifuid": mf[14:17], "amp": mf[18:20],
                    "x_raw": 0, "y_raw": int(f["fibnum"]) * 9})
    return out


def _catalogue(ctx, path, dtype, dets: list[dict], title: str, lines: bool) -> None:
    det_rows, spec_rows, fib_rows = [], [], []
    for d in dets:
        date, obsid = divmod(d["shotid"], 1000)
        mf = d["multiframe"]
        row = {**d, "date": date, "obsid": obsid, "fiber_id": f"{d['shotid']}_{d['expnum']}_{mf}_{d['fibnum']:03d}",
               "inputid": f"{d['datevobs']}_{mf}_{d['fibnum']:03d}", "specid": mf[6:9], "ifuslot": mf[10:13],
               "ifuid": mf[14:17], "amp": mf[18:20], "x_raw": 0, "y_raw": int(d["fibnum"]) * 9, "apcor": 1.0,
               "detectname": f"HETDEX_CONT_{d['detectid']}"}
        row["continuum"] = d["continuum"] / 2.0
        row["continuum_err"] = d["continuum_err"] / 2.0
        if lines:
            row.update({"sn_cen": d["sn"], "sn_3fib": d["sn"], "sn_3fib_cen": d["sn"], "chi2_err": 0.0})
        det_rows.append(row)
        spec = np.asarray(d["spec1d"], np.float32)
        err = np.asarray(d["spec1d_err"], np.float32)
        spec_rows.append({"detectid": d["detectid"], "wave1d": RECT_WAVE, "spec1d": spec, "spec1d_err": err,
                          "counts1d": spec, "counts1d_err": err, "apsum_counts": spec, "apsum_counts_err": err,
                          "spec1d_nc": spec, "spec1d_nc_err": err, "apcor": np.ones(RECT_WAVE.size), "flag_pix": np.ones(RECT_WAVE.size),
                          "spec1d_ffsky": np.asarray(d["spec1d_ffsky"], np.float32)})
        fib_rows += _fiber_rows(d, (date, obsid))
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as h:
        h.attrs["title"] = title
        ctx.stamp_h5(h)
        L.table(h, "Detections", L.rows(dtype, det_rows))
        L.table(h, "Spectra", L.rows(L.SPECTRA, spec_rows))
        L.table(h, "Fibers", L.rows(L.DET_FIBERS, fib_rows))


def write_catalogues(ctx) -> list[dict]:
    rel = ctx.settings.release
    dets = sorted(ctx.rows("detections"), key=lambda d: d["detectid"])
    _catalogue(ctx, ctx.product(f"release/detect_{rel}.h5"), L.DETECTIONS, dets, "HETDEX line detections (astroflow)", True)
    conts = sorted(ctx.rows("continuum"), key=lambda d: d["detectid"])
    for c in conts:
        c.update({"wave": 0.0, "flux": 0.0, "flux_err": 0.0, "sn": 0.0, "linewidth": 0.0})
    _catalogue(ctx, ctx.product("release/continuum_sources.h5"), L.CONTINUUM, conts, "HETDEX continuum sources (astroflow)", False)
    return [{"file": f"detect_{rel}.h5", "rows": len(dets)}, {"file": "continuum_sources.h5", "rows": len(conts)}]


detect_h5 = Step(
    "detect_h5",
    inputs=("detections", "continuum", "survey_h5"),
    run=write_catalogues,
    schema=pa.schema([("file", pa.string()), ("rows", pa.int64())]),
    doc="Runbook step 17, create_detect_hdf5 (lines, --merge) and continuum_sources.h5.",
)
