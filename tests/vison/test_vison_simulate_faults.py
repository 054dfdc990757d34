"""Each fault appears as truth/faults lists it and gives the named error or the out-of-limit HK
the pipeline must flag; everything else stays the same; the same seed gives the same bytes; bad
requests fail."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from steps.vison import elvis
from steps.vison.simulate import FAULTS, WRONG_SERIAL, simulate_day


def _fault(truth, name):
    rows = [r for r in truth.table("faults") if r["fault"] == name]
    assert len(rows) == 1
    return rows[0]


def test_every_fault_is_listed_with_its_flag(vison_faults):
    _, truth = vison_faults
    rows = truth.table("faults")
    assert {r["fault"] for r in rows} == set(FAULTS)
    assert {r["fault"]: r["expected"] for r in rows} == {
        "missing_ccd": "MISSDATA", "corrupt_fits": "BADDATA", "explog_missing_rows": "MISSDATA",
        "hk_ool": "HK_OOL CCDTEMP_OOL", "wrong_serials": "WRONG_ROE_CONF", "lost_pixels": "LOSTPIXELS"}


def test_missing_ccd_and_missing_explog_rows(vison_faults):
    day, truth = vison_faults
    log = elvis.read_explogs([day.day_folder])
    listed = set(zip(log["ObsID"].to_pylist(), log["CCD"].to_pylist()))
    missing = _fault(truth, "missing_ccd")
    assert not (day.day_folder / missing["file"]).exists()
    assert (missing["obsids"][0], "CCD3") in listed
    rows = _fault(truth, "explog_missing_rows")
    assert len(rows["obsids"]) == 2
    for obsid in rows["obsids"]:
        assert len(list(day.day_folder.glob(f"EUC_{obsid}_*.fits"))) == 3
        assert not any(o == obsid for o, _ in listed)
    assert log.num_rows == 3 * 10 - 6


def test_corrupt_fits_raises_an_error_naming_the_file(vison_faults):
    day, truth = vison_faults
    bad = _fault(truth, "corrupt_fits")["file"]
    with pytest.raises(elvis.ElvisFormatError, match=bad.replace(".", r"\.") + ": not a complete FITS file"):
        elvis.read_frame(day.day_folder / bad)


def test_hk_out_of_limits(vison_faults):
    day, truth = vison_faults
    row = _fault(truth, "hk_ool")
    log = [r for r in elvis.read_explogs([day.day_folder]).to_pylist() if r["ObsID"] == row["obsids"][0]]
    bad = elvis.check_hk(elvis.hk_stats(elvis.read_hk(day.day_folder / row["file"])), log[0])
    assert {(v.key, v.ccd_temperature) for v in bad} == {("CCD2_TEMP_T", True), ("CCD1_OD_T", False)}
    assert [v.key for v in elvis.check_hk(elvis.hk_stats(elvis.read_hk(day.day_folder / row["file"])), log[0],
                                          limits="safe")] == []
    others = [p for p in day.day_folder.glob("HK_4*_ROE1.txt") if p.name != row["file"]]
    logs = {r["ObsID"]: r for r in elvis.read_explogs([day.day_folder]).to_pylist()}
    for p in others:
        obsid = int(p.name.split("_")[1])
        if obsid in logs:
            assert elvis.check_hk(elvis.hk_stats(elvis.read_hk(p)), logs[obsid]) == []


def test_wrong_serials_and_lost_pixels(vison_faults):
    day, truth = vison_faults
    true = {r["ccd"]: r["serial"] for r in truth.table("quadrants")}
    log = elvis.read_explogs([day.day_folder])
    assert set(log["sn_ccd2"].to_pylist()) == {WRONG_SERIAL} != {true[2]}
    assert set(log["sn_ccd1"].to_pylist()) == {true[1]}
    lost = elvis.read_frame(day.day_folder / _fault(truth, "lost_pixels")["file"])
    assert lost.header["SN_CCD2"] == WRONG_SERIAL
    assert (lost.region("E", "image")[:10, :10] == elvis.LOST).all()
    assert (lost.region("F", "image") > 0).all()


def test_other_frames_keep_their_pixels(vison_faults, vison_day):
    faulty, truth = vison_faults
    clean, _ = vison_day
    for row in truth.table("frames"):
        if row["written"] and row["fault"] in ("", "explog_missing_rows"):
            a = fits.getdata(faulty.day_folder / row["file"], 1)
            b = fits.getdata(clean.day_folder / row["file"], 1)
            assert np.array_equal(a, b), row["file"]


def test_same_seed_same_bytes_other_seed_other_frames(tmp_path, vison_day):
    clean, _ = vison_day
    a = simulate_day(tmp_path / "a", tests=("BIAS01",), max_frames=2)
    b = simulate_day(tmp_path / "b", tests=("BIAS01",), max_frames=2, seed=1)
    names = sorted(p.name for p in a.day_folder.iterdir())
    assert len(names) == 2 * 3 + 2 + 2  # frames, per-frame HK, EXP_LOG, day HK
    for name in names:
        if name.startswith(("EUC_", "HK_4")):
            assert (a.day_folder / name).read_bytes() == (clean.day_folder / name).read_bytes(), name
    for name in (n for n in names if n.startswith("EUC_")):
        assert (a.day_folder / name).read_bytes() != (b.day_folder / name).read_bytes()


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"faults": ("gremlins",)}, "unknown fault"),
    ({"tests": ("BIAS99",)}, "unknown test 'BIAS99'"),
    ({"tests": ()}, "no test to simulate"),
    ({"max_frames": 0}, "max_frames must be at least 1"),
    ({"tests": ("DARK01",), "faults": ("hk_ool",)}, "faults need at least 8 frames"),
])
def test_bad_requests(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        simulate_day(tmp_path, **kwargs)
