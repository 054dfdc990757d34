"""The HETDEX reduction scored against the simulator's truth: the figures of the acceptance list.

Each function takes the simulated data folder (with its ``truth/``) and the run directory and
returns plain figures; the tests assert on them and ``benchmarks/hetdex_truth.py`` prints them.
Works for any number of IFUs and shots (lines and sources are matched within their own shot).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from astropy.io import fits
from scipy import ndimage

from astroflow.rundir import read_dataset


def _truth(data: Path, name: str) -> list[dict]:
    return pq.read_table(Path(data) / "truth" / name).to_pylist()


def truth_amps(data: Path) -> dict[tuple[str, str], dict]:
    return {(r["ifuslot"], r["amp"]): r for r in _truth(data, "amps.parquet")}


def sep_arcsec(a: dict, b: dict) -> float:
    return float(3600 * np.hypot((a["ra"] - b["ra"]) * np.cos(np.radians(b["dec"])), a["dec"] - b["dec"]))


def master_bias(data: Path, run: Path) -> dict:
    """Worst relative errors of bias level and read noise; traps injected, found, false, missed."""
    truth = truth_amps(data)
    rows = read_dataset(Path(run) / "master_bias").to_pylist()
    level = [abs(r["level"] / truth[(r["ifuslot"], r["amp"])]["bias_level"] - 1) for r in rows]
    rn = [abs(r["read_noise"] / truth[(r["ifuslot"], r["amp"])]["read_noise"] - 1) for r in rows]
    injected = found = false = 0
    for r in rows:
        want = [(t["column"], t["first_row"]) for t in truth[(r["ifuslot"], r["amp"])]["traps"]]
        got = [(t["column"], t["first_row"]) for t in r["traps"]]
        hit = [any(gc == c and abs(gy - y) <= 3 for gc, gy in got) for c, y in want]
        injected += len(want)
        found += sum(hit)
        false += sum(not any(gc == c and abs(gy - y) <= 3 for c, y in want) for gc, gy in got)
    return {"amps": len(rows), "amps_truth": len(truth), "level_err_max": max(level), "read_noise_err_max": max(rn),
            "traps_injected": injected, "traps_found": found, "traps_false": false,
            "rejected_frames": [r["n_rejected"] for r in rows]}


def wavelength(data: Path, run: Path) -> dict:
    """RMS of each amp's wavelength solution against the true one (A)."""
    truth = truth_amps(data)
    x = np.arange(1032) / 1032
    rms, flagged = [], 0
    for r in read_dataset(Path(run) / "twilight_cal").to_pylist():
        t = truth[(r["ifuslot"], r["amp"])]
        c = t["wave_c"]
        true = np.asarray(t["wave_c0"])[:, None] + c[0] * x + c[1] * x**2 + c[2] * x**3
        got = fits.getdata(Path(run) / r["path"], "WAVELENGTH")
        rms.append(float(np.sqrt(np.mean((got - true) ** 2))))
        flagged += bool(r["flagged"])
    return {"amps": len(rms), "rms_max": max(rms), "rms_median": float(np.median(rms)), "flagged": flagged}


def shots(data: Path, run: Path) -> list[dict]:
    """Per shot: astrometric offset errors ("), throughput ratio to the truth, FWHM error (")."""
    ast = {r["datevobs"]: r for r in read_dataset(Path(run) / "astrometry").to_pylist()}
    tp = {r["datevobs"]: r for r in read_dataset(Path(run) / "throughput").to_pylist()}
    out = []
    for s in json.loads((Path(data) / "truth/shots.json").read_text()):
        a, t = ast[s["datevobs"]], tp[s["datevobs"]]
        # the pipeline normalises the exposures to their mean transparency
        true_resp = s["response_4540"] * np.mean(s["transparency"])
        out.append({"datevobs": s["datevobs"], "dx_err": a["dx"] - s["dra"], "dy_err": a["dy"] - s["ddec"],
                    "throughput_ratio": t["response_4540"] / true_resp, "fwhm_err": t["fwhm"] - s["fwhm"]})
    return out


def detections(data: Path, run: Path, sn_min: float = 6.0, max_sep: float = 2.5, max_dw: float = 5.0) -> dict:
    """Completeness for injected lines with true S/N >= ``sn_min``, purity, wavelength errors (A)
    and flux ratios of matched detections (nearest injected line in the same shot)."""
    dets = read_dataset(Path(run) / "detections").to_pylist()
    lines = _truth(data, "lines.parquet")
    by_shot: dict[int, list[int]] = {}
    for k, t in enumerate(lines):
        by_shot.setdefault(t["shotid"], []).append(k)
    pairs = []
    for d in dets:
        best = None
        for k in by_shot.get(d["shotid"], []):
            sep = sep_arcsec(d, lines[k])
            if sep < max_sep and abs(d["wave"] - lines[k]["wave"]) < max_dw and (best is None or sep < best[1]):
                best = (k, sep)
        pairs.append(best[0] if best else None)
    matched = {k for k in pairs if k is not None}
    strong = [k for k, t in enumerate(lines) if t["sn_true"] >= sn_min]
    dw = np.array([d["wave"] - lines[k]["wave"] for d, k in zip(dets, pairs) if k is not None])
    dw_good = np.array([d["wave"] - lines[k]["wave"] for d, k in zip(dets, pairs) if k is not None and d["sn"] >= 15])
    pulls = np.array([(d["wave"] - lines[k]["wave"]) / d["wave_err"] for d, k in zip(dets, pairs)
                      if k is not None and d["wave_err"] > 0])
    flux = np.array([d["flux"] * 1e-17 / lines[k]["flux"] for d, k in zip(dets, pairs) if k is not None])
    return {"detections": len(dets), "injected_strong": len(strong),
            "completeness": sum(k in matched for k in strong) / max(len(strong), 1),
            "purity": sum(k is not None for k in pairs) / max(len(dets), 1),
            "dwave_abs_median": float(np.median(np.abs(dw))) if dw.size else np.nan,
            "dwave_within_0p5_sn15": float(np.mean(np.abs(dw_good) < 0.5)) if dw_good.size else np.nan,
            "dwave_within_3err": float(np.mean(np.abs(pulls) < 3)) if pulls.size else np.nan,
            "flux_ratio_median": float(np.median(flux)) if flux.size else np.nan}


def continuum(data: Path, run: Path) -> dict:
    """Stars and continuum galaxies found once each (within 0.5"), fragments within 3", and
    detections not within 1" of any real object (line emitters have host continuum too)."""
    found = read_dataset(Path(run) / "continuum").to_pylist()
    bright = _truth(data, "sources.parquet")
    hosts = _truth(data, "lines.parquet")
    once = fragments = spurious = 0
    for s in bright:
        mine = [f for f in found if f["shotid"] == s["shotid"]]
        once += sum(sep_arcsec(f, s) < 0.5 for f in mine) == 1
        fragments += max(sum(sep_arcsec(f, s) < 3.0 for f in mine) - 1, 0)
    for f in found:
        real = [s for s in bright + hosts if s["shotid"] == f["shotid"]]
        spurious += not real or min(sep_arcsec(f, s) for s in real) >= 1.0
    return {"injected": len(bright), "found_once": once, "fragments": fragments, "sources": len(found),
            "spurious": spurious}


def cosmics(data: Path, run: Path) -> dict:
    """Injected cosmic-ray events with a masked pixel, and the masked pixels that are not a hit
    or its neighbour (within 2 pixels)."""
    hits: dict[tuple, list[dict]] = {}
    for x in _truth(data, "cosmics.parquet"):
        hits.setdefault((x["datevobs"], x["expnum"], x["ifuslot"], x["amp"]), []).append(x)
    events = found = masked = stray = 0
    for r in read_dataset(Path(run) / "sci_reduce").to_pylist():
        mask = fits.getdata(Path(run) / r["path"], "COSMICS").astype(bool)
        mine = hits.get((r["datevobs"], r["expnum"], r["ifuslot"], r["amp"]), [])
        truth = np.zeros_like(mask)
        by_event: dict[int, list[dict]] = {}
        for x in mine:
            truth[x["y"], x["x"]] = True
            by_event.setdefault(x["event"], []).append(x)
        events += len(by_event)
        found += sum(any(mask[p["y"], p["x"]] for p in px) for px in by_event.values())
        near = ndimage.binary_dilation(truth, np.ones((3, 3), bool), iterations=2)
        masked += int(mask.sum())
        stray += int((mask & ~near).sum())
    return {"events": events, "found": found, "masked_pixels": masked, "stray_pixels": stray}


def residual_maps(run: Path) -> list[dict]:
    """Runbook 14_b-d summaries per amp (chi^2 ~1 means the error model matches the frames)."""
    return read_dataset(Path(run) / "pixel_residuals").to_pylist()


def all_figures(data: Path, run: Path) -> dict:
    return {"master_bias": master_bias(data, run), "wavelength": wavelength(data, run), "shots": shots(data, run),
            "detections": detections(data, run), "continuum": continuum(data, run), "cosmics": cosmics(data, run)}


def summary(f: dict) -> str:
    """One line of the figures of :func:`all_figures`."""
    b, w, d, c, cr = f["master_bias"], f["wavelength"], f["detections"], f["continuum"], f["cosmics"]
    tp = max(abs(s["throughput_ratio"] - 1) for s in f["shots"])
    return (f"bias {100 * b['level_err_max']:.2f}% rn {100 * b['read_noise_err_max']:.2f}% "
            f"traps {b['traps_found']}/{b['traps_injected']} false {b['traps_false']} | wave rms max {w['rms_max']:.3f} A | "
            f"lines S/N>=6 {d['injected_strong']}: completeness {100 * d['completeness']:.1f}% purity "
            f"{100 * d['purity']:.1f}% |dw| med {d['dwave_abs_median']:.2f} A, <0.5 A at S/N>=15 "
            f"{100 * d['dwave_within_0p5_sn15']:.0f}%, <3 err {100 * d['dwave_within_3err']:.0f}%, flux ratio "
            f"{d['flux_ratio_median']:.3f} | throughput err max "
            f"{100 * tp:.1f}% | continuum {c['found_once']}/{c['injected']} once, {c['fragments']} fragments, "
            f"{c['spurious']} spurious of {c['sources']} | cosmics {cr['found']}/{cr['events']}, "
            f"{cr['stray_pixels']} stray px of {cr['masked_pixels']}")
