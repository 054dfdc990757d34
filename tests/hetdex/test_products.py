"""The output contract: the detections Parquet dataset and the H5 release files' layouts."""

from __future__ import annotations

import h5py
import numpy as np
import pyarrow.dataset as ds

from steps.hetdex.rawdata import tar_members
from steps.hetdex.science.instrument import RECT_WAVE, SKY_LINES


def test_detections_dataset_columns(demo):
    t = ds.dataset(str(demo["run"] / "detections"), format="parquet").to_table()
    want = {"detectid": "int64", "shotid": "int64", "ra": "double", "dec": "double", "wave": "double", "flux": "double",
            "flux_err": "double", "sn": "double", "linewidth": "double", "continuum": "double"}
    for name, typ in want.items():
        assert str(t.schema.field(name).type) == typ
    ids = t.column("detectid").to_pylist()
    assert len(set(ids)) == len(ids) and min(ids) > 5_000_000_000


def test_release_files(demo):
    rel = demo["run"] / "release"
    shot = demo["settings"]["shots"][0]
    with h5py.File(rel / "shots" / f"{shot}.h5", "r") as h:
        fib, idx = h["Data/Fibers"], h["Data/FiberIndex"]
        assert fib.dtype["multiframe"].kind == "S" and fib.dtype["fiber_id"] == np.dtype("S38")
        assert fib.dtype["calfib_ffsky"].shape == (1036,) and fib.dtype["spectrum"].shape == (1032,)
        assert np.array_equal(fib["fiber_id"], idx["fiber_id"])
        assert h["Data/Images"].dtype["clean_image"].shape == (1032, 1032)
        assert h["Shot"].shape == (1,) and h["Shot"]["shotid"][0] == int(shot.replace("v", ""))
        assert "StarCatalog" in h["Astrometry"] and "throughput" in h["Calibration/Throughput"]
        assert sorted(h["FullSkyModel"]) == ["exp01", "exp02", "exp03"]
        for sky in h["FullSkyModel"].values():
            wave, counts = sky[:, 0], sky[:, 1]
            assert np.array_equal(wave, RECT_WAVE) and np.all(np.isfinite(counts))
            # the sky lines sit where the simulator put them
            for line in SKY_LINES:
                win = np.abs(wave - line) < 12
                assert abs(wave[win][np.argmax(counts[win])] - line) <= 2.0, line
    with h5py.File(rel / "survey_hdr5.h5", "r") as h:
        assert h["Survey"]["field"].dtype.kind == "S"
    with h5py.File(rel / "fiber_index_hdr5.h5", "r") as h:
        assert h["FiberIndex"]["healpix"].min() > 0
    lines = (rel / "flim4600_averages.txt").read_text().splitlines()
    assert lines[0] == "shotid f1sigma_biweight" and len(lines) == 2
    for name in ("detect_hdr5.h5", "continuum_sources.h5"):
        with h5py.File(rel / name, "r") as h:
            assert {"Detections", "Spectra", "Fibers"} <= set(h)
            assert h["Spectra"].dtype["spec1d"].shape == (1036,)
    with h5py.File(rel / "merged_im2D.h5", "r") as h:
        assert h["im2D"].shape[1:] == (9, 201)


def test_corrupt_tar_is_an_item_error_naming_the_file(tmp_path):
    import pytest

    from astroflow.errors import ItemError

    bad = tmp_path / "20240103" / "virus" / "virus0000099_exp01.tar"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"not a tar" * 100)
    with pytest.raises(ItemError) as err:
        tar_members(bad)
    assert str(bad) in str(err.value)
