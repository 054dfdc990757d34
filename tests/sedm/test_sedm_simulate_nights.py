"""Two nights in one data root: a good night, then one whose arcs are too few (the fallback case)."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow.parquet as pq
from astropy.io import fits

from steps.sedm.simulate import simulate_night


def test_a_good_night_then_a_few_arcs_night(tmp_path):
    good = simulate_night(tmp_path, date="20240611", cases=())
    bad = simulate_night(tmp_path, date="20240612", cases=("few_arcs",))
    assert good["truth"] != bad["truth"] and good["standards"] == bad["standards"]
    for date, n in (("20240611", 5), ("20240612", 2)):
        arcs = Counter(fits.getval(p, "OBJECT").rsplit(" ", 3)[0] for p in (tmp_path / date).glob("ifu*.fits")
                       if fits.getval(p, "IMGTYPE") == "lamp")
        assert arcs == {"Calib: Hg": n, "Calib: Cd": n, "Calib: Xe": n}
    a, b = (pq.read_table(f"{s['truth']}/spaxels.parquet").to_pydict() for s in (good, bad))
    assert np.allclose(a["wave_coeffs"], b["wave_coeffs"]) and np.allclose(a["throughput"], b["throughput"])
    dx, dy = np.subtract(b["x0"], a["x0"]), np.subtract(b["y0"], a["y0"])
    assert np.ptp(dx) < 1e-9 and np.ptp(dy) < 1e-9 and 0 < np.hypot(dx[0], dy[0]) < 2.0
    frames = pq.read_table(f"{bad['truth']}/frames.parquet").to_pydict()
    assert "few_arcs" in pq.read_table(f"{bad['truth']}/night.parquet").to_pydict()["cases"][0]
    assert len(frames["filename"]) == len(set(frames["filename"]))
