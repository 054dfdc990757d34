"""The data model on the independent sample day folder (../shared/samples/vison-day/02_Mar_19,
written by a tool that is not astroflow, caught mid-acquisition: 5 of BIAS01's 10 ObsIDs)."""

from __future__ import annotations

import numpy as np

from steps.vison import elvis


def test_every_frame_reads_with_its_quadrants_and_regions(sample):
    paths = sorted(sample.glob("EUC_*.fits"))
    assert len(paths) == 15
    for path in paths:
        frame = elvis.read_frame(path)
        assert frame.data.dtype == np.uint16 and frame.data.shape == (640, 4238)
        assert frame.geometry == elvis.Geometry(51, 2048, 20, 320, 0)
        for q in elvis.QUADRANTS:
            assert frame.quadrant(q).shape == (320, 2119)
            assert frame.region(q, "prescan").shape == (320, 51)
            assert frame.region(q, "image").shape == (320, 2048)
            assert frame.region(q, "overscan").shape == (320, 20)
            assert frame.region(q, "pover").shape == (0, 2048)
    assert (frame.obsid, frame.ccd, frame.roe) == (39004, 3, 1)


def test_sample_bias_levels_are_plausible(sample):
    frame = elvis.read_frame(next(sample.glob("EUC_39000_*_CCD1.fits")))
    for q in elvis.QUADRANTS:
        pre, img = frame.region(q, "prescan").astype(float), frame.region(q, "image").astype(float)
        assert 500 < np.median(pre) < 5000
        assert abs(np.median(img) - np.median(pre)) < 10  # vison's image-minus-prescan limit
        assert 0.86 < pre.std() < 2.0


def test_explog_rows_by_name(sample):
    log = elvis.read_explogs([sample])
    assert log.num_rows == 15
    assert set(log["elvis"].to_pylist()) == {"7.5.X"}
    assert sorted(set(log["ObsID"].to_pylist())) == list(range(39000, 39005))
    assert log["CCD"].to_pylist()[:3] == ["CCD1", "CCD2", "CCD3"]
    assert set(log["test"].to_pylist()) == {"BIAS01"}
    assert set(log["exptime"].to_pylist()) == {0.0}
    assert log["sn_ccd2"][0].as_py() == "CCD273-14461-11-02"
    assert log["File_name"][0].as_py() == "EUC_39000_020319D090115T_ROE1_CCD1"
    assert elvis.parse_elvis_date(log["date"][0].as_py()).isoformat() == "2019-03-02T09:01:15"
    # the version given explicitly reads the same
    assert elvis.read_explog(next(sample.glob("EXP_LOG_*.txt")), "7.5.X").num_rows == 15


def test_hk_files_read_and_are_within_limits(sample):
    log = elvis.read_explogs([sample]).to_pylist()
    rows = {r["ObsID"]: r for r in log}
    files = sorted(sample.glob("HK_3900*_ROE1.txt"))
    assert len(files) == 5
    for path in files:
        series = elvis.read_hk(path)
        assert len(series.times) == 71 and series.values.shape == (71, 82)
        stats = elvis.hk_stats(series)
        assert set(stats["CCD1_TEMP_T"]) == {"mean", "std", "min", "max"}
        assert -121 < stats["CCD1_TEMP_T"]["mean"] < -119
        obsid = int(path.name.split("_")[1])
        assert elvis.check_hk(stats, rows[obsid]) == []
        assert elvis.check_hk(stats, rows[obsid], limits="safe") == []
    day = elvis.read_hk(sample / "HK_02-03-19_ROE1_01.txt")
    assert len(day.times) == 355 and day.times[0] < day.times[-1]
