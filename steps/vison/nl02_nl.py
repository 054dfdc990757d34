"""NL02 sub-task ``NL`` (vison ``produce_NLCs``): the drift-corrected non-linearity curve and its maximum.

Per test and CCD (fan-out), per quadrant, from the check's fluences
(:mod:`steps.vison.science.nonlinearity`): the frames at 0 s are the background, subtracted (vison
leaves it in); the stability frames are those at the exposure time repeated most at one source; their fluences
against time give the lamp's drift (degree-2 polynomial, 3-sigma clipped), which every exposed
frame's fluence is divided by; the frames at the full well (the upper quartile collapsed onto the
median) are left out of the curve, their fluence is the top of its range.  Each frame's source
is its header's ``SOURCE`` and filter position: each source has its own flux, the curve is one
degree-4 polynomial in fluence / 2^16 ADU, per cent, zero at zero fluence, fitted jointly over
both sources above 250 ADU; the maximum non-linearity is the largest ``|NL|`` from the faintest
point to the full well.  Writes ``RUN/<session>/<TEST>/nonlinearity/`` (ccd, quadrant, coeffs: c0
... c4 lowest first, NL % against fluence / 65536 ADU, max_nl_pct).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from pydantic import Field

from astroflow.step import FanOut, StepParams
from steps.vison import elvis, tasks
from steps.vison.products import write_part
from steps.vison.science.nonlinearity import (
    CLIP_RATIO,
    FIT_MIN_ADU,
    NL_DEGREE,
    drift_track,
    fit_nonlinearity,
    is_clipped,
    stability_exposure,
)
from steps.vison.subtasks import KEY, task_items

STABILITY_TOLERANCE = 0.1  # vison's NL0X FLU_lims for the stability frames: +-10 %


class NLParams(StepParams):
    degree: int = Field(NL_DEGREE, ge=1, le=6, description="degree of the non-linearity polynomial (vison: 4)")
    min_fluence_adu: float = Field(FIT_MIN_ADU, ge=0, description="faintest fluence in the fit (vison: 250 ADU)")
    clip_ratio: float = Field(CLIP_RATIO, gt=0, lt=1, description=(
        "a frame is at the full well when its (p75 - median) is below this fraction of (median - p25)"))
    drift: bool = Field(True, description="correct the lamp's drift with the stability frames (vison: TrackFlux)")
    stability_tolerance: float = Field(STABILITY_TOLERANCE, gt=0, description=(
        "relative deviation of a stability frame from their median before FLUENCE_OOL"))


SCHEMA = pa.schema([
    ("test", pa.string()), ("ccd", pa.int8()), ("quadrant", pa.string()), ("coeffs", pa.list_(pa.float64())),
    ("coeff_errors", pa.list_(pa.float64())), ("max_nl_pct", pa.float64()), ("signed_max_nl_pct", pa.float64()),
    ("fluence_at_max_adu", pa.float64()), ("fluence_lo_adu", pa.float64()), ("fluence_hi_adu", pa.float64()),
    ("n_frames", pa.int32()), ("n_points", pa.int32()), ("n_used", pa.int32()), ("n_clipped", pa.int32()),
    ("rms_pct", pa.float64()), ("sources", pa.list_(pa.string())), ("fluxes_adu_per_s", pa.list_(pa.float64())),
    ("background_adu", pa.float64()), ("stability_exptime", pa.float64()), ("stability_source", pa.string()),
    ("n_stability", pa.int32()),
    ("drift_span_pct", pa.float64()), ("drift_rms_pct", pa.float64()),
    ("stability_deviants", pa.list_(pa.string())), ("drift_problems", pa.list_(pa.string())),
    ("problems", pa.list_(pa.string())),
])


def quadrant_curve(p: NLParams, rows: list[dict]) -> dict:
    """One quadrant's curve from its frames' check rows (see the module docstring)."""
    bgd_rows = [r for r in rows if not r["exptime"]]
    background = float(np.median([r["fluence_adu"] for r in bgd_rows])) if bgd_rows else 0.0
    exposed = [r for r in rows if r["exptime"] and r["exptime"] > 0 and np.isfinite(r["fluence_adu"])]
    t0 = min((r["time_s"] for r in rows), default=0.0)
    clipped = [is_clipped(r["p25_adu"], r["fluence_adu"], r["p75_adu"], p.clip_ratio)
               or r["n_saturated"] > r["n_pixels"] / 2 for r in exposed]
    labels = [f"{r['source']}/{r['wave_pos']}" for r in exposed]
    key = stability_exposure([(r["exptime"], s) for r, s in zip(exposed, labels)])
    stab = [r for r, s, c in zip(exposed, labels, clipped)
            if key is not None and (round(r["exptime"], 3), s) == key and not c]
    stab_f = np.array([r["fluence_adu"] - background for r in stab])
    deviants = []
    if stab_f.size:
        med = float(np.median(stab_f))
        deviants = [f"ObsID {r['obsid']}: {f:.0f} ADU, {f / med - 1:+.1%} from the stability frames' median "
                    f"(limit ±{p.stability_tolerance:.0%})"
                    for r, f in zip(stab, stab_f) if abs(f / med - 1) > p.stability_tolerance]
    track = drift_track([(r["time_s"] - t0) / 3600.0 for r in stab], stab_f)
    good = [(r, (r["time_s"] - t0) / 3600.0, s) for r, s, c in zip(exposed, labels, clipped) if not c]
    scale = np.array([float(track(h)) if p.drift else 1.0 for _, h, _ in good])
    fluence = np.array([r["fluence_adu"] - background for r, _, _ in good]) / scale
    full_well = max((r["fluence_adu"] - background for r in exposed), default=float("nan"))
    fit = fit_nonlinearity(fluence, [r["exptime"] for r, _, _ in good], [s for _, _, s in good], full_well,
                           degree=p.degree, min_fluence=p.min_fluence_adu)
    return {"coeffs": list(fit.coeffs), "coeff_errors": list(fit.errors), "max_nl_pct": fit.max_nl_pct,
            "signed_max_nl_pct": fit.signed_max_nl_pct, "fluence_at_max_adu": fit.fluence_at_max_adu,
            "fluence_lo_adu": fit.fluence_lo_adu, "fluence_hi_adu": fit.fluence_hi_adu, "n_frames": len(exposed),
            "n_points": fit.n_points, "n_used": fit.n_used, "n_clipped": int(sum(clipped)), "rms_pct": fit.rms_pct,
            "sources": list(fit.fluxes), "fluxes_adu_per_s": list(fit.fluxes.values()), "background_adu": background,
            "stability_exptime": key[0] if key else None, "stability_source": key[1] if key else None,
            "n_stability": len(stab), "drift_span_pct": track.span_pct, "drift_rms_pct": track.rms_pct,
            "stability_deviants": deviants, "drift_problems": track.problems if p.drift else [],
            "problems": fit.problems}


def nl_ccd(ctx, item) -> list[dict]:
    checked = [r for r in ctx.lookup("nl02_check", test=item["test"], ccd=item["ccd"]).to_pylist()
               if r["problem"] is None]
    rows = [{"test": item["test"], "ccd": item["ccd"], "quadrant": q,
             **quadrant_curve(ctx.params, [r for r in checked if r["quadrant"] == q])} for q in elvis.QUADRANTS]
    write_part(ctx, "nonlinearity", item["test"], f"ccd{item['ccd']}", rows)
    return rows


nl02_nl = FanOut("nl02_nl", inputs=("inventory", "nl02_check"), params=NLParams, items=task_items(tasks.NL02), process=nl_ccd,
                 key=KEY, schema=SCHEMA, shard_size=1, doc=__doc__)
