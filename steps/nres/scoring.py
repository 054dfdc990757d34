"""NRES runs scored against the simulator's truth (``truth/*.parquet``): the acceptance figures.

Pure reading and comparison, shared by the tests and ``benchmarks/``: master bias read noise and
level against the CCD's, every trace against the true centre line (worst offset over the columns
the trace covers).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from astroflow.rundir import read_dataset
from steps.nres.products import read_traces


def _truth(truth: Path, name: str) -> list[dict]:
    return pq.read_table(Path(truth) / f"{name}.parquet").to_pylist()


def bias(run: Path, truth: Path) -> list[dict]:
    """Per master BIAS: read noise and level (e-) against the CCD's, as relative errors."""
    ccds = {(c["site"], c["camera"]): c for c in _truth(truth, "ccds")}
    out = []
    for r in read_dataset(Path(run) / "stack_bias").to_pylist():
        c = ccds[(r["site"], r["camera"])]
        level = (c["bias_level_adu"] - c["overscan_adu"]) * c["gain"]
        out.append({"site": r["site"], "day_obs": r["day_obs"],
                    "read_noise_error": r["read_noise"] / c["read_noise_e"] - 1,
                    "level_error_e": r["median"] - level, "level_e": level})
    return out


def traces(run: Path, truth: Path) -> list[dict]:
    """Per night: traces found and expected, and the worst and median offset (px) from the truth."""
    true = _truth(truth, "traces")
    out = []
    for r in read_dataset(Path(run) / "trace").to_pylist():
        found = read_traces(Path(run) / r["path"])
        y = found.y()
        tt = {(t["order"], t["fiber"]): np.asarray(t["y"]) for t in true
              if t["site"] == r["site"] and t["day_obs"] == r["day_obs"]}
        worst = []
        for i in range(len(found)):
            ty = tt.get((int(found.order[i]), int(found.fiber[i])))
            x0, x1 = found.x_min[i], found.x_max[i] + 1
            worst.append(np.inf if ty is None else float(np.nanmax(np.abs(y[i][x0:x1] - ty[x0:x1]))))
        out.append({"site": r["site"], "day_obs": r["day_obs"], "found": len(found), "expected": len(tt),
                    "max_offset_px": max(worst), "median_offset_px": float(np.median(worst))})
    return out


def wavelengths(run: Path, truth: Path) -> list[dict]:
    """Per night and fiber: the solution against the true lambda(x) of every order (rms, in A and
    m/s), and the line residuals it reports (SIGLAM)."""
    from steps.nres.wavelength import read_solutions

    true = _truth(truth, "wavelengths")
    out = []
    for r in read_dataset(Path(run) / "wavelength").to_pylist():
        sol = read_solutions(Path(run) / r["path"])[r["fiber"]]
        diffs, rel = [], []
        for t in true:
            if (t["site"], t["day_obs"], t["fiber"]) != (r["site"], r["day_obs"], r["fiber"]):
                continue
            lam = np.asarray(t["wavelength"])
            fit = sol(np.arange(lam.size), float(t["m"]))
            diffs.append(fit - lam)
            rel.append((fit - lam) / lam)
        d, v = np.concatenate(diffs), np.concatenate(rel) * 299792458.0
        out.append({"site": r["site"], "day_obs": r["day_obs"], "fiber": r["fiber"], "siglam": r["siglam"],
                    "rms_a": float(np.sqrt(np.mean(d ** 2))), "rms_m_s": float(np.sqrt(np.mean(v ** 2))),
                    "mean_m_s": float(np.mean(v)), "orders": len(diffs)})
    return out


def velocities(run: Path, truth: Path) -> list[dict]:
    """Per science frame: RV and BARYCORR against the truth (m/s), with the reported RVERR."""
    true = {t["filename"]: t for t in _truth(truth, "frames")}
    out = []
    for r in read_dataset(Path(run) / "rv").to_pylist():
        t = true[r["filename"]]
        out.append({"filename": r["filename"], "object": r["object"], "snr": t["snr"], "rv_error": r["rv"] - t["rv_m_s"],
                    "rv_err": r["rv_err"], "barycorr_error": r["barycorr"] - t["barycorr_m_s"]})
    return out
