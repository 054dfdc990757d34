"""Runbook step 14 (mkdetrun, rgetifucen, rdet0; fitradecsp): emission-line detections.

``detect_search`` fans out over (shot, IFU): a grid search of PSF-weighted spectra over the IFU
for emission lines above ``detect_sn_search`` (4.5 in the runbook).  ``detections`` fans out the
same way and refines each candidate (re-centre, re-extract, Gaussian fit), keeps S/N >=
``detect_sn_min`` and merges duplicates; its dataset ``RUN/detections/`` is the detection
catalogue (detectid, shotid, ra, dec, wave, flux, flux_err, sn, linewidth, continuum, ...) with
the 1D spectra and the contributing fibers (the .mc, .spec and .list files of the original).
detectid = line_id_base + 100000 x (shot index) + 1000 x (IFU index) + n.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from astroflow.step import FanOut, Resources
from astroflow.units import with_units
from steps.hetdex.calfib import load
from steps.hetdex.science import detect
from steps.hetdex.science.coords import focal_to_sky
from steps.hetdex.science.instrument import RECT_WAVE

F = pa.list_(pa.float32())
FIBER = pa.struct([("multiframe", pa.string()), ("fibnum", pa.int32()), ("expnum", pa.int32()), ("ra", pa.float64()),
                   ("dec", pa.float64()), ("x_ifu", pa.float32()), ("y_ifu", pa.float32()), ("distance", pa.float32()),
                   ("weight", pa.float32())])
SEARCH_SCHEMA = pa.schema([("datevobs", pa.string()), ("ifuslot", pa.string()), ("x", pa.float64()), ("y", pa.float64()),
                           ("wave", pa.float64()), ("sn_search", pa.float64()), ("noise_ratio", pa.float64())])
LINE_FLUX, PER_BIN = "1e-17 erg / (s cm2)", "5e-18 erg / (s cm2 Angstrom)"  # 1e-17 per 2 A bin
SCHEMA = with_units(pa.schema([
    ("detectid", pa.int64()), ("shotid", pa.int64()), ("datevobs", pa.string()), ("ifuslot", pa.string()),
    ("ra", pa.float64()), ("dec", pa.float64()), ("wave", pa.float64()), ("wave_err", pa.float64()),
    ("flux", pa.float64()), ("flux_err", pa.float64()), ("sn", pa.float64()), ("sn_err", pa.float64()),
    ("linewidth", pa.float64()), ("linewidth_err", pa.float64()), ("continuum", pa.float64()),
    ("continuum_err", pa.float64()), ("chi2", pa.float64()), ("chi2fib", pa.float64()), ("noise_ratio", pa.float64()),
    ("sn_search", pa.float64()), ("x_focal", pa.float64()), ("y_focal", pa.float64()),
    ("multiframe", pa.string()), ("fibnum", pa.int32()), ("expnum", pa.int32()), ("amp", pa.string()),
    ("x_ifu", pa.float64()), ("y_ifu", pa.float64()), ("weight", pa.float64()), ("flux_noise_1sigma", pa.float64()),
    ("spec1d", F), ("spec1d_err", F), ("spec1d_ffsky", F), ("fibers", pa.list_(FIBER)),
]), {
    "ra": ("deg", "right ascension (ICRS)"), "dec": ("deg", "declination (ICRS)"),
    "wave": ("Angstrom", "line centre (air)"), "wave_err": "Angstrom",
    "flux": (LINE_FLUX, "line flux"), "flux_err": LINE_FLUX, "flux_noise_1sigma": (LINE_FLUX, "1-sigma line-flux noise"),
    "linewidth": ("Angstrom", "Gaussian sigma of the line"), "linewidth_err": "Angstrom",
    "continuum": (PER_BIN, "continuum under the line, per 2 A bin (HETDEX's 1e-17 erg/s/cm2/2A)"),
    "continuum_err": PER_BIN,
    "x_focal": ("arcsec", "focal-plane x"), "y_focal": ("arcsec", "focal-plane y"),
    "x_ifu": ("arcsec", "IFU x"), "y_ifu": ("arcsec", "IFU y"),
    "spec1d": (PER_BIN, "PSF-weighted spectrum on the 2 A grid (HETDEX's 1e-17 erg/s/cm2/2A)"),
    "spec1d_err": PER_BIN, "spec1d_ffsky": PER_BIN,
})


def shot_ifus(ctx) -> list[dict]:
    rows = ctx.rows("calfib", columns=["datevobs", "ifuslot"])
    shots = sorted({r["datevobs"] for r in rows})
    out = []
    for si, dv in enumerate(shots):
        slots = sorted({r["ifuslot"] for r in rows if r["datevobs"] == dv})
        out += [{"datevobs": dv, "ifuslot": s, "shot_index": si, "ifu_index": k} for k, s in enumerate(slots)]
    return out


def _inputs(ctx, item):
    row = ctx.row("calfib", datevobs=item["datevobs"], ifuslot=item["ifuslot"])
    fwhm = ctx.row("throughput", datevobs=item["datevobs"])["fwhm"]
    return load(ctx.run_dir, row["path"]), fwhm


def search_one(ctx, item) -> list[dict]:
    d, fwhm = _inputs(ctx, item)
    fx, fy = d["fpx"].astype(float), d["fpy"].astype(float)
    cands, ratio = detect.grid_search(fx, fy, d["calfib"], d["calfibe"], fwhm, float(np.median(fx)), float(np.median(fy)),
                                      sn_min=ctx.settings.detect_sn_search)
    return [{"datevobs": item["datevobs"], "ifuslot": item["ifuslot"], **c, "noise_ratio": ratio} for c in cands]


detect_search = FanOut(
    "detect_search",
    inputs=("calfib", "throughput"),
    items=shot_ifus,
    process=search_one,
    key=("datevobs", "ifuslot"),
    schema=SEARCH_SCHEMA,
    shard_size=2,
    resources=Resources(cpu="1", memory="4Gi"),
    doc=__doc__,
)


def refine_one(ctx, item) -> list[dict]:
    d, fwhm = _inputs(ctx, item)
    ast = ctx.row("astrometry", datevobs=item["datevobs"])
    cands = ctx.lookup("detect_search", datevobs=item["datevobs"], ifuslot=item["ifuslot"]).to_pylist()
    fx, fy = d["fpx"].astype(float), d["fpy"].astype(float)
    i4600 = int(np.argmin(np.abs(RECT_WAVE - 4600)))
    kept = []
    for c in sorted(cands, key=lambda c: -c["sn_search"]):
        r = detect.refine(c, fx, fy, d["calfib"], d["calfibe"], fwhm, c["noise_ratio"], ctx.settings.detect_min_ew_obs)
        if r is None or r["sn"] < ctx.settings.detect_sn_min:
            continue
        if any(np.hypot(r["x"] - k["x"], r["y"] - k["y"]) < 2.5 and abs(r["wave"] - k["wave"]) < 5 for k in kept):
            continue
        kept.append({**r, "sn_search": c["sn_search"], "noise_ratio": c["noise_ratio"]})
    kept.sort(key=lambda r: r["wave"])
    date, obs = item["datevobs"].split("v")
    base = ctx.settings.line_id_base + 100000 * item["shot_index"] + 1000 * item["ifu_index"]
    rows = []
    for n, r in enumerate(kept, start=1):
        ra, dec = focal_to_sky(r["x"], r["y"], ast["ra"], ast["dec"], ast["pa"])
        spec_ff = detect.extract_at(r["x"], r["y"], fx, fy, d["calfib_ffsky"], d["calfibe"], fwhm)[0]
        fib = r["fibers"]
        best = fib[int(np.argmax(r["weights"]))]
        fibers = [{"multiframe": str(d["multiframe"][i]), "fibnum": int(d["fibnum"][i]), "expnum": int(d["expnum"][i]),
                   "ra": float(d["ra"][i]), "dec": float(d["dec"][i]), "x_ifu": float(d["ifux"][i]), "y_ifu": float(d["ifuy"][i]),
                   "distance": float(np.hypot(fx[i] - r["x"], fy[i] - r["y"])), "weight": float(w)}
                  for i, w in zip(fib, r["weights"])]
        rows.append({
            "detectid": base + n, "shotid": int(date) * 1000 + int(obs), "datevobs": item["datevobs"], "ifuslot": item["ifuslot"],
            "ra": float(ra), "dec": float(dec), "wave": r["wave"], "wave_err": r["wave_err"], "flux": r["flux"],
            "flux_err": r["flux_err"], "sn": r["sn"], "sn_err": 1.0, "linewidth": r["linewidth"], "linewidth_err": r["linewidth_err"],
            "continuum": r["continuum"], "continuum_err": r["continuum_err"], "chi2": r["chi2"], "chi2fib": r["chi2fib"],
            "noise_ratio": r["noise_ratio"], "sn_search": r["sn_search"], "x_focal": r["x"], "y_focal": r["y"],
            "multiframe": str(d["multiframe"][best]), "fibnum": int(d["fibnum"][best]), "expnum": int(d["expnum"][best]),
            "amp": str(d["amp"][best]), "x_ifu": float(r["x"] - np.median(fx) + 0.0), "y_ifu": float(r["y"] - np.median(fy)),
            "weight": float(np.max(r["weights"])), "flux_noise_1sigma": float(r["spec_err"][i4600]) * 2.5,
            "spec1d": r["spec"].astype(np.float32), "spec1d_err": r["spec_err"].astype(np.float32), "spec1d_ffsky": np.nan_to_num(spec_ff).astype(np.float32),
            "fibers": fibers,
        })
    return rows


detections = FanOut(
    "detections",
    inputs=("detect_search", "calfib", "astrometry", "throughput"),
    items=shot_ifus,
    process=refine_one,
    key=("datevobs", "ifuslot"),
    schema=SCHEMA,
    shard_size=2,
    resources=Resources(cpu="1", memory="4Gi"),
    doc=__doc__,
)
