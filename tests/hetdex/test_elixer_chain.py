"""The runbook's steps 17-18 chained: ELiXer classifies the detections file the HETDEX demo wrote."""

from __future__ import annotations

import h5py
import numpy as np
import pyarrow.parquet as pq

from astroflow.cli import main as astroflow
from astroflow.rundir import read_dataset
from steps.hetdex import scoring


def test_elixer_classifies_the_demo_detections(demo, tmp_path):
    rc = astroflow(["elixer", "run", "--detections", str(demo["run"] / "release/detect_hdr5.h5"), "--out",
                    str(tmp_path), "--workers", "2", "--no-pdf", "--no-progress"])
    assert rc == 0
    with h5py.File(tmp_path / "elixer_cat.h5") as f:
        cat = {int(r["detectid"]): r for r in f["Detections"][:]}
    lines = pq.read_table(demo["data"] / "truth/lines.parquet").to_pylist()
    right, dz = [], []
    for d in read_dataset(demo["run"] / "detections").to_pylist():
        truth = [t for t in lines if scoring.sep_arcsec(d, t) < 2.5 and abs(d["wave"] - t["wave"]) < 5]
        if not truth:
            continue
        r, t = cat[d["detectid"]], truth[0]
        is_lae = r["plya_classification"] > 0.5
        right.append(is_lae == (t["kind"] == "lae"))
        if right[-1]:
            dz.append(abs(r["z_best"] - t["z"]))
    assert len(right) >= 20
    assert np.mean(right) >= 0.85, np.mean(right)  # LAE vs [OII] from our own reduced spectra
    assert np.median(dz) < 0.002
