"""The BIAS0X answers of a run against the simulator's truth (the issue's acceptance figures).

``ron_errors``: per CCD and quadrant, the relative error of the measured RON against the truth's
``ron_adu`` (read noise as the counts show it).  ``offset_errors``: per frame, CCD and quadrant,
the measured prescan offset minus the truth's offset at that frame's time (drift included).
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.dataset as ds
import pyarrow.parquet as pq

from steps.vison.elvis import QUADRANTS


def contract(run_dir: str | Path, session: str, test: str, dataset: str) -> list[dict]:
    """One of a Task's contract datasets (``RUN/<session>/<TEST>/<dataset>/``) as rows."""
    return ds.dataset(Path(run_dir) / session / test / dataset, format="parquet").to_table().to_pylist()


def ron_errors(run_dir, truth: str | Path, session: str = "D00", test: str = "BIAS01") -> list[dict]:
    quads = {(t["ccd"], t["quadrant"]): t for t in pq.read_table(Path(truth) / "quadrants.parquet").to_pylist()}
    out = []
    for r in contract(run_dir, session, test, "ron"):
        t = quads[r["ccd"], r["quadrant"]]
        out.append({"ccd": r["ccd"], "quadrant": r["quadrant"], "ron_adu": r["ron_adu"], "truth_adu": t["ron_adu"],
                    "relative_error": r["ron_adu"] / t["ron_adu"] - 1.0, "n_frames": r["n_frames"]})
    return out


def offset_errors(run_dir, truth: str | Path, session: str = "D00", test: str = "BIAS01") -> list[dict]:
    frames = {(f["obsid"], f["ccd"]): f for f in pq.read_table(Path(truth) / "frames.parquet").to_pylist()}
    out = []
    for r in contract(run_dir, session, test, "offsets"):
        if r["region"] != "prescan":
            continue
        t = frames[r["obsid"], r["ccd"]]["offsets_adu"][QUADRANTS.index(r["quadrant"])]
        out.append({"obsid": r["obsid"], "ccd": r["ccd"], "quadrant": r["quadrant"], "offset_adu": r["offset_adu"],
                    "truth_adu": t, "error_adu": r["offset_adu"] - t})
    return out
