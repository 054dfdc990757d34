"""Runbook "Stack the arc frames. This will also create a TRIPLE file", and the ThAr solution.

Per DAY-OBS and camera: the night's two DOUBLE masters (ThAr in fibers 0,1 and in 1,2; the
nearest good ones in the library) are extracted along the night's traces with the matching
profiles (Horne's optimal extraction) and combined into the TRIPLE: every fiber's arc spectrum,
fiber 1 from the first DOUBLE.  Lines are found and identified against the ThAr list the
simulator also draws from (``steps/nres/data/thar_lines.csv``, PypeIt's, vacuum), blind for the
reference fiber 1 (the echelle relation, no per-site first guess: the runbook's
``spectrographs.csv`` optics are not needed) and guided by fiber 1's solution for fibers 0 and 2;
each fiber gets a 2D solution lambda(x, m) with its quality figures (SIGLAM, RVPRECSN, NLINEDET,
NLINES).  The TRIPLE and the solutions are registered as calibrations (``trip/``, ``thar/``); the
science frames measure their drift against the TRIPLE's fiber 1.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pyarrow as pa
from astropy.io import fits
from astropy.table import Table

from astroflow.atomic import atomic_path
from astroflow.errors import ItemError
from astroflow.step import FanOut, Resources
from steps.nres.calibrations import reduced_path
from steps.nres.products import read_profile
from steps.nres.science.extract import optimal_extract, variance_image
from steps.nres.science.wavelength import WavelengthSolution, parse_line_list, solve
from steps.nres.trace import CAMERA_KEYS, STATES, night_time, nights

LINE_LIST = Path(__file__).parent / "data" / "thar_lines.csv"
SOURCE = {0: "110", 1: "110", 2: "011"}  # the DOUBLE each fiber's TRIPLE spectrum comes from

SCHEMA = pa.schema([
    ("site", pa.string()), ("instrument", pa.string()), ("camera", pa.string()), ("day_obs", pa.string()),
    ("filename", pa.string()), ("fiber", pa.int8()), ("n_lines", pa.int32()), ("n_detected", pa.int32()),
    ("siglam", pa.float64()), ("rv_precision", pa.float64()), ("rms", pa.float64()), ("m_min", pa.int32()),
    ("m_max", pa.int32()), ("path", pa.string()),
])


@cache
def line_list() -> tuple[np.ndarray, np.ndarray]:
    return parse_line_list(LINE_LIST.read_text())


def extract_arc(ctx, path: Path, profile_path: Path, read_noise: float) -> dict:
    image = fits.getdata(path).astype(np.float32)
    profile, _, _ = read_profile(profile_path)
    return optimal_extract(image, variance_image(image, read_noise), profile, read_noise=read_noise)


def triple(ctx, item) -> tuple[dict, list[Path]]:
    """Each fiber's arc spectra (flux, variance, order index per trace) from the two DOUBLEs."""
    attrs = {k: item[k] for k in CAMERA_KEYS}
    at = night_time(item["day_obs"])
    bias = ctx.calibration("BIAS", at, **attrs)
    read_noise = float(fits.getheader(bias).get("RDNOISE", 5.0))
    used, extracted = [], {}
    for state in STATES:
        arc = ctx.calibration("DOUBLE", at, **attrs, fiber_state=state)
        prof = ctx.calibration("PROFILE", at, **attrs, fiber_state=state)
        extracted[state] = extract_arc(ctx, arc, prof, read_noise)
        used.append(arc)
    fibers = {}
    for fiber, state in SOURCE.items():
        ex = extracted[state]
        rows = np.flatnonzero(ex["fiber"] == fiber)
        fibers[fiber] = {"flux": ex["flux"][rows], "variance": ex["variance"][rows], "order": ex["order"][rows]}
    return fibers, used


def solve_fibers(fibers: dict) -> dict[int, tuple]:
    """(solution, quality) per fiber: fiber 1 blind, fibers 0 and 2 guided by it."""
    wl, amp = line_list()
    out = {}
    ref = fibers[1]
    out[1] = solve(ref["flux"], ref["order"], wl, amp, variances=ref["variance"])
    for fiber in (0, 2):
        f = fibers[fiber]
        out[fiber] = solve(f["flux"], f["order"], wl, amp, variances=f["variance"], guess=out[1][0])
    return out


def write_solutions(path: Path, solutions: dict, header: fits.Header) -> None:
    hdus = [fits.PrimaryHDU(header=header)]
    for fiber, (sol, _, q) in sorted(solutions.items()):
        a = sol.to_arrays()
        h = fits.Header()
        for k, v in a.items():
            if k != "coeffs":
                h[k.upper()[:8]] = v
        for k in ("SIGLAM", "RVPRECSN", "NLINEDET", "NLINES"):
            h[k] = q[k]
        hdus.append(fits.ImageHDU(a["coeffs"], h, name=f"FIBER{fiber}"))
    with atomic_path(path) as tmp:
        fits.HDUList(hdus).writeto(tmp)


def read_solutions(path) -> dict[int, WavelengthSolution]:
    out = {}
    with fits.open(path) as h:
        for hdu in h[1:]:
            fiber = int(hdu.name.removeprefix("FIBER"))
            hd = hdu.header
            out[fiber] = WavelengthSolution.from_arrays({
                "coeffs": np.array(hdu.data), "nx": hd["NX"], "m_min": hd["M_MIN"], "m_max": hd["M_MAX"],
                "m0": hd["M0"], "s": hd["S"], "rms": hd["RMS"], "n_lines": hd["N_LINES"]})
    return out


def write_triple(path: Path, fibers: dict, header: fits.Header) -> None:
    hdus = [fits.PrimaryHDU(header=header)]
    for fiber, f in sorted(fibers.items()):
        hdus.append(fits.BinTableHDU(Table({"order": f["order"], "flux": f["flux"].astype(np.float32),
                                            "variance": f["variance"].astype(np.float32)}), name=f"FIBER{fiber}"))
    with atomic_path(path) as tmp:
        fits.HDUList(hdus).writeto(tmp)


def read_triple(path) -> dict:
    with fits.open(path) as h:
        return {int(hdu.name.removeprefix("FIBER")): {"order": np.array(hdu.data["order"]),
                                                    "flux": np.array(hdu.data["flux"], float),
                                                    "variance": np.array(hdu.data["variance"], float)}
                for hdu in h[1:]}


def wavelength_night(ctx, item) -> list[dict]:
    fibers, doubles = triple(ctx, item)
    try:
        solutions = solve_fibers(fibers)
    except (ValueError, RuntimeError) as exc:
        raise ItemError(f"no wavelength solution from {doubles[0].name} and {doubles[1].name}: {exc}; the previous "
                        "solution stays in use", path=doubles[0]) from None
    attrs = {k: item[k] for k in CAMERA_KEYS}
    at = night_time(item["day_obs"])
    head = fits.Header()
    head["DAY-OBS"] = item["day_obs"]
    ctx.stamp_fits(head)
    stem = f"{item['site']}{item['instrument']}_{item['camera']}"
    tpath = ctx.register_calibration("TRIPLE", reduced_path(item, "TRIPLE", f"{stem}_triple_{item['day_obs']}.fits"),
                                     at, attrs, frames=[p.name for p in doubles])
    write_triple(tpath, fibers, head)
    name = f"{stem}_wavelength_{item['day_obs']}.fits"
    wpath = ctx.register_calibration("WAVELENGTH", reduced_path(item, "WAVELENGTH", name), at, attrs,
                                     frames=[tpath.name])
    write_solutions(wpath, solutions, head)
    rows = []
    for fiber, (sol, _, q) in sorted(solutions.items()):
        ms = sol.m_of_index(fibers[fiber]["order"])
        rows.append({**{k: item[k] for k in ("site", "instrument", "camera", "day_obs")}, "filename": name,
                     "fiber": fiber, "n_lines": int(q["NLINES"]), "n_detected": int(q["NLINEDET"]),
                     "siglam": float(q["SIGLAM"]), "rv_precision": float(q["RVPRECSN"]), "rms": float(sol.rms),
                     "m_min": int(ms.min()), "m_max": int(ms.max()), "path": str(wpath.relative_to(ctx.run_dir))})
    return rows


wavelength = FanOut("wavelength", inputs=("index", "stack_arc", "profile", "trace"), items=nights,
                    process=wavelength_night, key=(*CAMERA_KEYS, "day_obs"), schema=SCHEMA, shard_size=1,
                    resources=Resources(cpu="1", memory="4Gi"), doc=__doc__)
