"""Runbook, pre-science step 5 (last part): "Once all the calibration files are acquired a
geometry solution and flat field is generated" (pysedm's ``{date}_Flat``), and its check plot
``{date}_flat3d.png``.

One item per night, once the dome set is complete or partial.  The dome flats' ``b_`` frames
are stacked (median; :func:`steps.sedm.science.ccd.stack_lamp`), each trace of the wavelength
solution's trace match is extracted (+-3 rows) and put on the cube's wavelength grid
(``grid_min``-``grid_max``, ``grid_bins`` wavelengths) as a flux density through its wavelength
solution (tonight's, else the library's fallback), and each spaxel's spectrum is divided by the
median spaxel's at every wavelength (:mod:`steps.sedm.science.flat`): the 3D flat.  A spaxel's
throughput is its median over ``flat_band``, mean 1.  With too few dome flats or no wavelength
solution the row says ``failed`` and ``fallback`` takes an earlier night's flat.

``{date}_Flat.fits``: primary image (n_traces rows x grid_bins columns, float32), the 3D flat,
with ``CTYPE1 = 'WAVE'``, ``CRVAL1``/``CDELT1``/``CRPIX1`` (vacuum A), ``WAVESOL`` and
``TRACEMAT`` (the solution and trace match it is on), ``FLATBAND``; extension ``THROUGHPUT``:
``trace``, ``throughput``, ``good`` (a good wavelength solution and a finite throughput).
Registered in the calibration library as FLAT by frame size.
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
from steps.sedm.calibrations import FLAT, WAVESOLUTION, frame_attributes, look_up, observed
from steps.sedm.geometry import read_trace_match
from steps.sedm.plots import trace_map
from steps.sedm.science import flat as flat_kernels
from steps.sedm.science import spectra
from steps.sedm.wavesolution import read_wavesolution, stacked, wavelengths
from steps.sedm.writer import guard, header_wavelengths, image_hdu, night_dir, write_fits

SCHEMA = pa.schema([
    ("product", pa.string()), ("status", pa.string()), ("message", pa.string()), ("n_traces", pa.int32()),
    ("n_good", pa.int32()), ("throughput_rms", pa.float64()), ("wavesolution", pa.string()), ("path", pa.string()),
    ("plot", pa.string()),
])


def product_name(date: str) -> str:
    return f"{date}_Flat"


def night_flat(ctx) -> list[dict]:
    return [{"product": product_name(ctx.settings.date)}]


def make_flat(ctx, item: dict) -> dict:
    s = ctx.settings
    row = {"product": item["product"], "status": "failed", "message": "", "n_traces": 0, "n_good": 0,
           "throughput_rms": float("nan"), "wavesolution": "", "path": "", "plot": ""}
    domes = ctx.rows("night", where={"kind": "dome"})
    for st in sets.waiting(ctx, sets.LAMP_SETS):
        raise Skip(st.message())
    st = sets.night_state(ctx, "dome", domes)
    cleaned = sorted(ctx.rows("debias_crr", where={"filename": [r["filename"] for r in domes]}),
                     key=lambda r: r["mjd_obs"]) if domes else []
    if st.status == "too_few" or len(cleaned) < st.minimum:
        row["message"] = f"TooFewFrames: {st.message()}: no flat tonight"
        return row
    shape = ctx.row("night", filename=cleaned[0]["filename"])
    at = datetime.fromtimestamp(float(np.mean([observed(r).timestamp() for r in cleaned])), tz=timezone.utc)
    try:
        wave_path, _ = look_up(ctx, WAVESOLUTION, at, s.fallback_nights, **frame_attributes(shape))
    except NoCalibration as exc:
        row["message"] = f"no wavelength solution: {exc.reason.splitlines()[0]}"
        return row
    sol = read_wavesolution(wave_path)
    traces = read_trace_match(wave_path.parent / sol["header"]["TRACEMAT"])
    starts, dome = spectra.extract(stacked(ctx, cleaned), traces, slice(shape["pscan_x1"], shape["oscan_x0"]))
    grid = s.grid()
    columns = np.arange(dome.shape[1])
    on_grid = np.array([flat_kernels.on_grid(starts[i] + columns, dome[i],
                                             lambda x, _i=i: wavelengths(sol, _i, x), grid)
                        for i in range(len(traces))])
    cube = flat_kernels.flat3d(on_grid)
    tp = flat_kernels.throughput(cube, grid, tuple(s.flat_band))
    good = sol["good"] & np.isfinite(tp)
    rel = night_dir(s) / f"{item['product']}.fits"
    path = ctx.register_calibration(FLAT, rel, at, frame_attributes(shape), frames=[r["filename"] for r in cleaned])
    head = fits.Header()
    head["OBJECT"] = "3D flat"
    head["DATE-OBS"] = at.strftime("%Y-%m-%dT%H:%M:%S")
    head["CTYPE1"], head["CUNIT1"] = "WAVE", "Angstrom"
    head["CRVAL1"], head["CRPIX1"] = float(grid[0]), 1.0
    head["CDELT1"] = (float(grid[1] - grid[0]), "vacuum A")
    head["WAVESOL"] = (wave_path.name, "wavelength solution used")
    head["TRACEMAT"] = (sol["header"]["TRACEMAT"], "trace match used")
    head["FLATBAND"] = (f"{s.flat_band[0]:g}-{s.flat_band[1]:g}", "[A] band of the throughput")
    for k, r in enumerate(cleaned, 1):
        head[f"IMCMB{k:03d}"] = r["filename"]
    ctx.stamp_fits(head)
    table = fits.table_to_hdu(Table({"trace": np.arange(len(traces), dtype=np.int32), "throughput": tp,
                                     "good": good}))
    table.name = "THROUGHPUT"
    write_fits(path, s.raw_roots(), [image_hdu(cube.astype(np.float32), head), table])
    plot = night_dir(s) / f"{s.date}_flat3d.png"
    trace_map(guard(ctx.product(plot), s.raw_roots()), traces, tp, ~good, label="relative throughput",
              title=f"{s.date} flat: throughput over {s.flat_band[0]:g}-{s.flat_band[1]:g} A, "
                    f"{int(good.sum())}/{good.size} good")
    return {**row, "status": st.status, "n_traces": len(traces), "n_good": int(good.sum()),
            "throughput_rms": float(np.nanstd(tp[good])), "wavesolution": wave_path.name, "path": str(rel),
            "plot": str(plot)}


def read_flat(path) -> dict:
    """A ``{date}_Flat.fits``: ``flat`` (n_traces, n_lambda), ``wavelength``, ``throughput``, ``good``."""
    with fits.open(path) as h:
        head = h[0].header
        cube = np.array(h[0].data, dtype=float)
        lam = header_wavelengths(head, cube.shape[1])
        t = h["THROUGHPUT"].data
        return {"flat": cube, "wavelength": lam, "throughput": np.array(t["throughput"]),
                "good": np.array(t["good"], bool), "header": head.copy()}


flat = FanOut("flat", inputs=("night", "debias_crr", "wavesolution"), items=night_flat, process=make_flat,
              key=("product",), schema=SCHEMA, shard_size=1, resources=Resources(cpu="1", memory="3Gi"), doc=__doc__)
