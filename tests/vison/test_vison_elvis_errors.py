"""Bad ELVIS input raises ElvisFormatError naming the file and the problem; files being written
(an unfinished last line) are read up to it; EXP_LOGs of several versions and folders merge."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from astropy.io import fits

from steps.vison import elvis
from steps.vison.elvis import ElvisFormatError

NAME = "EUC_41000_120319D090000T_ROE1_CCD1.fits"


def _write_frame(path, data, **keys):
    header = fits.Header()
    for k, v in keys.items():
        header[k] = v
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(data, header=header, name="ROE1_CCD1")]).writeto(path)
    return path


def test_canonical_orientation_puts_each_readout_node_at_0_0(tmp_path):
    geom = elvis.Geometry(51, 128, 20, 64, 20)
    data = np.full(geom.shape, 1000, dtype=np.uint16)
    data[0, 0], data[-1, 0], data[-1, -1], data[0, -1] = 1, 2, 3, 4  # H, E, F, G corners as DS9 shows them
    frame = elvis.read_frame(_write_frame(tmp_path / NAME, data, CCDCOLS=128, CCDROWS=64))
    assert frame.geometry == geom
    assert [int(frame.quadrant(q)[0, 0]) for q in "HEFG"] == [1, 2, 3, 4]
    assert frame.region("E", "pover").shape == (20, 128)


def test_flight_model_overscan_and_full_frame_geometry():
    full = elvis.geometry_from_header(fits.Header({"NAXIS1": 4238, "NAXIS2": 4172}), "x.fits")
    assert full == elvis.Geometry(51, 2048, 20, 2066, 20) and full.shape == (4172, 4238)
    fm = elvis.geometry_from_header(fits.Header({"NAXIS1": 4256, "NAXIS2": 4172}), "x.fits")
    assert fm.overscan == 29
    windowed = elvis.geometry_from_header(fits.Header({"NAXIS1": 4238, "NAXIS2": 172, "VSTART": 2000}), "x.fits")
    assert (windowed.image_rows, windowed.pover) == (66, 20)
    with pytest.raises(ElvisFormatError, match="34 rows per quadrant beyond the image"):
        elvis.geometry_from_header(fits.Header({"NAXIS1": 4238, "NAXIS2": 200, "VSTART": 2000}), "x.fits")
    with pytest.raises(ElvisFormatError, match="does not split into four quadrants"):
        elvis.geometry_from_header(fits.Header({"NAXIS1": 4239, "NAXIS2": 172}), "x.fits")


def test_truncated_corrupt_and_misshapen_frames(tmp_path):
    data = np.zeros((168, 398), dtype=np.uint16)
    good = _write_frame(tmp_path / NAME, data, CCDCOLS=128, CCDROWS=64)
    cut = tmp_path / NAME.replace("41000", "41001")
    cut.write_bytes(good.read_bytes()[:5000])
    with pytest.raises(ElvisFormatError, match=r"EUC_41001.*not a complete FITS"):
        elvis.read_frame(cut)
    junk = tmp_path / NAME.replace("41000", "41002")
    junk.write_bytes(b"this is not FITS" * 400)
    with pytest.raises(ElvisFormatError, match=r"EUC_41002.*not a complete FITS"):
        elvis.read_frame(junk)
    wide = _write_frame(tmp_path / NAME.replace("41000", "41003"), np.zeros((168, 400), dtype=np.uint16))
    with pytest.raises(ElvisFormatError, match=r"EUC_41003.*NAXIS1 = 400"):
        elvis.read_frame(wide)
    empty = tmp_path / NAME.replace("41000", "41004")
    fits.PrimaryHDU().writeto(empty)
    with pytest.raises(ElvisFormatError, match=r"EUC_41004.*no HDU holds an image"):
        elvis.read_frame(empty)
    signed = _write_frame(tmp_path / NAME.replace("41000", "41005"), np.full((168, 398), -5, dtype=np.int16),
                          CCDCOLS=128, CCDROWS=64)
    with pytest.raises(ElvisFormatError, match=r"EUC_41005.*int16, not unsigned 16-bit"):
        elvis.read_frame(signed)
    with pytest.raises(ElvisFormatError, match="name is not EUC_"):
        elvis.read_frame(tmp_path / "frame.fits")


def _log_text(sample):
    return next(sample.glob("EXP_LOG_*.txt")).read_bytes()


def test_unfinished_last_line_is_left_out_and_bad_lines_raise(sample, tmp_path):
    text = _log_text(sample)
    growing = tmp_path / "EXP_LOG_020319.txt"
    growing.write_bytes(text + b"39005\tEUC_39005_020319D090730T_ROE1_CCD1\tCCD1\tROE1")
    assert elvis.read_explog(growing).num_rows == 15
    broken = tmp_path / "EXP_LOG_bad.txt"
    lines = text.split(b"\r\n")
    broken.write_bytes(b"\r\n".join(lines[:3] + [b"39001\tshort"] + lines[3:]))
    with pytest.raises(ElvisFormatError, match=r"EXP_LOG_bad.txt: line 4 has 2 fields"):
        elvis.read_explog(broken)
    typed = tmp_path / "EXP_LOG_typed.txt"
    typed.write_bytes(text.replace(b"\t0.000\t0.000\t0.000\t", b"\tzero\t0.000\t0.000\t", 1))
    with pytest.raises(ElvisFormatError, match=r"line 2, column exptime: 'zero' is not float"):
        elvis.read_explog(typed)
    renamed = tmp_path / "EXP_LOG_hdr.txt"
    renamed.write_bytes(text.replace(b"exptime", b"exposure", 1))
    with pytest.raises(ElvisFormatError, match="matches no ELVIS version"):
        elvis.read_explog(renamed)
    with pytest.raises(ElvisFormatError, match=r"missing \['exptime'\], unexpected \['exposure'\]"):
        elvis.read_explog(renamed, "7.5.X")


def test_explogs_merge_across_folders_and_versions(sample, tmp_path):
    old = tmp_path / "01_Mar_19"
    old.mkdir()
    header, *rows = _log_text(sample).decode().split("\r\n")
    old_header = header.replace("cdpu_clk", "spw_clk").replace("v_tp_mod", "v_tpmod").replace(
        "s_tp_mod", "s_tpmod").replace("\tmotr\t", "\tmotr_on\t")
    shifted = [r.replace("39", "38", 1) for r in rows if r]
    (old / "EXP_LOG_010319.txt").write_text("\r\n".join([old_header, *shifted]) + "\r\n")
    merged = elvis.read_explogs([sample, old])
    assert merged.num_rows == 30
    assert merged["ObsID"].to_pylist()[0] == 38000
    assert set(merged["elvis"].to_pylist()) == {"6.3.0", "7.5.X"}
    assert "spw_clk" not in merged.column_names and merged["v_tp_mod"].null_count == 0
    twin = tmp_path / "02_Mar_19_copy"
    shutil.copytree(sample, twin)
    with pytest.raises(ElvisFormatError, match="ObsID 39000 CCD1 is listed twice"):
        elvis.read_explogs([sample, twin])
    with pytest.raises(ElvisFormatError, match="day folder does not exist"):
        elvis.read_explogs([tmp_path / "nowhere"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(ElvisFormatError, match="no EXP_LOG"):
        elvis.read_explogs([tmp_path / "empty"])


def test_bad_hk_files(sample, tmp_path):
    text = next(sample.glob("HK_39000_*.txt")).read_text()
    header, first, *rest = text.split("\n")
    missing = tmp_path / "HK_missing.txt"
    missing.write_text(text.replace("CCD1_TEMP_T", "CCD1_TEMP_X", 1))
    with pytest.raises(ElvisFormatError, match=r"HK_missing.txt: HK keys of ELVIS 7.5.X missing: \['CCD1_TEMP_T'\]"):
        elvis.read_hk(missing)
    cells = first.split("\t")
    cells[3] = "n/a"
    word = tmp_path / "HK_word.txt"
    word.write_text("\n".join([header, "\t".join(cells), *rest]))
    with pytest.raises(ElvisFormatError, match=r"HK_word.txt: line 2, key CCD1_OD_T: not a number"):
        elvis.read_hk(word)
    stamp = tmp_path / "HK_stamp.txt"
    stamp.write_text("\n".join([header, first.replace("02-03-19_", "2019-03-02 ", 1), *rest]))
    with pytest.raises(ElvisFormatError, match="TimeStamp"):
        elvis.read_hk(stamp)
    empty = tmp_path / "HK_empty.txt"
    empty.write_text(header + "\n")
    with pytest.raises(ElvisFormatError, match="no HK readings"):
        elvis.hk_stats(elvis.read_hk(empty))


def test_hk_limit_kinds(sample):
    stats = elvis.hk_stats(elvis.read_hk(next(sample.glob("HK_39000_*.txt"))))
    row = elvis.read_explogs([sample]).to_pylist()[0]
    hot = {k: dict(v) for k, v in stats.items()}
    hot["CCD2_TEMP_B"]["max"] = -118.0  # absolute: performance [-121, -119], safe [-133, 35]
    hot["CCD1_OD_T"]["max"] = 26.4  # relative: commanded 26 V + [-0.2, 0.2]
    hot["SPW_STATUS_REG"]["min"] = 0.0  # identity: 12192
    found = {v.key: v for v in elvis.check_hk(hot, row)}
    assert set(found) == {"CCD2_TEMP_B", "CCD1_OD_T", "SPW_STATUS_REG"}
    assert found["CCD2_TEMP_B"].ccd_temperature and not found["CCD1_OD_T"].ccd_temperature
    assert found["CCD1_OD_T"].commanded == 26.0 and found["CCD1_OD_T"].high == pytest.approx(26.2)
    assert "commanded 26" in str(found["CCD1_OD_T"]) and "not 12192" in str(found["SPW_STATUS_REG"])
    assert {v.key for v in elvis.check_hk(hot, row, limits="safe")} == {"SPW_STATUS_REG"}
    with pytest.raises(ValueError, match="unknown HK limit set"):
        elvis.check_hk(stats, row, limits="typical")
