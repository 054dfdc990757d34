"""Runbook step 18.2, ``selixer --dets LIST --png --neighborhood 10 --mini``: one detection at a time.

Fans out over detectids (the list of 18.1, or every detection in the file).  For each: its
spectrum from ``/Spectra`` (per 2 A -> per A), the classification (:mod:`.science.classify`:
PLAE/POII, votes, P(LyA), z_best), then the report images that are not already there and whole,
so a rerun (recover) builds exactly the missing ones.  The row is the detection's catalogue entry
(ELiXer's Detections columns plus its SpectraLines and CalibratedSpectra), one Parquet part per
shard; the merge step joins the parts into ``elixer_cat.h5``.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pyarrow as pa

from astroflow.errors import ItemError
from astroflow.step import FanOut, Resources, StepParams
from astroflow.units import with_units
from steps.elixer.catalog import DETECTION_COLUMNS, DTYPES, VERSION
from steps.elixer.detfile import DetectionsFile, check_layout, detection_rows, read_detectids
from steps.elixer.reportfiles import is_whole
from steps.elixer.science.classify import classify as classify_detection
from steps.elixer.science.cosmology import Cosmology
from steps.elixer.settings import report_path


def _arrow_type(dt):
    if dt.shape:
        return pa.list_(pa.float32())
    return {"i": {8: pa.int64(), 4: pa.int32(), 2: pa.int16(), 1: pa.int8()}.get(dt.itemsize),
            "f": pa.float32() if dt.itemsize == 4 else pa.float64(), "b": pa.bool_(), "S": pa.string()}[dt.kind]


LINE_FLUX, FLUX_DENSITY = "1e-17 erg / (s cm2)", "1e-17 erg / (s cm2 Angstrom)"
SCHEMA = with_units(pa.schema(
    [(name, _arrow_type(DTYPES["Detections"][name])) for name in DETECTION_COLUMNS]
    + [("spectra_lines", pa.string()), ("cal_wavelength", pa.list_(pa.float32())), ("cal_flux", pa.list_(pa.float32())),
       ("cal_flux_err", pa.list_(pa.float32())), ("num_fibers", pa.int32()), ("reports_built", pa.list_(pa.string())),
       ("votes", pa.string()), ("features", pa.string())]
), {
    "ra": ("deg", "right ascension (ICRS)"), "dec": ("deg", "declination (ICRS)"),
    "seeing_fwhm": ("arcsec", "the shot's seeing FWHM"),
    "wavelength_obs": ("Angstrom", "observed wavelength of the line"), "wavelength_obs_err": "Angstrom",
    "flux_line": (LINE_FLUX, "line flux"), "flux_line_err": LINE_FLUX,
    "fwhm_line_aa": ("Angstrom", "line FWHM"), "fwhm_line_aa_err": "Angstrom",
    "fwhm_line_kms": ("km / s", "line FWHM"), "fwhm_line_kms_err": "km / s",
    "continuum_line": (FLUX_DENSITY, "continuum at the line"), "continuum_line_err": FLUX_DENSITY,
    "continuum_wide": (FLUX_DENSITY, "continuum from the wide band"), "continuum_wide_err": FLUX_DENSITY,
    "combined_continuum": (FLUX_DENSITY, "continuum combined from every estimate"), "combined_continuum_err": FLUX_DENSITY,
    "eqw_rest_lya_line": ("Angstrom", "rest-frame equivalent width if LyA (line continuum)"),
    "eqw_rest_lya_line_err": "Angstrom",
    "eqw_rest_lya_wide": ("Angstrom", "rest-frame equivalent width if LyA (wide continuum)"),
    "eqw_rest_lya_wide_err": "Angstrom",
    "combined_eqw_rest_lya": ("Angstrom", "rest-frame equivalent width if LyA (combined continuum)"),
    "combined_eqw_rest_lya_err": "Angstrom",
    "mag_g_wide": ("mag", "g magnitude (AB) of the spectrum"), "mag_g_wide_err": "mag", "mag_g_wide_limit": "mag",
    "cal_wavelength": ("Angstrom", "wavelengths of the calibrated spectrum"),
    "cal_flux": (FLUX_DENSITY, "calibrated spectrum"), "cal_flux_err": FLUX_DENSITY,
})


class ClassifyParams(StepParams):
    pass


def detections(ctx) -> list[dict]:
    """The item list: the detectids to run.  The detections file's layout is checked first (every
    dataset the reader needs, readable to its last row): a file that is not what it seems fails the
    step before any work, with the file and the dataset, in ``RUN/classify/_failure.json``."""
    s = ctx.settings
    path = ctx.uses(s.detections)
    check_layout(path, ffsky=s.ffsky)
    ids = read_detectids(ctx.uses(s.detectids)) if s.detectids else None
    return [{"detectid": int(r["detectid"])} for r in detection_rows(path, ids)]


def open_file(ctx, items) -> dict:
    """Once per shard: the detections file, its rows and every position (for neighbourhoods)."""
    s = ctx.settings
    rows = {int(r["detectid"]): r for r in detection_rows(ctx.uses(s.detections))}
    pos = np.array([(d, r.get("ra", np.nan), r.get("dec", np.nan), r["wave"]) for d, r in rows.items()], float)
    return {"file": DetectionsFile(s.detections, check=False), "rows": rows, "pos": pos,
            "cosmo": Cosmology(s.priors.h0, s.priors.omega_m)}


def _neighbours(state, det, radius):
    pos = state["pos"]
    dec0 = float(det.get("dec", 0.0))
    dx = (pos[:, 1] - float(det.get("ra", 0.0))) * np.cos(np.radians(dec0)) * 3600
    dy = (pos[:, 2] - dec0) * 3600
    sel = (np.hypot(dx, dy) < radius) & (pos[:, 0] != det["detectid"])
    return [{"detectid": int(p[0]), "ra": p[1], "dec": p[2], "wave": p[3]} for p in pos[sel]]


def _finite(v):
    if v is None:
        return None
    if isinstance(v, (list, tuple)):
        return [_finite(x) for x in v]
    v = float(v)
    return v if np.isfinite(v) else None


def extra_features(det: dict, m: dict) -> dict:
    """The ClassificationExtraFeatures row: each indicator's value, vote, weight and ln ratio
    (ELiXer's columns where ELiXer has the indicator; see :mod:`steps.elixer.science.classify`)."""
    votes = {v["name"]: v for v in m["votes"]}
    ev = {e.name: e for e in m["evidence"]}
    out = {"detectid": int(det["detectid"]), "combined_ln_odds": m["ln_odds"]}

    def put(prefix, name):
        v = votes.get(name)
        if v is not None:
            out[f"{prefix}_vote"], out[f"{prefix}_weight"], out[f"{prefix}_ln_lr"] = v["vote"], v["weight"], v["ln_lr"]

    put("plae_poii_combined", "plae_poii")
    out.update(plae_poii_combined=m["plae"], plae_poii_combined_hi=m["plae_hi"], plae_poii_combined_lo=m["plae_lo"],
               plae_poii_combined_midpoint=m.get("plae_midpoint"),
               ew_rest_lya_combined=m["ew_rest_lya"], ew_rest_lya_combined_err=m["ew_rest_lya_err"],
               dex_gmag=m["mag_g"], dex_gmag_bright=m["mag_g"] - m["mag_g_err"] if np.isfinite(m["mag_g_err"]) else None,
               dex_gmag_faint=m["mag_g"] + m["mag_g_err"] if np.isfinite(m["mag_g_err"]) else None,
               dex_flam_slope=m["slope"], dex_flam_slope_err=m["slope_err"])
    put("companion_lines", "companion_lines")
    comp = ev["companion_lines"].detail
    out["companion_oii_ln_lr"] = sum(v for k, v in comp.items() if k.startswith("OII:"))
    out["companion_lya_ln_lr"] = sum(v for k, v in comp.items() if k.startswith("LyA:"))
    for col, names in (("neiii_sn", ("[NeIII]",)), ("balmer_sn", ("H-beta", "H-gamma", "H-delta")),
                       ("oiii_sn", ("[OIII]", "[OIII]4959")), ("civ_sn", ("CIV",))):
        sns = [ln["sn"] for ln in comp.get("lines", []) if ln["name"] in names]
        out[col] = max(sns) if sns else None
    put("line_shape", "line_shape")
    shape = ev["line_shape"].detail
    if shape:
        out.update(line_asym=shape["asym"], oii_doublet_ratio=shape["oii_ratio"], line_shape_chi2_lya=shape["chi2_lya"],
                   line_shape_chi2_oii=shape["chi2_oii"], rb_flux_asym=shape["rb_flux_asym"][0],
                   rb_flux_asym_err=shape["rb_flux_asym"][1], rb_flux_asym_vote=out["line_shape_vote"],
                   rb_flux_asym_weight=out["line_shape_weight"])
    v = votes["line_width"]
    out.update(line_sigma=m["sigma"], line_sigma_err=m["fit"].sigma_err, line_sigma_vote=v["vote"],
               line_sigma_weight=v["weight"], line_sigma_ln_lr=v["ln_lr"])
    put("continuum_shape", "continuum_shape")
    cs = ev["continuum_shape"].detail
    if cs:
        out.update(continuum_beta_lya=cs["beta_lya"], continuum_igm_scale=cs["igm_scale"], continuum_beta_oii=cs["beta_oii"],
                   continuum_d4000=cs["d4000"], forest_ratio=cs["forest_ratio"], forest_ratio_err=cs["forest_ratio_err"],
                   d4000_n=cs["d4000_n"], d4000_n_err=cs["d4000_n_err"])
    put("multiline_other", "multiline_other")
    mv = [votes[k]["vote"] for k in ("companion_lines", "multiline_other")]
    mw = [votes[k]["weight"] if votes[k]["ln_lr"] != 0 else 0.0 for k in ("companion_lines", "multiline_other")]
    out["multiline_votes"] = mv + [float("nan")] * 7
    out["multiline_weights"] = mw + [-1.0] * 7
    return {k: _finite(v) if k != "detectid" else v for k, v in out.items()}


def catalog_row(det: dict, m: dict, spec: dict, n_fibers: int, built: list[str]) -> dict:
    """The Detections row in ELiXer's columns (plus lines, spectrum and what was built)."""
    fit, cont = m["fit"], m["cont"]
    sol = m["solution"]
    row = {
        "detectid": int(det["detectid"]), "elixer_version": f"astroflow-{VERSION}",
        "elixer_datetime": time.strftime("%Y-%m-%d %H:%M:%S"),
        "shotid": det.get("shotid"), "obsid": det.get("obsid"), "specid": det.get("specid"),
        "ifuslot": det.get("ifuslot"), "ifuid": det.get("ifuid"), "amp": det.get("amp"),
        "multiframe": det.get("multiframe"), "ra": det.get("ra"), "dec": det.get("dec"),
        "wavelength_obs": fit.wave, "wavelength_obs_err": fit.wave_err,
        "z_best": m["z_best"], "z_best_pz": m["z_best_pz"], "z_best_2": m["z_best_2"], "z_best_pz_2": m["z_best_pz_2"],
        "flags": m["flags"], "flux_line": fit.flux, "flux_line_err": fit.flux_err,
        "fwhm_line_aa": m["fwhm_aa"], "fwhm_line_aa_err": fit.sigma_err * 2.3548,
        "fwhm_line_kms": m["fwhm_kms"], "sn": m["sn"], "sn_err": det.get("sn_err"), "chi2": fit.chi2,
        "continuum_line": fit.cont, "continuum_line_err": fit.cont_err,
        "eqw_rest_lya_line": m["ew_line_rest"], "plae_line": m["plae_line"],
        "continuum_wide": cont.at_line, "continuum_wide_err": cont.at_line_err,
        "mag_g_wide": cont.mag_g, "mag_g_wide_err": cont.mag_g_err, "eqw_rest_lya_wide": m["ew_wide_rest"],
        "plae_wide": m["plae_wide"],
        "multiline_flag": sol is not None, "multiline_z": sol.z if sol else None,
        "multiline_rest_w": sol.rest if sol else None, "multiline_prob": min(0.99, sol.score / (sol.score + 5)) if sol else None,
        "multiline_raw_score": sol.score if sol else None, "multiline_name": sol.name if sol else None,
        "combined_plae": m["plae"], "combined_plae_lo": m["plae_lo"], "combined_plae_hi": m["plae_hi"],
        "plya_classification": m["plya"], "combined_continuum": m["cont_comb"],
        "combined_continuum_err": m["cont_comb_err"], "combined_continuum_nondetect": int(bool(m["flags"] & 2)),
        "combined_eqw_rest_lya": m["ew_rest_lya"], "combined_eqw_rest_lya_err": m["ew_rest_lya_err"],
        "spectral_slope": cont.slope, "spectral_slope_err": cont.slope_err, "classification_labels": m["label"],
    }
    for k, v in list(row.items()):
        if isinstance(v, float) and not np.isfinite(v):
            row[k] = None  # the catalogue's default (-999.999) rather than NaN
    lines = [{"detectid": int(det["detectid"]), "wavelength": fit.wave, "type": 1, "score": float(m["sn"]),
              "sn": float(m["sn"]), "chi2": fit.chi2, "flux_line": fit.flux, "flux_line_err": fit.flux_err,
              "used": True, "sol_num": 0, "sigma": fit.sigma, "sigma_err": fit.sigma_err, "continuum": fit.cont,
              "continuum_err": fit.cont_err}]
    for rank, s in enumerate(m["solutions"], 1):
        for ln in s.lines:
            if ln["found"]:
                lines.append({"detectid": int(det["detectid"]), "wavelength": ln["wave"], "type": 1, "score": ln["sn"],
                              "sn": ln["sn"], "flux_line": ln["flux"], "flux_line_err": ln["flux_err"],
                              "used": rank == 1, "sol_num": rank, "sigma": fit.sigma})
    row["spectra_lines"] = json.dumps([{k: (None if isinstance(v, float) and not np.isfinite(v) else v)
                                        for k, v in ln.items()} for ln in lines])
    row["cal_wavelength"] = spec["wave1d"].astype("f4")
    row["cal_flux"], row["cal_flux_err"] = spec["_flux"].astype("f4"), spec["spec1d_err"].astype("f4")
    row["num_fibers"] = n_fibers
    row["reports_built"] = built
    row["votes"] = json.dumps([{k: _finite(v) if k != "name" else v for k, v in vt.items()} for vt in m["votes"]])
    row["features"] = json.dumps(extra_features(det, m))
    for k in DETECTION_COLUMNS:
        row.setdefault(k, None)
        if isinstance(row[k], bytes):
            row[k] = row[k].decode(errors="replace")
        elif isinstance(row[k], np.generic):
            row[k] = row[k].item()
    return row


def one_detection(ctx, item) -> dict:
    from steps.elixer import plots  # matplotlib is loaded by the workers that draw, not by the CLI

    s, state = ctx.settings, ctx.state
    did = int(item["detectid"])
    det = state["rows"].get(did)
    if det is None:
        raise ItemError(f"detectid {did} is not in /Detections", str(s.detections))
    spec = state["file"].spectrum(did)
    flux = spec.get("spec1d_ffsky") if s.ffsky and "spec1d_ffsky" in spec else spec["spec1d"]
    spec["_flux"] = flux
    wave, flam, err = spec["wave1d"], flux / 2.0, spec["spec1d_err"] / 2.0  # per 2-A pixel -> per A
    if not np.isfinite(det["wave"]) or not (wave[0] < det["wave"] < wave[-1]):
        raise ItemError(f"detectid {did}: line wavelength {det['wave']} outside the spectrum")
    rng = np.random.default_rng([s.seed, did])
    m = classify_detection(wave, flam, err, det, s.priors, state["cosmo"], rng)
    fibers = state["file"].fiber_rows(did)
    built = []
    todo = {k: report_path(ctx.run_dir, did, k) for k in s.report_types()}
    todo = {k: p for k, p in todo.items() if not is_whole(p)}
    painter = plots.painter()  # one set of figures per worker process, reused
    if "png" in todo or "pdf" in todo:
        painter.report(todo.get("png"), todo.get("pdf"), det, wave, flam, err, m, fibers)
    if "mini" in todo:
        painter.mini(todo["mini"], det, wave, flam, err, m)
    if "nei" in todo:
        painter.neighbourhood(todo["nei"], det, fibers, _neighbours(state, det, s.neighborhood), s.neighborhood)
    for k, p in todo.items():
        ctx.product(p.relative_to(ctx.run_dir))
        built.append(k)
    return catalog_row(det, m, spec, 0 if fibers is None else len(fibers), built)


classify = FanOut(
    "classify",
    items=detections,
    setup=open_file,
    process=one_detection,
    key=("detectid",),
    params=ClassifyParams,
    schema=SCHEMA,
    shard_size=200,  # 100,000 detections -> 500 pods
    resources=Resources(cpu="1", memory="2Gi"),
    doc=__doc__,
)
