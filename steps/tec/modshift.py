"""Runbook steps 12 and 17, modshift_test.py 1 / 2: trapezoid fit + model-shift test per TCE.

Two declared steps replace the runbook's hand edits of lines 292-295 (and the "do not start
step 17 too early" warning: nothing here writes temporary files, so both run at once):

* ``modshift_med`` (step 12, ``modshift_test.py 1``): the DV median-detrended flux
  (``lc_detrend`` from the resample step; skyline cadences invalid);
* ``modshift_alt`` (step 17, ``modshift_test.py 2``): the TEC alternative detrending
  (``alt_detrend`` from the ses_mes step).

Fans out over the vetted TCEs (triage pass, at_valid, trp_valid, insolation > 0).  For each: the
trapezoid fit at the DV period (``steps.tec.science.trapezoid``), the model-shift test on
(time, flux, model) at the fitted epoch (retried at half the period when the model has no
testable transit, as the original), and the verdicts (unique primary, significant secondary,
half-period and albedo overrides; ``steps.tec.science.modshift_verdict``).  Writes one row per
TCE and the figure ``S{ss}/{tic//1000:04d}/tess_{TIC}_{PN}_med-modshift.pdf`` (step 12) or
``tess_{TIC}_{PN}-modshift.pdf`` (step 17; ``steps.tec.modshift_figure``, a few milliseconds a page);
with ``write_inputs`` also the model-shift input
``tess_trpzdfit_{TIC}_{PN}_{1|2}.txt`` (``time flux model`` rows, for ``modshift_cli``).
A TCE whose test gives no result even at P/2 gets ``modshift_valid = False`` (the ranking flags
it), not an error.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from astroflow.atomic import write_text
from astroflow.errors import ItemError
from astroflow.step import FanOut, Resources, StepParams
from astroflow.units import with_units
from steps.tec.modshift_figure import plot_modshift
from steps.tec.science.modshift import OUTPUT_KEYS, run_modshift
from steps.tec.science.modshift_verdict import modshift_verdict
from steps.tec.science.skyline import bad_cadence_mask
from steps.tec.science.trapezoid import trapezoid_fit
from steps.tec.vetted import skyline_times, tic_where, vetted_tces

RUNS = {"med": 1, "alt": 2}
VERDICT = [("primary_good", pa.bool_()), ("primary_reason", pa.int32()), ("secondary_good", pa.bool_()),
           ("secondary_reason", pa.int32()), ("override", pa.bool_()), ("override_reason", pa.int32()),
           ("albedo_p5", pa.float64()), ("albedo_p50", pa.float64())]
SCHEMA = with_units(pa.schema(
    [("tic", pa.int64()), ("planet_number", pa.int32()), ("n_points", pa.int32()),
     ("trp_success", pa.bool_()), ("trp_epoch", pa.float64()), ("trp_depth_ppm", pa.float64()),
     ("trp_duration_h", pa.float64()), ("trp_flat_ratio", pa.float64()),
     ("modshift_valid", pa.bool_()), ("half_period_retry", pa.bool_())]
    + [(k, pa.float64()) for k in OUTPUT_KEYS] + VERDICT + [("figure", pa.string())]
), {
    "tic": (None, "TESS Input Catalog id"), "planet_number": (None, "DV planet (TCE) number"),
    "trp_epoch": ("d", "trapezoid fit epoch, BTJD"), "trp_depth_ppm": ("ppm", "trapezoid fit depth"),
    "trp_duration_h": ("h", "trapezoid fit duration"), "trp_flat_ratio": ("", "flat bottom over total duration"),
    **{k: ("", "significance in units of the depth noise") for k in OUTPUT_KEYS if k.startswith("sigma_")},
    **{k: ("", "phase, in units of the period, in (-0.25, 0.75]") for k in OUTPUT_KEYS if k.startswith("phase_")},
    "sec_depth": ("", "secondary depth, relative flux"), "sec_depth_err": ("", "uncertainty of sec_depth"),
})


class ModshiftParams(StepParams):
    figures: bool = True          # the per-TCE model-shift figure (the report pages)
    write_inputs: bool = False    # also write tess_trpzdfit_*.txt (the original program's input)


def figure_name(tic: int, pn: int, which: str) -> str:
    return f"tess_{tic:016d}_{pn:02d}_med-modshift.pdf" if which == "med" else f"tess_{tic:016d}_{pn:02d}-modshift.pdf"


def _load(which: str):
    def load(ctx, items) -> dict:
        if which == "med":
            t = ctx.table("resample", columns=["tic", "planet_number", "time", "lc_detrend", "valid"],
                          where=tic_where(items))
            return {"lc": {(r["tic"], r["planet_number"]): r for r in t.to_pylist()}, "skyline": skyline_times(ctx)}
        t = ctx.table("ses_mes", columns=["tic", "planet_number", "time", "alt_detrend"], where=tic_where(items))
        return {"lc": {(r["tic"], r["planet_number"]): r for r in t.to_pylist()}}
    return load


def light_curve(which: str, row: dict, skyline=None) -> tuple[np.ndarray, np.ndarray]:
    """Valid (time, relative flux about 0) of one TCE for the chosen detrending."""
    time = np.asarray(row["time"], float)
    if which == "med":
        flux = np.asarray(row["lc_detrend"], float)
        ok = np.asarray(row["valid"], bool) & ~bad_cadence_mask(time, skyline)
    else:
        flux = np.asarray(row["alt_detrend"], float) - 1.0
        ok = np.ones(time.size, bool)
    ok &= np.isfinite(time) & np.isfinite(flux)
    return time[ok], flux[ok]


def _process(which: str):
    run_no = RUNS[which]

    def one_tce(ctx, item) -> dict:
        tic, pn = item["tic"], item["planet_number"]
        row = ctx.state["lc"].get((tic, pn))
        if row is None:
            src = "resample" if which == "med" else "ses_mes"
            raise ItemError(f"no {src} light curve for TIC {tic} planet {pn} (see the {src} step's errors)")
        time, flux = light_curve(which, row, ctx.state.get("skyline"))
        if time.size < 20:
            raise ItemError(f"only {time.size} valid points in the {which} light curve of TIC {tic} planet {pn}")
        period, epoch, dur_h = item["at_period"], item["at_epochbtjd"], item["at_dur"]
        rng = np.random.default_rng([ctx.settings.seed, tic, pn, run_no])
        fit = trapezoid_fit(time, flux, period, epoch, dur_h, item["at_depth"], rng)
        t0 = fit.epoch if fit.success else epoch
        res = run_modshift(time, flux, fit.model, period, t0)
        retry = not res.valid
        if retry:  # the original's "hail mary": half the period
            res = run_modshift(time, flux, fit.model, period / 2.0, t0)
        out = {"tic": tic, "planet_number": pn, "n_points": int(time.size), "trp_success": fit.success,
               "trp_epoch": fit.epoch, "trp_depth_ppm": fit.depth_ppm, "trp_duration_h": fit.duration_h,
               "trp_flat_ratio": fit.flat_ratio, "modshift_valid": bool(res.valid), "half_period_retry": retry,
               "figure": None}
        out.update(res.as_dict())
        if res.valid:
            dur_d = (fit.duration_h if fit.success else dur_h) / 24.0
            v = modshift_verdict(res, dur_d, period, item["at_rpdrstar"], item["at_rpdrstar_e"],
                                 item["at_adrstar"], rng)
            out.update(v.as_dict())
        else:
            out.update({k: None for k, _ in VERDICT})
        folder = ctx.settings.tce_dir(tic)
        if ctx.params.write_inputs:
            lines = [f"{a:f} {b:f} {c:f}" for a, b, c in zip(time, flux, fit.model)]
            write_text(ctx.product(folder / f"tess_trpzdfit_{tic:016d}_{pn:02d}_{run_no}.txt"), "\n".join(lines) + "\n")
        if ctx.params.figures:
            rel = folder / figure_name(tic, pn, which)
            plot_modshift(ctx.product(rel), time, flux, fit.model, period, t0, out, which, tic, pn)
            out["figure"] = str(rel)
        return out

    return one_tce


def _step(which: str, number: int, inputs: tuple[str, ...]) -> FanOut:
    return FanOut(
        f"modshift_{which}",
        inputs=inputs,
        items=lambda ctx: vetted_tces(ctx),
        setup=_load(which),
        process=_process(which),
        key=("tic", "planet_number"),
        params=ModshiftParams,
        schema=SCHEMA,
        shard_size=20,
        resources=Resources(cpu="1", memory="2Gi"),
        doc=f"Runbook step {number}, modshift_test.py {RUNS[which]}: trapezoid fit + model-shift on the "
            + ("DV median-detrended flux." if which == "med" else "TEC alternative detrending.") + "\n" + __doc__,
    )


modshift_med = _step("med", 12, ("gather", "flux_triage", "resample", "skyline"))
modshift_alt = _step("alt", 17, ("gather", "flux_triage", "ses_mes"))
