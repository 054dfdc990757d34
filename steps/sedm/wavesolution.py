"""Runbook, pre-science step 5 (second part): "Once all the calibration files are acquired a
geometry solution ... is generated": each spaxel's pixel-to-wavelength solution from the Hg, Cd
and Xe arcs (pysedm's ``{date}_WaveSolution``), and its check plot
``{date}_wavesolution_dispersionmap.png``.

One item per night.  Each lamp whose set is complete or partial (``Calib: Hg n of N``; at least
``lamp_minimum`` frames) is stacked from its ``b_`` frames: a median per pixel over the frames
whose LA-Cosmic mask leaves the pixel alone, so a cosmic ray (one frame) is rejected while an arc
line's peak, which LA-Cosmic flags in every frame, is kept (the ``crr_b_`` arcs have their line
peaks cut: measured on the simulated night, stacking them gives a median truth error of 1.1 A
instead of 0.40 A).  Each trace of the night's trace match (tonight's, else the library's
fallback) is extracted as a box of +-3 rows, and :func:`steps.sedm.science.wavesolution.solve`
identifies the lines blind, fits them per spaxel (Gaussians on a cubic continuum, the line list
``arc_lines``) and the degree-``wave_degree`` polynomial.  A night whose lines are too few, whose
median rms is over ``wave_rms_limit`` or whose good spaxels are fewer than ``wave_min_good`` of
the traces has no solution tonight: the row says ``failed`` with the ``GeometrySolutionFailed``
message, and ``fallback`` takes an earlier night's.

``{date}_WaveSolution.fits`` (instead of pysedm's pickle): primary header ``DATE-OBS`` (mean of
the arcs), ``WAVEDEG``, ``RMSLIM``, ``MEDRMS`` (A), ``NGOOD``, ``NTRACE``, ``TRACEMAT`` (the trace
match used), ``LINELIST``, ``IMCMBnnn`` (the arc frames); extension ``SOLUTION``, one row per trace: ``trace``,
``x_ref``, ``x_scale``, ``coeffs`` (``WAVEDEG + 1`` numpy.polynomial coefficients, increasing
powers, of ``t = (x - x_ref) / x_scale``, x the 0-based detector column, vacuum A), ``rms`` (A),
``n_lines``, ``n_rejected``, ``good``; extension ``LINES``, one row per fitted line: ``trace``,
``lamp``, ``wavelength`` (vacuum A), ``x``, ``residual`` (A), ``kept``.  Registered in the
calibration library as WAVESOLUTION by frame size.
"""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pyarrow as pa
from astropy.io import fits
from astropy.table import Table

from astroflow.calib import NoCalibration
from astroflow.errors import Skip
from astroflow.step import FanOut, Resources
from steps.sedm import sets
from steps.sedm.calibrations import TRACEMATCH, WAVESOLUTION, frame_attributes, look_up, observed
from steps.sedm.geometry import read_trace_match
from steps.sedm.plots import trace_map
from steps.sedm.science import ccd, spectra
from steps.sedm.science import wavesolution as ws
from steps.sedm.writer import guard, night_dir, write_fits

SCHEMA = pa.schema([
    ("product", pa.string()), ("status", pa.string()), ("message", pa.string()), ("n_traces", pa.int32()),
    ("n_good", pa.int32()), ("median_rms", pa.float64()), ("lamps", pa.list_(pa.string())),
    ("trace_match", pa.string()), ("path", pa.string()), ("plot", pa.string()),
])


def product_name(date: str) -> str:
    return f"{date}_WaveSolution"


def night_wavesolution(ctx) -> list[dict]:
    return [{"product": product_name(ctx.settings.date)}]


def lamp_frames(ctx) -> tuple[dict[str, list[dict]], list[str]]:
    """The debiased frames of each usable arc set, and the reason of each set left out."""
    used, left_out = {}, []
    for lamp in ws.LAMPS:
        frames = ctx.rows("night", where={"kind": lamp})
        st = sets.night_state(ctx, lamp, frames)
        if st.status == "too_few":
            left_out.append(st.message())
            continue
        cleaned = ctx.rows("debias_crr", where={"filename": [r["filename"] for r in frames]})
        if len(cleaned) < st.minimum:
            left_out.append(f"{lamp}: only {len(cleaned)} of {st.present} frames debiased, {st.minimum} needed")
            continue
        used[lamp] = sorted(cleaned, key=lambda r: r["mjd_obs"])
    return used, left_out


def stacked(ctx, rows: list[dict]) -> np.ndarray:
    """The median of the frames' ``b_`` images, each pixel over the frames its cosmic-ray mask
    leaves alone (:func:`steps.sedm.science.ccd.stack_lamp`)."""
    frames, masks = [], []
    for r in rows:
        frames.append(fits.getdata(ctx.run_dir / r["b_path"]))
        masks.append(fits.getdata(ctx.run_dir / r["crr_path"], "MASK"))
    return ccd.stack_lamp(frames, masks)


def solve_night(ctx, item: dict) -> dict:
    s = ctx.settings
    row = {"product": item["product"], "status": "failed", "message": "", "n_traces": 0, "n_good": 0,
           "median_rms": float("nan"), "lamps": [], "trace_match": "", "path": "", "plot": ""}
    for st in sets.waiting(ctx, sets.LAMP_SETS):  # the dome flats (the trace match) and the arcs
        raise Skip(st.message())
    used, left_out = lamp_frames(ctx)
    if not used:
        row["message"] = f"GeometrySolutionFailed: too few arc frames: {'; '.join(left_out)}"
        return row
    first = next(iter(used.values()))[0]
    shape = ctx.row("night", filename=first["filename"])
    at = datetime.fromtimestamp(float(np.mean([observed(r).timestamp() for rs in used.values() for r in rs])),
                                tz=timezone.utc)
    try:
        tm_path, _ = look_up(ctx, TRACEMATCH, at, s.fallback_nights, **frame_attributes(shape))
    except NoCalibration as exc:
        row["message"] = f"GeometrySolutionFailed: no trace match: {exc.reason.splitlines()[0]}"
        return row
    traces = read_trace_match(tm_path)
    columns = slice(shape["pscan_x1"], shape["oscan_x0"])
    arcs = {}
    for lamp, rows in used.items():
        starts, arcs[lamp] = spectra.extract(stacked(ctx, rows), traces, columns)
    groups = ws.read_line_list(ctx.uses(s.line_list()))
    n = len(traces)
    try:
        night = ws.solve(starts, arcs, groups, degree=s.wave_degree, min_lines=s.wave_min_lines,
                         rms_limit=s.wave_rms_limit, min_good=int(np.ceil(s.wave_min_good * n)))
    except ws.GeometrySolutionFailed as exc:
        row.update(message=f"GeometrySolutionFailed: {exc}" + (f" ({'; '.join(left_out)})" if left_out else ""),
                   n_traces=n, lamps=list(used), trace_match=tm_path.name)
        return row
    rms = night.rms
    rel = night_dir(s) / f"{item['product']}.fits"
    frames = [r["filename"] for rs in used.values() for r in rs]
    path = ctx.register_calibration(WAVESOLUTION, rel, at, frame_attributes(shape), frames=frames)
    head = fits.Header()
    head["OBJECT"] = "wavelength solution"
    head["DATE-OBS"] = at.strftime("%Y-%m-%dT%H:%M:%S")
    head["WAVEDEG"] = (s.wave_degree, "degree of the pixel-to-wavelength polynomial")
    head["WAVEUNIT"] = ("Angstrom", "vacuum")
    head["RMSLIM"] = (s.wave_rms_limit, "[A] a spaxel is good at or below")
    head["MEDRMS"] = (float(np.nanmedian(rms)), "[A] median per-spaxel rms")
    head["NGOOD"] = (int(night.good.sum()), "spaxels with a good solution")
    head["NTRACE"] = (n, "traces")
    head["TRACEMAT"] = (tm_path.name, "trace match used")
    head["LINELIST"] = (s.line_list().name, "arc line list")
    head["REFTRACE"] = (night.reference, "trace the lines were identified on")
    for k, f in enumerate(frames, 1):
        head[f"IMCMB{k:03d}"] = f
    ctx.stamp_fits(head)
    write_fits(path, s.raw_roots(), [fits.PrimaryHDU(header=head), *solution_hdus(night, s.wave_degree)])
    plot = night_dir(s) / f"{s.date}_wavesolution_dispersionmap.png"
    trace_map(guard(ctx.product(plot), s.raw_roots()), traces, rms, ~night.good, label="wavelength rms [A]",
              limits=(0.0, float(np.nanpercentile(rms, 98))),
              title=f"{s.date} wavelength solution: median rms {np.nanmedian(rms):.2f} A, "
                    f"{int(night.good.sum())}/{n} good")
    return {**row, "status": "complete" if not left_out else "partial", "message": "; ".join(left_out),
            "n_traces": n, "n_good": int(night.good.sum()), "median_rms": float(np.nanmedian(rms)),
            "lamps": list(used), "trace_match": tm_path.name, "path": str(rel), "plot": str(plot)}


def solution_hdus(night: ws.NightSolution, degree: int) -> list:
    n = len(night.solutions)
    coeffs = np.full((n, degree + 1), np.nan)
    cols = {k: np.full(n, np.nan) for k in ("x_ref", "x_scale", "rms")}
    n_lines, n_rej = np.zeros(n, np.int32), np.zeros(n, np.int32)
    lines = []
    for i, sol in enumerate(night.solutions):
        if sol is None:
            continue
        coeffs[i] = sol.coeffs
        cols["x_ref"][i], cols["x_scale"][i], cols["rms"][i] = sol.x_ref, sol.x_scale, sol.rms
        n_lines[i], n_rej[i] = sol.n_lines, sol.n_rejected
        lines += [(i, lamp, lam, x, res, kept) for lamp, lam, x, res, kept in sol.lines]
    solution = Table({"trace": np.arange(n, dtype=np.int32), **cols, "coeffs": coeffs, "n_lines": n_lines,
                      "n_rejected": n_rej, "good": night.good})
    names = ("trace", "lamp", "wavelength", "x", "residual", "kept")
    fitted = Table(rows=lines, names=names) if lines else \
        Table(names=names, dtype=(int, str, float, float, float, bool))
    hdus = [fits.table_to_hdu(solution), fits.table_to_hdu(fitted)]
    hdus[0].name, hdus[1].name = "SOLUTION", "LINES"
    return hdus


def read_wavesolution(path) -> dict:
    """A ``{date}_WaveSolution.fits``: ``coeffs`` (n, deg + 1), ``x_ref``, ``x_scale``, ``rms``,
    ``good`` arrays per trace, and the header."""
    with fits.open(path) as h:
        t = h["SOLUTION"].data
        return {"coeffs": np.array(t["coeffs"]), "x_ref": np.array(t["x_ref"]), "x_scale": np.array(t["x_scale"]),
                "rms": np.array(t["rms"]), "good": np.array(t["good"], bool), "header": h[0].header.copy()}


def wavelengths(sol: dict, trace: int, x) -> np.ndarray:
    """Vacuum A at detector columns ``x`` of ``trace`` under a read solution."""
    t = (np.asarray(x, float) - sol["x_ref"][trace]) / sol["x_scale"][trace]
    return np.polynomial.polynomial.polyval(t, sol["coeffs"][trace])


wavesolution = FanOut("wavesolution", inputs=("night", "debias_crr", "geometry"), items=night_wavesolution,
                      process=solve_night, key=("product",), schema=SCHEMA, shard_size=1,
                      resources=Resources(cpu="1", memory="3Gi"), doc=__doc__)
