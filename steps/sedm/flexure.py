"""Runbook, science step 2: "The sky lines are used to solve for the flexure offsets for the
observation" (pysedm's ``ccd_to_cube``: the trace j-flexure, then the i-flexure from the sodium
sky line and the telluric band, before the cube is built).

One item per standard or science frame once it is debiased (``debias_crr``).  The night's
geometry is the wavelength solution the calibration library gives for the frame (tonight's,
else the recorded fallback within ``fallback_nights``) and the trace match it was made on.

* Across dispersion (:func:`steps.sedm.science.flexure.across_shift`): the traces are moved by
  trial rows over ``across_search`` and the shift that makes them enclose the most light of the
  ``crr_b_`` frame (a band of +-``band_half_width`` rows about each centre line) is kept.
* Along dispersion (:func:`steps.sedm.science.flexure.line_shift`): every good spaxel's spectrum
  (a +-3-row box about its moved trace) near where the night's solution puts the Na D sky line
  (``na_wavelength``) and the O2 A band (``o2_wavelength``), stacked in pixel offsets, one
  pixel-integrated Gaussian fitted to each; the two pixel shifts averaged with weights
  ``na_weight`` : ``o2_weight`` (pysedm's 5 : 1).  A feature that is not detected (S/N < 5, or
  outside ``along_search``) is left out and the row says so; with neither the shift is 0 and the
  row's ``status`` is ``unmeasured``.

Deviations from pysedm, and why: pysedm measures the two features' wavelengths in a first cube,
then turns them into column shifts; here they are measured in CCD columns directly (no first
cube), which is the same quantity without a resampling.  The sodium reference is the mean of the
NIST vacuum wavelengths of Na D2 and D1 (5891.58, 5897.56 A: a self-absorbed streetlight's
doublet at equal strengths, seen as one line at SEDM's resolution); pysedm writes 5900 A (its
comment: SNIFS fits 5892.35 A).  The O2 reference is pysedm's 7630 A.  The traces move with
along-dispersion flexure too (a tilted trace moved ``dx`` columns is ``tilt * dx`` rows lower at
a given column), so the across-dispersion flexure is the measured row shift plus the median tilt
times the along shift.

Row: ``flexure_x`` (px, across dispersion: the traces' shift in rows, the issue's name),
``flexure_lambda`` (A: the along-dispersion shift times the median dispersion at the Na line, the
wavelength error at 5895 A the flexure would make if ignored), ``flexure_along_px`` (columns),
``trace_shift_px`` (the rows the traces move by at fixed column, what ``cube`` extracts with),
each feature's shift and error, the spaxels used, the solution and trace match.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa
from astropy.io import fits
from pydantic import Field

from astroflow.calib import NoCalibration
from astroflow.errors import ItemError
from astroflow.step import FanOut, Resources, StepParams
from steps.sedm.calibrations import WAVESOLUTION, frame_attributes, look_up, observed
from steps.sedm.geometry import read_trace_match
from steps.sedm.science import flexure as fx
from steps.sedm.science import spectra
from steps.sedm.wavesolution import read_wavesolution, wavelengths

SCHEMA = pa.schema([
    ("filename", pa.string()), ("object", pa.string()), ("kind", pa.string()), ("flexure_x", pa.float64()),
    ("flexure_lambda", pa.float64()), ("flexure_along_px", pa.float64()), ("trace_shift_px", pa.float64()),
    ("na_shift_px", pa.float64()), ("na_error_px", pa.float64()), ("o2_shift_px", pa.float64()),
    ("o2_error_px", pa.float64()), ("features", pa.string()), ("status", pa.string()), ("message", pa.string()),
    ("n_spaxels", pa.int32()), ("dispersion_na", pa.float64()), ("wavesolution", pa.string()),
    ("trace_match", pa.string()),
])
SKY_KINDS = ("standard", "science")
BOX_ROWS = 3  # the cube's and the flat's extraction box (rows on each side of the centre line)


class FlexureParams(StepParams):
    na_wavelength: float = Field(5894.57, gt=0, description="A (vacuum): the Na D sky line (mean of D2 and D1)")
    o2_wavelength: float = Field(7630.0, gt=0, description="A (vacuum): the O2 A telluric band (pysedm's)")
    na_weight: float = Field(5.0, ge=0, description="weight of the Na line's shift in the along-dispersion mean")
    o2_weight: float = Field(1.0, ge=0, description="weight of the O2 band's shift")
    across_search: tuple[float, float] = Field((-3.0, 3.0), description="rows: the range of trial trace shifts")
    across_step: float = Field(0.1, gt=0, description="rows between trial shifts (refined by a parabola)")
    band_half_width: float = Field(1.0, gt=0, description="rows each side of a trace line counted as in the trace")
    along_search: float = Field(3.0, gt=0, description="px: largest along-dispersion shift looked for")
    half_window: float = Field(5.0, gt=1, description="px each side of a feature fitted")


def sky_frames(ctx) -> list[dict]:
    rows = ctx.table("debias_crr", columns=["filename", "kind"]).to_pylist()
    return [{"filename": r["filename"]} for r in rows if r["kind"] in SKY_KINDS]


def night_geometry(ctx, row: dict) -> tuple[Path, dict, Path, list]:
    """The wavelength solution the library gives for the frame ``row`` (a night row), read, and
    the trace match it was made on."""
    try:
        path, _ = look_up(ctx, WAVESOLUTION, observed(row), ctx.settings.fallback_nights, **frame_attributes(row))
    except NoCalibration as exc:
        raise ItemError(f"no wavelength solution for the frame: {exc.reason.splitlines()[0]}") from None
    sol = read_wavesolution(path)
    tm = path.parent / sol["header"]["TRACEMAT"]
    return path, sol, tm, read_trace_match(tm)


def frame_spectra(image: np.ndarray, variance: np.ndarray, traces, shift: float, columns: slice):
    """Each trace's box spectrum (and its variance) with the traces moved ``shift`` rows."""
    moved = [replace(t, y_mid=t.y_mid + shift) for t in traces]
    starts, flux = spectra.extract(image, moved, columns, half_rows=BOX_ROWS)
    _, var = spectra.extract(variance, moved, columns, half_rows=BOX_ROWS)
    return starts, flux, var


def variance_image(image: np.ndarray, readnoise: float) -> np.ndarray:
    return np.clip(image, 0.0, None) + float(readnoise) ** 2


def predicted_columns(sol: dict, starts: np.ndarray, width: int, good: np.ndarray, lam: float) -> np.ndarray:
    out = np.full(len(starts), np.nan)
    for i in np.nonzero(good)[0]:
        cols = starts[i] + np.arange(width)
        out[i] = fx.column_of(lambda x, _i=i: wavelengths(sol, _i, x), cols, lam)
    return out


def measure(ctx, item: dict) -> dict:
    p: FlexureParams = ctx.params
    red = ctx.row("debias_crr", filename=item["filename"])
    row = ctx.row("night", filename=item["filename"])
    wave_path, sol, tm_path, traces = night_geometry(ctx, row)
    if len(traces) != len(sol["good"]):
        raise ItemError(f"{wave_path.name} has {len(sol['good'])} solutions for the {len(traces)} traces of "
                        f"{tm_path.name}", path=wave_path)
    crr = ctx.run_dir / red["crr_path"]
    image = fits.getdata(crr, 0).astype(np.float64)
    if image.shape != (row["ny"], row["nx"]):
        raise ItemError(f"the frame is {image.shape[1]} x {image.shape[0]}, the night row says {row['nx']} x "
                        f"{row['ny']}", path=crr)
    columns = slice(row["pscan_x1"], row["oscan_x0"])
    across = fx.across_shift(image, traces, tuple(p.across_search), p.across_step, p.band_half_width)
    messages = []
    shift = across.shift
    if across.at_edge:
        messages.append(f"the trace shift is at the end of the search range {tuple(p.across_search)}: not used")
        shift = 0.0
    starts, flux, var = frame_spectra(image, variance_image(image, red["readnoise_e"]), traces, shift, columns)
    good = sol["good"]
    width = flux.shape[1]
    found = []
    for lam, kind in ((p.na_wavelength, "emission"), (p.o2_wavelength, "absorption")):
        pred = predicted_columns(sol, starts, width, good, lam)
        found.append(fx.line_shift(starts, flux, var, pred, kind=kind, search=p.along_search,
                                   half_window=p.half_window))
    na, o2 = found
    along, used = fx.combine(found, [p.na_weight, p.o2_weight])
    names = [n for n, u in zip(("Na", "O2"), used) if u]
    for n, f in zip(("Na", "O2"), found):
        if not f.ok:
            messages.append(f"{n}: {f.message}")
    status = "measured" if all(used) and not across.at_edge else "partial" if names else "unmeasured"
    if not names:
        along = 0.0
    na_cols = predicted_columns(sol, starts, width, good, p.na_wavelength)
    disp = [float(wavelengths(sol, i, c + 0.5) - wavelengths(sol, i, c - 0.5))
            for i, c in enumerate(na_cols) if np.isfinite(c)]
    dispersion = float(np.median(disp)) if disp else float("nan")
    tilt = float(np.median([t.tilt for t in traces]))
    return {"filename": row["filename"], "object": row["object"], "kind": row["kind"],
            "flexure_x": shift + tilt * along, "flexure_lambda": along * dispersion, "flexure_along_px": along,
            "trace_shift_px": shift, "na_shift_px": na.shift, "na_error_px": na.error, "o2_shift_px": o2.shift,
            "o2_error_px": o2.error, "features": "+".join(names), "status": status, "message": "; ".join(messages),
            "n_spaxels": int(max(na.n_spaxels, o2.n_spaxels)), "dispersion_na": dispersion,
            "wavesolution": wave_path.name, "trace_match": tm_path.name}


flexure = FanOut("flexure", inputs=("night", "debias_crr", "wavesolution", "fallback"), items=sky_frames,
                 process=measure, key=("filename",), params=FlexureParams, schema=SCHEMA, shard_size=4,
                 resources=Resources(cpu="1", memory="2Gi"), doc=__doc__)
