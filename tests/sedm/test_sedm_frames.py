"""What a SEDM frame is, read from its header; when a set is ready; the CCD kernels."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from steps.sedm import sets
from steps.sedm.frames import FrameFormatError, classify, parse_calib, scan_columns
from steps.sedm.science import ccd
from steps.sedm.settings import SedmSettings


def header(**cards) -> fits.Header:
    h = fits.Header()
    base = {"NAXIS1": 2048, "NAXIS2": 2048, "CAM_NAME": "IFU", "IMGTYPE": "bias", "OBJECT": "Calib: bias 3 of 10",
            "ADCSPEED": 2.0, "GAIN": 1.8, "EXPTIME": 0.0, "MJD_OBS": 60082.0, "DATE-OBS": "2023-05-18T00:10:00"}
    for k, v in {**base, **cards}.items():
        if v is not None:
            h[k] = v
    return h


@pytest.mark.parametrize("obj, expected", [
    ("Calib: bias 3 of 10", ("bias", 3, 10)),
    ("Calib: Hg 1 of 5", ("Hg", 1, 5)),
    ("calib: XE lamp 2 of 5", ("Xe", 2, 5)),
    ("Calib: dome flat 5 of 5", ("dome", 5, 5)),
    ("Calib: Cd", ("Cd", 0, 0)),
    ("ZTF23aaqkvxr", None),
    ("STD-BD+33d2642", None),
])
def test_the_object_as_the_observatory_writes_it(obj, expected):
    assert parse_calib(obj) == expected


def test_a_frame_beyond_its_announced_set_is_a_format_error():
    with pytest.raises(FrameFormatError, match="frame 6 of a set of 5"):
        parse_calib("Calib: Hg 6 of 5")


def test_classify_by_header_not_by_name():
    assert classify(header()).kind == "bias"
    lamp = classify(header(IMGTYPE="lamp", OBJECT="Calib: Cd 2 of 5", EXPTIME=120.0))
    assert (lamp.kind, lamp.set_index, lamp.set_size, lamp.adcspeed) == ("Cd", 2, 5, 2.0)
    assert classify(header(IMGTYPE="standard", OBJECT="STD-BD+33d2642", ADCSPEED=0.1)).kind == "standard"
    assert classify(header(IMGTYPE="science", OBJECT="ZTF23aaqkvxr", ADCSPEED=0.1)).kind == "science"
    assert classify(header(CAM_NAME="RC", IMGTYPE="guider", OBJECT="ZTF23aaqkvxr", ADCSPEED=None)).kind == "guider"
    with pytest.raises(FrameFormatError, match="IMGTYPE is 'lamp'"):
        classify(header(IMGTYPE="lamp", OBJECT="Calib: bias 1 of 10"))
    with pytest.raises(FrameFormatError, match="names no calibration set"):
        classify(header(IMGTYPE="lamp", OBJECT="arc"))
    with pytest.raises(FrameFormatError, match="no ADCSPEED"):
        classify(header(ADCSPEED=None))


def test_overscan_and_prescan_from_the_header():
    assert scan_columns(header(OSCANX0=2044, OSCANX1=2048)) == (2044, 2048, 0, 0)
    assert scan_columns(header()) == (2044, 2048, 0, 0)  # columns 2045-2048 of a 2048-wide frame
    assert scan_columns(header(NAXIS1=1100, OSCANX0=1080, OSCANX1=1100, PSCANX0=0, PSCANX1=20)) == (1080, 1100, 0, 20)
    with pytest.raises(FrameFormatError, match="no OSCANX0"):
        scan_columns(header(NAXIS1=1024))
    with pytest.raises(FrameFormatError, match="outside"):
        scan_columns(header(OSCANX0=2040, OSCANX1=2050))


def test_when_a_set_is_ready():
    s = SedmSettings(data_root="/raw", date="20240612")
    frames = [{"filename": f"f{i}", "set_size": 10} for i in range(7)]
    assert sets.state("bias_2.0", frames, s).status == "partial"
    assert sets.state("bias_2.0", frames[:4], s).status == "too_few"
    assert sets.state("bias_2.0", frames + [{"filename": f"g{i}", "set_size": 10} for i in range(3)], s).status \
        == "complete"
    unannounced = [{"filename": f"f{i}", "set_size": 0} for i in range(5)]
    assert sets.state("Hg", unannounced, s).status == "complete"  # the ideal count, 5
    assert sets.state("Hg", unannounced[:3], s).status == "partial"
    small = SedmSettings(data_root="/raw", date="20240612", bias_minimum=2, bias_ideal=3)
    assert sets.state("bias_0.1", frames[:2], small).status == "partial"
    with pytest.raises(ValueError, match="bias_minimum"):
        SedmSettings(data_root="/raw", date="20240612", bias_minimum=12)


def test_overscan_per_row_smoothed_and_the_gain():
    rng = np.random.default_rng(1)
    ny, nx = 300, 100
    ramp = 1000.0 + np.linspace(0, 20, ny)[:, None]
    raw = np.rint(ramp + rng.normal(0, 3, (ny, nx))).astype(np.uint16)
    e = ccd.debias(raw, nx - 4, nx, 1.8)
    assert abs(np.mean(e[:, :-4])) < 0.3 and abs(np.median(e[:50, :-4]) - np.median(e[-50:, :-4])) < 1.0


def test_stack_rejects_min_and_max_above_seven_frames():
    frames = [np.zeros((4, 4), np.float32) for _ in range(8)]
    frames[0][1, 1] = 1000.0  # a cosmic ray in one frame
    master, how = ccd.stack_bias(frames, 7)
    assert how == "minmax mean" and master[1, 1] == 0.0
    master, how = ccd.stack_bias(frames[:5], 7)
    assert how == "median" and master[1, 1] == 0.0
