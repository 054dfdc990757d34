"""The simulated NRES frames are written as the archive writes them (the independent sample night
is the reference): names and folders, fpack, dtype, keywords, primary header copies, targets.csv."""

from __future__ import annotations

import io
import re
import typing
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from steps.nres.simulate import DEFECTS, fits_bytes
from steps.nres.simulate_observatory import SITES, sexagesimal
from steps.nres.simulation import Defect, NresSimulation, Site

SAMPLE = Path(__file__).resolve().parents[3] / "shared" / "samples" / "nres-night"
NAME = re.compile(r"^(?P<site>[a-z]{3})nrs(?P<unit>\d{2})-(?P<camera>fl\d{2})-(?P<day>\d{8})-(?P<num>\d{4})"
                  r"-(?P<suffix>b00|d00|w00|a00|e00)\.fits\.fz$")
SUFFIX = {"BIAS": "b00", "DARK": "d00", "LAMPFLAT": "w00", "DOUBLE": "a00", "TARGET": "e00"}
STRUCTURE = {"XTENSION", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "PCOUNT", "GCOUNT", "EXTNAME", "BZERO", "BSCALE",
             "SIMPLE", "EXTEND", ""}


def frames(root: Path) -> list[Path]:
    return sorted(root.glob("*/*/*/raw/*.fits.fz"))


def one_of_each(root: Path) -> dict[str, Path]:
    out = {}
    for p in frames(root):
        out.setdefault(fits.getval(p, "OBSTYPE"), p)
    return out


def user_keys(header: fits.Header) -> set[str]:
    return {k for k in header if k not in STRUCTURE and not k.startswith("SIM")}


def test_layout_names_and_counts(nres_sim):
    files = frames(nres_sim.root)
    per_night = Counter()
    for p in files:
        m = NAME.match(p.name)
        assert m, p.name
        site, unit, day = p.parts[-5], p.parts[-4], p.parts[-3]
        assert (m["site"], f"nres{m['unit']}", m["day"]) == (site, unit, day)
        head = fits.getheader(p, 0)
        assert (head["SITEID"], head["TELESCOP"], head["INSTRUME"], head["DAY-OBS"]) == (
            site, unit, SITES[site].camera, day)
        assert SUFFIX[head["OBSTYPE"]] == m["suffix"] and head["FRAMENUM"] == int(m["num"])
        per_night[site, day, head["OBSTYPE"], head.get("OBJECTS")] += 1
    for site in ("cpt", "lsc"):
        for day in ("20240122", "20240123"):
            assert per_night[site, day, "BIAS", "none&none&none"] == 5
            assert per_night[site, day, "DARK", "none&none&none"] == 5
            assert per_night[site, day, "LAMPFLAT", "tung&tung&none"] == 5
            assert per_night[site, day, "LAMPFLAT", "none&tung&tung"] == 5
            assert per_night[site, day, "DOUBLE", "thar&thar&none"] == 1
            assert per_night[site, day, "DOUBLE", "none&thar&thar"] == 1
        assert per_night[site, "20240122", "TARGET", _on(site, "HD38858")] == 5
        assert per_night[site, "20240123", "TARGET", _on(site, "HD38858")] == 2
    assert nres_sim.settings == {"data_root": str(nres_sim.root), "site": "cpt", "instrument": "nres03",
                                 "start": "2024-01-22", "end": "2024-01-24",
                                 "targets": str(nres_sim.root / "targets.csv")}


def _on(site: str, star: str) -> str:
    fibers = ["none", "thar", "none"]
    fibers[SITES[site].science_fiber] = star
    return "&".join(fibers)


def test_frames_are_fpacked_and_keyed_like_the_sample(nres_sim):
    if not SAMPLE.exists():
        pytest.skip("the independent sample night is not here")
    ours, theirs = one_of_each(nres_sim.root), one_of_each(SAMPLE)
    assert set(ours) == set(theirs) == set(SUFFIX)
    for obstype, path in ours.items():
        with fits.open(path) as mine, fits.open(theirs[obstype]) as ref:
            assert [type(h).__name__ for h in mine] == [type(h).__name__ for h in ref] == ["PrimaryHDU", "CompImageHDU"]
            assert mine[1].name == "SCI" and mine[0].data is None
            assert mine[1].data.dtype == ref[1].data.dtype == np.uint16
            assert mine[1].data.shape == ref[1].data.shape == (1024, 1056)
            missing = user_keys(ref[0].header) - user_keys(mine[0].header)
            assert not missing, (obstype, missing)
            assert not user_keys(ref[1].header) - user_keys(mine[1].header)
            for key in user_keys(mine[0].header):  # the primary header copies the pixels' keywords
                assert mine[0].header[key] == mine[1].header[key], key
        with fits.open(path, disable_image_compression=True) as raw, \
                fits.open(theirs[obstype], disable_image_compression=True) as ref:
            for key in ("ZCMPTYPE", "ZBITPIX", "ZTILE1", "ZTILE2", "BZERO", "BSCALE", "ZVAL1", "ZVAL2"):
                assert raw[1].header[key] == ref[1].header[key], key


def test_fits_bytes_are_astropys_compimagehdu():
    rng = np.random.default_rng(1)
    data = np.clip(rng.normal(1000, 30, (40, 72)), 0, 65535).astype(np.uint16)
    data[3, :5] = 65535
    data[7, 7] = 0
    head = fits.Header([("OBSTYPE", "BIAS", "Observation type"), ("RA", "N/A", "Right ascension")])
    buf = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(header=head.copy()),
                  fits.CompImageHDU(data=data, header=head.copy(), name="SCI", compression_type="RICE_1",
                                    tile_shape=(1, 72))]).writeto(buf)
    assert fits_bytes(head, data) == buf.getvalue()


def test_header_values(nres_sim):
    stars = {line.split(",")[0]: line.split(",") for line in (nres_sim.root / "targets.csv").read_text().splitlines()[1:]}
    for p in frames(nres_sim.root):
        h = fits.getheader(p, 1)
        site = SITES[h["SITEID"]]
        assert (h["LATITUDE"], h["LONGITUD"], h["HEIGHT"]) == (site.latitude, site.longitude, site.height)
        assert h["BIASSEC"] == "[1025:1056,1:1024]" and h["TRIMSEC"] == h["DATASEC"] == h["DETSEC"] == "[1:1024,1:1024]"
        assert h["CCDSUM"] == "1 1" and h["GAIN"] > 0 and h["RDNOISE"] > 0 and h["SATURATE"] == 65535.0
        assert abs(h["CCDATEMP"] - h["CCDSTEMP"]) < 0.5
        start = np.datetime64(h["DATE-OBS"])
        mjd = (start - np.datetime64("1858-11-17T00:00:00")) / np.timedelta64(1, "s") / 86400.0
        assert h["MJD-OBS"] == pytest.approx(mjd, abs=1e-7) and h["UTSTART"] == h["DATE-OBS"][11:]
        if h["OBSTYPE"] == "TARGET":
            assert re.fullmatch(r"\d\d:\d\d:\d\d\.\d{3}", h["RA"]) and re.fullmatch(r"[+-]\d\d:\d\d:\d\d\.\d\d", h["DEC"])
            row = stars[h["OBJECT"]]
            assert (h["CAT-RA"], h["CAT-DEC"]) == sexagesimal(float(row[1]), float(row[2]))
            assert h["PM-RA"] == pytest.approx(float(row[10]) / 1000) and h["PARALLAX"] == pytest.approx(float(row[12]) / 1000)
            assert h["OBJECTS"] == _on(site.code, h["OBJECT"]) and h["EXPTIME"] > 0
        else:
            assert h["RA"] == h["DEC"] == "N/A"


def test_targets_csv_is_the_original_format(nres_sim):
    lines = (nres_sim.root / "targets.csv").read_text().splitlines()
    assert lines[0] == ("Name,RA,Dec,Vmag,Bmag,gmag,rmag,imag,Jmag,Kmag,ProperMotionRA,ProperMotionDE,Parallax,RV,"
                        "Teff,Logg,ZERO")
    truth = {s["name"]: s for s in nres_sim.table("stars")}
    assert {line.split(",")[0] for line in lines[1:]} == set(truth)
    for line in lines[1:]:
        f = line.split(",")
        assert len(f) == 17 and f[16] == "NULL" and f[5:10] == ["-99.9"] * 5
        s = truth[f[0]]
        assert (float(f[1]), float(f[2]), float(f[10]), float(f[12])) == (s["ra"], s["dec"], s["pm_ra"], s["parallax"])
        assert float(f[13]) * 1000 == pytest.approx(s["rv_m_s"], abs=1e-6)


def test_options_model():
    opts = NresSimulation()
    assert (opts.nights, opts.sites, opts.full, opts.seed, opts.defects) == (2, ["cpt", "lsc"], False, 0, [])
    assert set(typing.get_args(Site)) == set(SITES) and typing.get_args(Defect) == DEFECTS
    with pytest.raises(ValueError, match="two_flats"):
        NresSimulation(nights=1, defects=["two_flats"])
    with pytest.raises(ValueError):
        NresSimulation(defects=["nonsense"])
    with pytest.raises(ValueError):
        NresSimulation(sites=["ogg"])
