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
