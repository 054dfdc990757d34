"""The simulated SEDM frames are written as the observatory writes them; the independent sample
night (../shared/samples/sedm-night) is the reference, read with the same reader as ours."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from steps.sedm import simulate_detector as det
from steps.sedm import simulate_optics as opt

SAMPLE = Path(__file__).resolve().parents[3] / "shared" / "samples" / "sedm-night"
SAMPLE_NIGHT = SAMPLE / "20230518"
NAME = re.compile(r"^ifu(?P<date>\d{8})_(?P<h>\d{2})_(?P<m>\d{2})_(?P<s>\d{2})\.fits$")
OBJECT = re.compile(r"^(Calib: (bias|dome|Hg|Cd|Xe) (?P<i>\d+) of (?P<n>\d+)|STD-BD\+33d2642|ZTF\d{2}[a-z]{7})$")
RA = re.compile(r"^\d{2}:\d{2}:\d{2}\.\d{2}$")
DEC = re.compile(r"^[+-]\d{2}:\d{2}:\d{2}\.\d$")
STRUCTURE = {"SIMPLE", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "EXTEND", "BSCALE", "BZERO"}

needs_sample = pytest.mark.skipif(not SAMPLE_NIGHT.is_dir(), reason="the independent SEDM sample night is absent")


def by_imgtype(folder: Path) -> dict[str, Path]:
    out = {}
    for p in sorted(folder.glob("ifu*.fits")):
        out.setdefault(fits.getval(p, "IMGTYPE").strip(), p)
    return out


@needs_sample
def test_same_keywords_types_and_storage_as_the_sample(sedm_sim):
    ours, theirs = by_imgtype(sedm_sim.night), by_imgtype(SAMPLE_NIGHT)
    assert set(ours) == set(theirs) == {"bias", "dome", "lamp", "standard", "science"}
    for imgtype, sample_path in theirs.items():
        with fits.open(sample_path) as s, fits.open(ours[imgtype]) as o:
            assert len(s) == len(o) == 1
            hs, ho = s[0].header, o[0].header
            assert set(hs) - STRUCTURE == set(ho) - STRUCTURE, imgtype
            for key in set(hs) - STRUCTURE:
                assert type(hs[key]) is type(ho[key]), (imgtype, key, hs[key], ho[key])
            for key in ("BITPIX", "NAXIS", "BZERO", "BSCALE"):
                assert hs[key] == ho[key], key
            assert s[0].data.dtype == o[0].data.dtype == np.uint16
            for h in (hs, ho):  # the overscan is the last columns, as the keys say
                assert h["OSCANX1"] == h["NAXIS1"] and h["OSCANX1"] - h["OSCANX0"] == det.N_OVERSCAN
                assert h["GAIN"] == 1.8


@needs_sample
def test_value_formats_match_the_sample(sedm_sim):
    for folder in (SAMPLE_NIGHT, sedm_sim.night):
        for p in sorted(folder.glob("ifu*.fits")):
            h = fits.getheader(p)
            m = NAME.match(p.name)
            assert m and h["FILENAME"] == p.name
            assert h["DATE-OBS"] == f"{m['date'][:4]}-{m['date'][4:6]}-{m['date'][6:]}T{m['h']}:{m['m']}:{m['s']}"
            assert abs(h["JD"] - 2400000.5 - h["MJD_OBS"]) < 1e-6
            assert OBJECT.match(h["OBJECT"]), h["OBJECT"]
            assert h["DOMEST"] == ("OPEN" if h["IMGTYPE"] in ("standard", "science") else "CLOSED")
            assert h["ADCSPEED"] in (2.0, 0.1)
            if h["IMGTYPE"] in ("standard", "science"):
                for key, pattern in (("RA", RA), ("OBJRA", RA), ("DEC", DEC), ("OBJDEC", DEC)):
                    assert pattern.match(h[key]), (key, h[key])
                assert h["AIRMASS"] == round(h["AIRMASS"], 2) and 1.0 <= h["AIRMASS"] < 3.0
                assert h["ADCSPEED"] == 0.1
            elif h["IMGTYPE"] != "bias":
                assert h["ADCSPEED"] == 2.0


def test_the_sets_as_the_observatory_announces_them(sedm_sim):
    counts = Counter()
    for p in sorted(sedm_sim.night.glob("ifu*.fits")):
        h = fits.getheader(p)
        m = OBJECT.match(h["OBJECT"])
        if m["n"]:
            word = h["OBJECT"].split()[1]
            counts[word, h["ADCSPEED"], int(m["n"])] += 1
    assert counts == {("bias", 2.0, 10): 10, ("bias", 0.1, 10): 10, ("dome", 2.0, 5): 5,
                      ("Hg", 2.0, 5): 5, ("Cd", 2.0, 5): 5, ("Xe", 2.0, 5): 5}
    lamps = {fits.getval(p, "OBJECT").split()[1]: fits.getval(p, "LAMPCUR")
             for p in sedm_sim.night.glob("ifu*.fits") if fits.getval(p, "IMGTYPE") in ("dome", "lamp")}
    assert set(lamps) == {"dome", "Hg", "Cd", "Xe"}


def test_overscan_carries_no_light(sedm_sim):
    (dome,) = sedm_sim.ifu(imgtype="dome")[:1]
    data = sedm_sim.data(dome["filename"])
    overscan = data[:, -det.N_OVERSCAN:]
    assert abs(np.median(overscan) - dome["overscan_adu"]) < 2.0
    assert np.percentile(data[:, :-det.N_OVERSCAN], 99) > np.median(overscan) + 1000


def test_sizes_small_and_full():
    for layout, n in ((opt.SMALL, 169), (opt.FULL, 1027)):
        sp = opt.make_spaxels(layout, np.random.default_rng(1))
        assert sp.n == n
        assert opt.FULL.nx == opt.FULL.ny == 2048
        x_end = sp.x0 + sp.trace_len
        assert sp.x0.min() > 2 and x_end.max() < layout.nx - det.N_OVERSCAN - 2
        y_ends = np.concatenate([sp.y0, sp.y0 + sp.tilt * sp.trace_len])
        assert y_ends.min() > 5 and y_ends.max() < layout.ny - 5
        assert opt.min_trace_separation(sp) > 6.0


@pytest.mark.filterwarnings("ignore::astropy.wcs.FITSFixedWarning")
@needs_sample
def test_full_frames_have_the_sample_shape_and_overscan():
    import datetime as dt

    from steps.sedm.simulate import ifu_header
    from steps.sedm.simulate_plan import Exposure

    ccd = det.make_ccd(opt.FULL.ny, opt.FULL.nx, np.random.default_rng(0))
    counts, _ = det.read_out(ccd, 2.0, None, 0.0, np.random.default_rng(1))
    exp = Exposure(seq=0, start=dt.datetime(2024, 6, 12), imgtype="bias", object="Calib: bias 1 of 10", exptime=0.0,
                   adcspeed=2.0)
    ours = ifu_header(exp, ccd.nx, (1.0, 1.0), {})
    sample = fits.open(next(SAMPLE_NIGHT.glob("ifu*.fits")))
    assert counts.shape == sample[0].data.shape and counts.dtype == sample[0].data.dtype
    assert (ours["OSCANX0"], ours["OSCANX1"]) == (sample[0].header["OSCANX0"], sample[0].header["OSCANX1"])
    assert abs(np.median(counts) - np.median(sample[0].data)) < 30  # the fast-readout bias level
    sample.close()


@pytest.mark.filterwarnings("ignore::astropy.wcs.FITSFixedWarning")
def test_guider_frames_have_a_wcs_unless_the_astrometry_failed(sedm_sim):
    guiders = [r for r in sedm_sim.table("frames") if r["camera"] == "RC"]
    science = sedm_sim.ifu(imgtype="science")
    assert len(guiders) == 3 * len(science)
    for r in guiders:
        h = fits.getheader(sedm_sim.night / r["filename"])
        assert h["IMGTYPE"] == "guider" and r["filename"].startswith("rc")
        ifu = fits.getheader(sedm_sim.night / r["ifu_file"])
        assert (h["OBJECT"], h["OBJRA"], h["OBJDEC"]) == (ifu["OBJECT"], ifu["OBJRA"], ifu["OBJDEC"])
        assert ifu["MJD_OBS"] <= h["MJD_OBS"] <= ifu["MJD_OBS"] + ifu["EXPTIME"] / 86400.0
        assert WCS(h).has_celestial == r["guider_wcs"]
        assert r["guider_wcs"] == (r["case"] not in ("guider_failed", "neighbour"))


def test_standards_folder_like_the_sample(sedm_sim):
    ours = Path(sedm_sim.settings["standards"]) / "BD+33d2642.csv"
    lines = ours.read_text().splitlines()
    if SAMPLE.is_dir():
        assert lines[0] == (SAMPLE / "standards" / "BD+33d2642.csv").read_text().splitlines()[0]
    table = np.loadtxt(ours, delimiter=",", skiprows=1)
    assert table[0, 0] < 3700 and table[-1, 0] > 9300 and np.all(np.diff(table[:, 0]) > 0)
    assert np.all(table[:, 1] > 0) and 1e-14 < np.interp(5500, *table.T) < 1e-12
