"""The simulated day folder is in the real ELVIS format: the same reader reads it, its names,
header keys, EXP_LOG and HK layouts are those of the independent sample, the geometry is
described consistently (reduced by default, 4238 x 4172 with full_size)."""

from __future__ import annotations

import re

import numpy as np
from astropy.io import fits

from steps.vison import elvis
from steps.vison.simulate import FIRST_WAVE, SMALL, plan, simulate_day


def test_every_file_reads_with_the_reader(vison_day):
    day, truth = vison_day
    frames = truth.table("frames")
    assert len(frames) == 3 * (10 + 4 + 92 + 42 + 42)
    files = sorted(day.day_folder.glob("EUC_*.fits"))
    assert [f.name for f in files] == sorted(r["file"] for r in frames)
    for path in files[::7]:
        frame = elvis.read_frame(path)
        assert frame.geometry == SMALL and frame.data.shape == (168, 398) and frame.data.dtype == np.uint16
        assert frame.header["OBSID"] == frame.obsid and frame.header["EXTNAME"] == f"ROE1_CCD{frame.ccd}"
    log = elvis.read_explogs([day.day_folder])
    assert log.num_rows == len(frames)
    assert log["File_name"].to_pylist() == [r["file"][:-5] for r in sorted(frames, key=lambda r: (r["obsid"], r["ccd"]))]
    assert day.tests == {"BIAS01": (40000, 40009), "DARK01": (40010, 40013), "PTC01": (40014, 40105),
                         "CHINJ01": (40106, 40147), "TP01": (40148, 40189)}
    for path in sorted(day.day_folder.glob("HK_4*_ROE1.txt"))[::11]:
        stats = elvis.hk_stats(elvis.read_hk(path))
        obsid = int(path.name.split("_")[1])
        row = next(r for r in log.to_pylist() if r["ObsID"] == obsid)
        assert elvis.check_hk(stats, row) == []  # IG1 follows its command through CHINJ01
    assert len(list(day.day_folder.glob("HK_4*_ROE1.txt"))) == len(frames) // 3
    assert elvis.read_hk(day.day_folder / "HK_12-03-19_ROE1_01.txt").values.shape[1] == 82


def test_names_headers_and_text_layouts_match_the_sample(vison_day, sample):
    day, _ = vison_day
    ours = fits.open(next(day.day_folder.glob("EUC_40000_*_CCD1.fits")))
    theirs = fits.open(next(sample.glob("EUC_39000_*_CCD1.fits")))
    assert len(ours) == len(theirs) == 2 and ours[0].data is None
    assert ours[1].header["BZERO"] == 32768 and ours[1].header["BITPIX"] == 16
    assert set(ours[1].header) - {"CCDCOLS", "CCDROWS"} == set(theirs[1].header)
    assert [k for k in ours[1].header if k not in ("CCDCOLS", "CCDROWS")] == list(theirs[1].header)
    name = re.compile(r"^EUC_\d+_\d{6}D\d{6}T_ROE1_CCD[123]\.fits$")
    assert all(name.match(p.name) for p in day.day_folder.glob("EUC_*"))
    for pattern in ("EXP_LOG_*.txt", "HK_4*_ROE1.txt"):
        mine = next(day.day_folder.glob(pattern)).read_bytes()
        ref = next(sample.glob(pattern.replace("4*", "3*"))).read_bytes()
        assert mine.split(b"\r\n")[0] == ref.split(b"\r\n")[0]
        assert mine.endswith(b"\r\n") and b"\n" not in mine.replace(b"\r\n", b"")
    log = elvis.read_explog(next(day.day_folder.glob("EXP_LOG_*.txt")), "7.5.X").to_pylist()
    chinj = [r for r in log if r["test"] == "CHINJ01"]
    assert {r["chinj"] for r in chinj} == {1} and sorted({r["IG1_1_T"] for r in chinj})[:2] == [2.0, 2.25]
    assert {r["v_tp_mod"] for r in log if r["test"] == "TP01" and r["v_tpump"]} == {123, 234, 341, 412}
    assert {r["exptime"] for r in log if r["test"] == "DARK01"} == {565.0}


def test_structures_of_the_first_wave():
    sizes = {t: len(plan(t)) for t in FIRST_WAVE}
    assert sizes == {"BIAS01": 10, "BIAS02": 10, "DARK01": 4, "PTC01": 92, "PTC02WAVE": 48, "NL02": 21,
                     "FLAT01": 170, "CHINJ01": 42, "TP01": 42, "COSMETICS00": 10}
    assert {e.rdmode for e in plan("BIAS02")} == {"rwd_bas"}
    nl = plan("NL02")
    assert {e.source for e in nl if e.fluence_frac < 0.2} == {"nd"} and sum(e.fluence_frac == 0.5 for e in nl) == 5


def test_lost_and_saturated_values(vison_day):
    day, truth = vison_day
    top = [r for r in truth.table("frames") if r["test"] == "PTC01" and r["exptime"] == max(
        x["exptime"] for x in truth.table("frames") if x["test"] == "PTC01")]
    saturated = sum(int((elvis.read_frame(day.day_folder / r["file"]).data == elvis.SATURATED).sum()) for r in top)
    assert saturated > 0  # 120 % of the full well: the ADC saturates on low-gain quadrants
    bias = elvis.read_frame(next(day.day_folder.glob("EUC_40000_*_CCD1.fits")))
    assert bias.data.min() > elvis.LOST


def test_full_size_frames_are_4238_by_4172(tmp_path):
    day = simulate_day(tmp_path, full_size=True, tests=("BIAS01",), max_frames=1)
    frame = elvis.read_frame(next(day.day_folder.glob("EUC_*_CCD2.fits")))
    assert frame.data.shape == (4172, 4238)
    assert "CCDCOLS" not in frame.header and "CCDROWS" not in frame.header
    assert frame.geometry == elvis.Geometry(51, 2048, 20, 2066, 20)
    assert elvis.read_explogs([day.day_folder]).num_rows == 3


def test_explog_fields_are_printed_as_elvis_prints_them(vison_day, sample):
    day, _ = vison_day

    def fields(folder):
        header, first = next(folder.glob("EXP_LOG_*.txt")).read_text().split("\n")[:2]
        return dict(zip(header.rstrip("\r").split("\t"), first.rstrip("\r").split("\t")))

    ours, theirs = fields(day.day_folder), fields(sample)
    for column, value in theirs.items():
        decimals = len(value.split(".")[1]) if value.replace(".", "").lstrip("-").isdigit() and "." in value else None
        mine = ours[column]
        assert (len(mine.split(".")[1]) if decimals is not None else None) == decimals, (column, mine, value)
