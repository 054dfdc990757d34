"""Readers of the real SPOC formats and product discovery (steps/tec/products,
dvxml, dvts, lightcurve, catalogs, dvreport), checked on every file of the
sample sector ../shared/samples/tec-sector-033 and on broken copies of them."""
from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from steps.tec.catalogs import read_known_planets, read_toi_csv
from steps.tec.dvreport import CENTSUM, extract_pages, find_difference_image_pages, page_texts
from steps.tec.dvts import bin_dvt, cadence_time_map, read_dvt
from steps.tec.dvxml import parse_dv_xml
from steps.tec.lightcurve import bin_tpf, read_flux_weighted_centroids, read_tpf
from steps.tec.products import HLSP, SPOC_2MIN, Naming, ProductError, find_products

SAMPLE = Path(__file__).resolve().parents[3] / "shared" / "samples" / "tec-sector-033"
if not SAMPLE.is_dir():
    SAMPLE = Path("/work/shared/samples/tec-sector-033")
SECTOR_DIR = SAMPLE / "sector-033"
TIC3 = 459440820  # three planets
pytestmark = pytest.mark.skipif(not SAMPLE.is_dir(), reason="sample sector not available")


def sample(kind: str, tic: int) -> Path:
    folder = {"lc": "light-curve", "dvr_xml": "dv-results", "dvt": "dv-time-series", "dvr_pdf": "dv-reports"}[kind]
    suffix = {"lc": "_lc.fits.gz", "dvr_xml": "_dvr.xml.gz", "dvt": "_dvt.fits.gz", "dvr_pdf": "_dvr.pdf"}[kind]
    (path,) = [p for p in (SECTOR_DIR / folder).iterdir() if f"{tic:016d}" in p.name and p.name.endswith(suffix)]
    return path


@pytest.fixture(scope="module")
def tces():
    files = find_products(SAMPLE, 33, "dvr_xml")
    return [r for p in files.values() for r in parse_dv_xml(p)]


# --------------------------------------------------------------------- DV XML
def test_dv_xml_every_sample_file(tces):
    assert len(tces) == 18
    assert len({r["tic"] for r in tces}) == 14
    three = sorted((r for r in tces if r["tic"] == TIC3), key=lambda r: r["planet_number"])
    assert [r["planet_number"] for r in three] == [1, 2, 3]
    assert [r["n_planets"] for r in three] == [3, 3, 3]
    np.testing.assert_allclose([r["at_period"] for r in three], [1.5017, 5.178, 2.2615], atol=2e-3)
    p1 = three[0]
    assert p1["logg"] == pytest.approx(4.306187956)  # log10SurfaceGravity, not metallicity
    assert p1["feh"] == pytest.approx(0.3396208048)
    assert (p1["sector"], p1["camera"], p1["ccd"]) == (33, 1, 3)
    assert p1["row"] == pytest.approx(1964.374506) and p1["col"] == pytest.approx(863.9493003)
    assert p1["pix_pos_valid"] == 1
    assert p1["all_sectors"] == [33] and p1["all_cadstart"] == [703641] and p1["all_cadend"] == [722246]
    assert p1["sectors_observed"] == [33]
    assert (p1["ld1"], p1["ld2"], p1["ld3"], p1["ld4"]) == pytest.approx((0.3393274416, 0.52, -0.15, 0.05))
    assert p1["mes"] == pytest.approx(10.27511149) and p1["ntran"] == 15
    assert p1["modchi2"] == pytest.approx(20.69634303 / np.sqrt(14))
    assert p1["chi2"] == pytest.approx(17.42875157 / np.sqrt(14))
    assert p1["cent_tic_offset"] == pytest.approx(0.6012066411)
    assert p1["cent_oot_offset_e"] == pytest.approx(10.1816764)
    assert p1["oe_signif"] == pytest.approx(0.372942605)
    assert p1["ghostcoreval"] == pytest.approx(13.12638896) and p1["ghosthalosig"] == pytest.approx(0.286127192)
    assert p1["at_valid"] == 1 and p1["eph_source"] == "at"
    assert p1["eph_period"] == p1["at_period"] and p1["eph_duration_h"] == p1["at_dur"]
    toi = [r for r in tces if r["tic"] == 62033713][0]
    assert toi["toi_id"] == pytest.approx(1548.01)
    for r in tces:
        assert r["sector"] == 33 and r["tmag"] > 0 and np.isfinite(r["tce_period"])
        assert r["eph_source"] in ("at", "trp", "tps")
        if r["trp_valid"]:
            assert np.isfinite(r["trp_depth"])
        else:
            assert np.isnan(r["trp_depth"])


def test_dv_xml_matches_dv_time_series_headers(tces):
    """The DVT TCE_n headers repeat the TPS / fit numbers of the XML."""
    for tic, path in find_products(SAMPLE, 33, "dvt").items():
        dvt = read_dvt(path)
        mine = sorted((r for r in tces if r["tic"] == tic), key=lambda r: r["planet_number"])
        assert len(mine) == dvt.header["NUMTCES"] == len(dvt.tces)
        for r, h in zip(mine, dvt.tce_headers):
            assert r["tce_period"] == pytest.approx(h["TPERIOD"], rel=1e-6)
            assert r["mes"] == pytest.approx(h["MAXMES"], abs=1e-3)


def _xml_text(tic=TIC3) -> str:
    return gzip.decompress(sample("dvr_xml", tic).read_bytes()).decode()


def test_dv_xml_plain_default_namespace_and_no_namespace(tmp_path, tces):
    want = [r for r in tces if r["tic"] == TIC3]
    text = _xml_text()
    variants = {
        "plain_dvr.xml": text,
        "default_dvr.xml": text.replace('xmlns:dv="', 'xmlns="').replace("<dv:", "<").replace("</dv:", "</"),
        "nons_dvr.xml": text.replace(' xmlns:dv="http://www.nasa.gov/2018/TESS/DV"', "")
        .replace("<dv:", "<").replace("</dv:", "</"),
    }
    for name, body in variants.items():
        p = tmp_path / name
        p.write_text(body)
        got = parse_dv_xml(p)
        assert len(got) == 3, name
        for a, b in zip(sorted(got, key=lambda r: r["planet_number"]), sorted(want, key=lambda r: r["planet_number"])):
            assert a["at_period"] == b["at_period"] and a["logg"] == b["logg"] and a["row"] == b["row"], name


def test_dv_xml_missing_optional_parts_give_nan(tmp_path):
    import re

    text = _xml_text()
    text = re.sub(r"<dv:ghostDiagnosticResults>.*?</dv:ghostDiagnosticResults>", "", text)
    text = re.sub(r"<dv:log10SurfaceGravity[^>]*/>", "", text)
    text = text.replace('fullConvergence="true" modelFitSnr="10.32350236"', 'fullConvergence="false" modelFitSnr="1"')
    p = tmp_path / "x_dvr.xml"
    p.write_text(text)
    recs = parse_dv_xml(p)
    assert all(np.isnan(r["ghostcoreval"]) and np.isnan(r["ghosthalosig"]) for r in recs)
    assert all(np.isnan(r["logg"]) for r in recs)
    assert recs[0]["trp_valid"] == 0 and np.isnan(recs[0]["trp_epochbtjd"])


def test_dv_xml_trapezoid_and_tps_fallback_ephemeris(tmp_path):
    text = _xml_text().replace('<dv:allTransitsFit fullConvergence="true"', '<dv:allTransitsFit fullConvergence="false"')
    p = tmp_path / "x_dvr.xml"
    p.write_text(text)
    r = parse_dv_xml(p)[0]
    assert r["eph_source"] == "trp"
    assert r["eph_period"] == r["tce_period"] and r["eph_epoch"] == r["trp_epochbtjd"]
    p.write_text(text.replace('<dv:trapezoidalFit fullConvergence="true"', '<dv:trapezoidalFit fullConvergence="false"'))
    r = parse_dv_xml(p)[0]
    assert r["eph_source"] == "tps" and r["eph_duration_h"] == r["pulsedur"] == 2.5


def test_dv_xml_truncated_and_corrupt(tmp_path):
    raw = gzip.decompress(sample("dvr_xml", TIC3).read_bytes())
    bad = tmp_path / "trunc_dvr.xml"
    bad.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ProductError) as e:
        parse_dv_xml(bad)
    assert e.value.path == bad and "not well-formed" in str(e.value) and str(bad) in str(e.value)
    badgz = tmp_path / "trunc_dvr.xml.gz"
    badgz.write_bytes(sample("dvr_xml", TIC3).read_bytes()[:5000])
    with pytest.raises(ProductError, match="gzip|well-formed") as e:
        parse_dv_xml(badgz)
    assert e.value.path == badgz
    noid = tmp_path / "noid_dvr.xml"
    noid.write_text(raw.decode().replace('ticId="459440820"', ""))
    with pytest.raises(ProductError, match="ticId"):
        parse_dv_xml(noid)
    with pytest.raises(ProductError, match="cannot open"):
        parse_dv_xml(tmp_path / "missing_dvr.xml")


# ------------------------------------------------------------ DV time series
def test_dv_time_series_every_sample_file():
    files = find_products(SAMPLE, 33, "dvt")
    assert len(files) == 14
    n_tce = 0
    for tic, path in files.items():
        dvt = read_dvt(path)
        assert dvt.tic == tic and dvt.sector == 33
        binned = bin_dvt(dvt)
        n_tce += len(binned)
        raw_q = dvt.statistics["QUALITY"]
        raw_c = dvt.tces[0]["CADENCENO"]
        for rec in binned:
            assert rec["factor"] == 5  # 2-min cadence
            assert np.all(rec["cadence_end"] - rec["cadence_beg"] == 4)
            assert rec["valid"][0]
            v = rec["valid"]
            assert np.all(np.isfinite(rec["time"][v]) & np.isfinite(rec["lc_init"][v]) & np.isfinite(rec["pdc_flux"][v]))
            assert np.all(np.diff(rec["time"][v]) > 0)
            assert rec["time"][v].min() > 2000  # bogus near-zero times blanked
            assert np.array_equal(rec["momentum_dump"], (rec["quality"] & 32) != 0)
            # first bin: OR of its 5 quality values, PDC summed
            i0 = int(np.searchsorted(raw_c, rec["cadence_beg"][0]))
            assert rec["quality"][0] == np.bitwise_or.reduce(raw_q[i0:i0 + 5])
            assert rec["pdc_flux"][0] == pytest.approx(float(np.sum(dvt.statistics["PDCSAP_FLUX"][i0:i0 + 5], dtype=float)))
            for col in ("cadence_no", "time", "lc_init", "lc_init_err", "lc_white", "lc_detrend", "model_init",
                        "model_white", "phase", "pdc_flux", "pdc_flux_err", "deweights", "quality"):
                assert len(rec[col]) == len(v)
    assert n_tce == 18
    # momentum dumps exist in this sector and reach the binned series
    dvt = read_dvt(files[TIC3])
    assert any(r["momentum_dump"].any() for r in bin_dvt(dvt))
    assert bin_dvt(dvt, factor=1)[0]["factor"] == 1


def test_cadence_time_map():
    dvts = [read_dvt(p) for p in list(find_products(SAMPLE, 33, "dvt").values())[:3]]
    m = cadence_time_map(dvts)
    assert set(m) == {"cadence", "time", "quality", "momentum_dump", "pdc_finite"}
    assert np.all(np.diff(m["cadence"]) > 0)
    assert np.array_equal(m["momentum_dump"] == 1, (m["quality"] & 32) != 0)
    assert m["momentum_dump"].sum() > 0
    assert np.nanmin(m["time"]) > 2000
    mm = cadence_time_map(dvts, multi_sector=True)
    assert len(mm["cadence"]) == len(m["cadence"])


def _rewrite_fits(src: Path, dst: Path, edit) -> Path:
    with fits.open(src) as hdul:
        hdus = fits.HDUList([h.copy() for h in hdul])
    hdus = edit(hdus) or hdus
    hdus.writeto(dst, overwrite=True)
    return dst


def test_dv_time_series_bad_inputs(tmp_path):
    src = sample("dvt", TIC3)
    nostat = _rewrite_fits(src, tmp_path / "nostat_dvt.fits", lambda h: fits.HDUList(h[:-1]))
    with pytest.raises(ProductError, match="STATISTICS") as e:
        read_dvt(nostat)
    assert e.value.path == nostat

    def drop_col(h):
        t = h[1]
        cols = [c for c in t.columns if c.name != "LC_INIT"]
        h[1] = fits.BinTableHDU.from_columns(cols, header=t.header, name="TCE_1")

    nocol = _rewrite_fits(src, tmp_path / "nocol_dvt.fits", drop_col)
    with pytest.raises(ProductError, match="LC_INIT"):
        read_dvt(nocol)
    notce = _rewrite_fits(src, tmp_path / "notce_dvt.fits", lambda h: fits.HDUList([h[0], h[1], h[3], h[4]]))
    with pytest.raises(ProductError, match="TCE_2"):
        read_dvt(notce)

    def all_nan(h):
        for i in (1, 2, 3):
            h[i].data["LC_INIT"][:] = np.nan

    nan = _rewrite_fits(src, tmp_path / "nan_dvt.fits", all_nan)
    dvt = read_dvt(nan)
    with pytest.raises(ProductError, match="no cadence has finite") as e:
        bin_dvt(dvt)
    assert e.value.path == nan
    trunc = tmp_path / "trunc_dvt.fits.gz"
    trunc.write_bytes(src.read_bytes()[:20000])
    with pytest.raises(ProductError, match="gzip stream is truncated"):
        read_dvt(trunc)
    trunc = tmp_path / "trunc_dvt.fits"
    trunc.write_bytes(gzip.decompress(src.read_bytes())[:300000])
    with pytest.raises(ProductError, match="truncated"):
        read_dvt(trunc)
    junk = tmp_path / "junk_dvt.fits"
    junk.write_bytes(b"this is not FITS at all\n" * 200)
    with pytest.raises(ProductError, match="not a readable FITS") as e:
        read_dvt(junk)
    assert str(junk) in str(e.value)


# ------------------------------------------------------------- light curves
def test_flux_weighted_centroids_every_sample_file():
    files = find_products(SAMPLE, 33, "lc")
    assert len(files) == 14
    for tic, path in files.items():
        r = read_flux_weighted_centroids(path)
        assert r["tic"] == tic and r["sector"] == 33 and r["resamp"] == 31
        assert len(r["time"]) == 18606 // 31
        assert 0 < r["pdc_noi"] <= 1 and 0 < r["pdc_cor"] <= 1
        v = r["valid"]
        assert v.sum() > 400
        assert np.all(r["quality"][v] == 0) and np.all(np.isfinite(r["flxw_centr1"][v]))
    r = read_flux_weighted_centroids(files[TIC3])
    assert r["pdc_tot"] == pytest.approx(0.8873) and r["pdc_noi"] == pytest.approx(0.914)
    assert abs(np.nanmedian(r["flxw_centr1"][r["valid"]]) - 863.9) < 2  # column near the DV reference column


def test_flux_weighted_centroids_nan_centroid_is_not_valid(tmp_path):
    """The original marked quality-0 bins valid even with a NaN centroid."""
    src = sample("lc", TIC3)
    with fits.open(src) as hdul:
        hdus = fits.HDUList([x.copy() for x in hdul])
    q = hdus[1].data["QUALITY"]
    good = np.flatnonzero(np.bitwise_or.reduce(q[: (len(q) // 31) * 31].reshape(-1, 31), axis=1) == 0)
    b = int(good[5])
    hdus[1].data["MOM_CENTR2"][b * 31:(b + 1) * 31] = np.nan
    del hdus[1].header["PDC_TOT"]
    p = tmp_path / "x_lc.fits"
    hdus.writeto(p)
    r = read_flux_weighted_centroids(p)
    assert r["quality"][b] == 0 and not r["valid"][b]
    assert r["valid"][good[4]] and r["valid"][good[6]]
    assert np.isnan(r["pdc_tot"]) and r["pdc_noi"] == pytest.approx(0.914)


def test_flux_weighted_centroids_bad_inputs(tmp_path):
    src = sample("lc", TIC3)

    def all_nan(h):
        for c in ("MOM_CENTR1", "MOM_CENTR2", "TIME"):
            h[1].data[c][:] = np.nan

    p = _rewrite_fits(src, tmp_path / "nan_lc.fits", all_nan)
    with pytest.raises(ProductError, match="no valid centroid bin") as e:
        read_flux_weighted_centroids(p)
    assert e.value.path == p

    def drop(h):
        cols = [c for c in h[1].columns if c.name != "MOM_CENTR1"]
        h[1] = fits.BinTableHDU.from_columns(cols, header=h[1].header, name="LIGHTCURVE")

    p = _rewrite_fits(src, tmp_path / "nocol_lc.fits", drop)
    with pytest.raises(ProductError, match="MOM_CENTR1"):
        read_flux_weighted_centroids(p)
    with pytest.raises(ProductError, match="does not exist"):
        read_flux_weighted_centroids(tmp_path / "none_lc.fits")


def _write_tpf(path: Path, cad0=703641, n=200, shape=(5, 6), bright=5e4):
    rng = np.random.default_rng(1)
    ny, nx = shape
    flux = rng.normal(100.0, 1.0, size=(n, ny, nx))
    flux[:, 2, 3] = bright  # constant, very bright pixel -> saturated
    bkg = np.full((n, ny, nx), 2.0)
    q = np.zeros(n, dtype=np.int32)
    q[7] = 32
    q[8] = 1024
    cols = [
        fits.Column("TIME", "D", array=2201.7 + np.arange(n) / 720.0),
        fits.Column("CADENCENO", "J", array=cad0 + np.arange(n)),
        fits.Column("FLUX", f"{ny * nx}E", dim=f"({nx},{ny})", array=flux.astype(np.float32)),
        fits.Column("FLUX_BKG", f"{ny * nx}E", dim=f"({nx},{ny})", array=bkg.astype(np.float32)),
        fits.Column("QUALITY", "J", array=q),
    ]
    prim = fits.PrimaryHDU()
    prim.header.update(TICID=TIC3, SECTOR=33, CAMERA=1, CCD=3)
    tab = fits.BinTableHDU.from_columns(cols, name="PIXELS")
    tab.header["1CRV4P"] = 859
    tab.header["2CRV4P"] = 1960
    fits.HDUList([prim, tab]).writeto(path)
    return flux


def test_target_pixel_binning(tmp_path):
    p = tmp_path / "x_tp.fits"
    flux = _write_tpf(p)
    tpf = read_tpf(p)
    assert tpf["flux"].shape == (200, 5, 6) and tpf["crv4p_col"] == 859 and tpf["crv4p_row"] == 1960
    assert tpf["header"]["TICID"] == TIC3 and tpf["header"]["PMRA"] == -1 and tpf["crpx4_1"] == -1  # missing -> -1
    beg = 703641 + 5 * np.arange(45)
    b = bin_tpf(tpf, beg, beg + 4)
    assert b["flux"].shape == (45, 5, 6)
    np.testing.assert_allclose(b["flux"][1], flux[5:10].sum(axis=0), rtol=1e-5)
    assert b["quality"][1] == 32 | 1024  # OR, not a sum
    assert b["valid"][:40].all() and not b["valid"][40:].any()  # 200 cadences = 40 bins
    assert b["saturated"][2, 3] == 1 and b["saturated"].sum() == 1
    # bins past the end of the TPF are empty and invalid
    b2 = bin_tpf(tpf, np.array([703641 + 400]), np.array([703641 + 404]))
    assert not b2["valid"][0]


# --------------------------------------------------------------- catalogues
def test_toi_csv_sample():
    rows = read_toi_csv(SAMPLE / "toi.csv")
    assert len(rows) == 7
    by_toi = {r["toi"]: r for r in rows}
    assert by_toi[1548.01]["tic"] == 62033713 and by_toi[1548.01]["disposition"] == "PC"
    assert by_toi[1622.01]["disposition"] == "APC"  # not cut to 2 characters
    assert by_toi[1565.01]["period"] == 1000.0  # single transit
    assert by_toi[1548.01]["period"] == pytest.approx(9.3216138)
    assert by_toi[1548.01]["epoch_btjd"] == pytest.approx(957.848819)
    assert by_toi[1548.01]["ra"] == pytest.approx(69.381156) and by_toi[1548.01]["dec"] == pytest.approx(-58.217022)
    assert by_toi[1548.01]["duration_h"] == pytest.approx(3.9495) and by_toi[1548.01]["depth_ppm"] == 546.0
    assert by_toi[1598.01]["tic"] == 243049408  # row whose comment holds doubled quotes and commas


def test_toi_csv_layouts_and_bad_inputs(tmp_path):
    old = tmp_path / "toi-plus-2019.csv"
    old.write_text(
        "tic_id,toi_id,Disposition,RA,Dec,Epoc,Period,Duration,Transit Depth,Comment\n"
        '25155310,114.01,PC,1.0,-2.0,2458326.1,3.29,3.1,5000,"a, ""quoted"" comment"\n'
        "141122198,115.01,KP,2.0,-3.0,1327.5,,2.0,300,\n"
    )
    rows = read_toi_csv(old)
    assert rows[0]["epoch_btjd"] == pytest.approx(1326.1)  # BJD converted
    assert rows[1]["epoch_btjd"] == 1327.5 and rows[1]["period"] == 1000.0
    assert rows[0]["disposition"] == "PC" and rows[1]["tic"] == 141122198

    newer = tmp_path / "new.csv"
    newer.write_text(
        "line one\nline, two\nline three\nline four\n"
        "TIC,Full TOI ID,TOI Disposition,Orbital Epoch Value,Orbital Period (days) Value,Transit Duration (hours) Value\n"
        "1,1.01,CP,2000.5,4.5,2.5\n"
    )
    r = read_toi_csv(newer)[0]
    assert (r["period"], r["duration_h"], r["disposition"]) == (4.5, 2.5, "CP") and np.isnan(r["ra"])

    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(ProductError, match="empty") as e:
        read_toi_csv(empty)
    assert e.value.path == empty
    noper = tmp_path / "noperiod.csv"
    noper.write_text("TIC,Full TOI ID,Orbital Epoch Value\n1,1.01,2000\n")
    with pytest.raises(ProductError, match="period"):
        read_toi_csv(noper)
    badrow = tmp_path / "badrow.csv"
    badrow.write_text("TIC,Full TOI ID,Orbital Epoch Value,Orbital Period Value\n1,1.01,2000,3\nabc,2.01,2000,3\n")
    with pytest.raises(ProductError, match="line 3"):
        read_toi_csv(badrow)
    garbage = tmp_path / "garbage.csv"
    garbage.write_bytes(b"\x00\x01 not a table\n")
    with pytest.raises(ProductError, match="no header row"):
        read_toi_csv(garbage)


def test_known_planets(tmp_path):
    rows = read_known_planets(SAMPLE / "known_planets.csv")
    assert len(rows) == 8
    b = rows[0]
    assert b["name"] == "SYN-101 b" and b["tic"] == TIC3 and b["hostname"] == "SYN-101"
    assert b["epoch_btjd"] == pytest.approx(1903.291625) and b["period"] == pytest.approx(1.50164064)
    assert b["duration_h"] == pytest.approx(2.3363) and b["ra"] == pytest.approx(104.8927008)
    sexa = tmp_path / "kp.csv"
    sexa.write_text("# comment\npl_name,tic_id,ra,dec,pl_orbper,pl_tranmid,pl_trandur\n"
                    "X b,,06h59m34.25s,-59d41m06.1s,2.0,1500.0,3.0\n")
    r = read_known_planets(sexa)[0]
    assert r["ra"] == pytest.approx(104.8927, abs=1e-3) and r["dec"] == pytest.approx(-59.68503, abs=1e-4)
    assert r["tic"] == -1 and r["epoch_btjd"] == 1500.0
    bad = tmp_path / "kp_bad.csv"
    bad.write_text("# c\npl_name,ra,dec,pl_orbper\nX b,1,2,3\n")
    with pytest.raises(ProductError, match="pl_tranmid"):
        read_known_planets(bad)
    only = tmp_path / "kp_only.csv"
    only.write_text("# nothing but comments\n#\n")
    with pytest.raises(ProductError, match="no header row"):
        read_known_planets(only)


# ---------------------------------------------------------------- DV reports
def test_difference_image_pages_every_report(tmp_path, tces):
    reports = find_products(SAMPLE, 33, "dvr_pdf")
    assert len(reports) == 14
    for tic, path in reports.items():
        texts = page_texts(path)
        for r in (r for r in tces if r["tic"] == tic):
            pages = find_difference_image_pages(path, tic, r["planet_number"], [33, 3], texts=texts)
            assert set(pages) == {33}  # sector 3 never matches "33"; no multi-sector summary
            assert f"Planet Candidate {r['planet_number']}, Sector 33" in texts[pages[33]]
    pages = {pn: find_difference_image_pages(reports[TIC3], TIC3, pn, [33])[33] for pn in (1, 2, 3)}
    assert pages == {1: 5, 2: 7, 3: 9}
    out = extract_pages(reports[TIC3], pages[2], tmp_path / "d" / f"tess_diffImg_{TIC3:016d}_02_33.pdf")
    import pypdf

    one = pypdf.PdfReader(out)
    assert len(one.pages) == 1 and "Planet Candidate 2, Sector 33" in one.pages[0].extract_text()
    assert [p.name for p in out.parent.iterdir()] == [out.name]  # no temporary file left
    with pytest.raises(ProductError, match="out of range"):
        extract_pages(reports[TIC3], 99, tmp_path / "x.pdf")


def _text_pdf(path: Path, pages: list[list[str]]):
    """A minimal PDF whose pages hold the given text lines (Helvetica)."""
    objs = ["<< /Type /Catalog /Pages 2 0 R >>", None, "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    kids = []
    for lines in pages:
        body = "BT /F1 9 Tf 20 700 Td " + " ".join(f"({ln}) Tj 0 -14 Td" for ln in lines) + " ET"
        objs.append(f"<< /Length {len(body)} >>\nstream\n{body}\nendstream")
        objs.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {len(objs)} 0 R "
                    "/Resources << /Font << /F1 3 0 R >> >> >>")
        kids.append(len(objs))
    objs[1] = f"<< /Type /Pages /Kids [{' '.join(f'{k} 0 R' for k in kids)}] /Count {len(kids)} >>"
    out, offsets = b"%PDF-1.4\n", []
    for i, o in enumerate(objs, 1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n{o}\nendobj\n".encode()
    xref = len(out)
    out += f"xref\n0 {len(objs) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objs) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    path.write_bytes(out)


def test_difference_image_pages_multi_sector_and_bad_pdf(tmp_path):
    tic, pn = 25155310, 1
    stem = f"planet-01/difference-image/{tic:016d}-01-difference-image-"
    pdf = tmp_path / "multi_dvr.pdf"
    _text_pdf(pdf, [["Data Validation Report", "i"], ["DV SUMMARY", "1"], [stem + "centroid-offsets.fig", "2"],
                    [stem + "03.fig", "3"], [stem + "13.fig", "4"]])
    pages = find_difference_image_pages(pdf, tic, pn, [3, 4, 13])
    assert pages == {3: 3, 13: 4, CENTSUM: 2}
    bad = tmp_path / "bad_dvr.pdf"
    bad.write_bytes(b"%PDF-1.4\nthis is not really a pdf")
    with pytest.raises(ProductError, match="not a readable PDF") as e:
        find_difference_image_pages(bad, tic, pn, [3])
    assert e.value.path == bad
    with pytest.raises(ProductError, match="does not exist"):
        extract_pages(tmp_path / "none.pdf", 0, tmp_path / "o.pdf")


# ----------------------------------------------------------------- discovery
KINDS_IN_SAMPLE = {"lc": 14, "dvr_xml": 14, "dvt": 14, "dvr_pdf": 14, "dvm": 14, "dvs": 18}


def test_discovery_mit_layout_sample():
    for kind, n in KINDS_IN_SAMPLE.items():
        found = find_products(SAMPLE, 33, kind)
        assert len(found) == n, kind
        assert all(p.is_file() for p in found.values())
    dvs = find_products(SAMPLE, 33, "dvs")
    assert {(TIC3, 1), (TIC3, 2), (TIC3, 3)} <= set(dvs)
    assert find_products(SAMPLE, 33, "lc", naming=SPOC_2MIN)[TIC3].name.startswith("tess2020353052510-s0033-")
    with pytest.raises(ProductError) as e:
        find_products(SAMPLE, 33, "tp")
    msg = str(e.value)
    assert "no tp products for sector 33" in msg and "_tp" in msg and "target-pixel" in msg


def _link(src: Path, dst: Path):
    dst.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(src, dst)


def _tic_dirs(tic: int) -> Path:
    s = f"{tic:016d}"
    return Path(s[0:4], s[4:8], s[8:12], s[12:16])


def test_discovery_variant_and_other_sector_folders(tmp_path):
    root = tmp_path / "spoc-data"
    for kind_dir in ("light-curve", "dv-results"):
        for f in (SECTOR_DIR / kind_dir).iterdir():
            _link(f, root / "sector-033-reprocessed" / kind_dir / f.name)
            # a decoy in another sector's folder, named as sector 33 (must be pruned)
            _link(f, root / "sector-032" / kind_dir / f.name.replace("00421", "00999"))
    # a plain copy of one DV XML beside its gzip copy: one entry per TIC
    xml = sample("dvr_xml", TIC3)
    (root / "sector-033-reprocessed" / "dv-results" / xml.name[:-3]).write_bytes(gzip.decompress(xml.read_bytes()))
    found = find_products(root, 33, "dvr_xml")
    assert len(found) == 14
    assert all("sector-033-reprocessed" in str(p) for p in found.values())
    assert found[TIC3].name.endswith("_dvr.xml")  # plain wins a tie
    assert len(parse_dv_xml(found[TIC3])) == 3
    assert len(find_products(root, 33, "lc")) == 14
    with pytest.raises(ProductError):
        find_products(root, 33, "dvt")


def test_discovery_nas_ftl_hlsp_names(tmp_path):
    root = tmp_path / "exports" / "science-products-tsop-2210" / "sector-33"
    for f in (SECTOR_DIR / "light-curve").iterdir():
        tic = int(f.name.split("-")[2])
        _link(f, root / "ftl-light-curve" / f"hlsp_tess-spoc_tess_phot_{tic:016d}-s0033_tess_v1_lc.fits.gz")
    for f in (SECTOR_DIR / "dv-results").iterdir():
        tic = int(f.name.split("-")[3])
        _link(f, root / "ftl-dv-results" / f"hlsp_tess-spoc_tess_phot_{tic:016d}-s0033-s0033_tess_v1_dvr.xml.gz")
    _link(SECTOR_DIR / "dv-reports" / f"tess2020354001541-s0033-s0033-{TIC3:016d}-02-00421_dvs.pdf",
          root / "ftl-dv-reports" / f"hlsp_tess-spoc_tess_phot_{TIC3:016d}-s0033-s0033_tess_v1_dvs-02.pdf")
    top = tmp_path / "exports"
    for naming in (None, HLSP, Naming.hlsp(33)):
        lc = find_products(top, 33, "lc", naming=naming)
        assert len(lc) == 14 and lc[TIC3].parent.name == "ftl-light-curve"
        assert len(find_products(top, 33, "dvr_xml", naming=naming)) == 14
    assert list(find_products(top, 33, "dvs")) == [(TIC3, 2)]
    r = read_flux_weighted_centroids(find_products(top, 33, "lc")[TIC3])
    assert r["tic"] == TIC3
    with pytest.raises(ProductError, match="hlsp_tess"):
        find_products(top, 34, "lc", naming=HLSP)
    with pytest.raises(ProductError):
        find_products(top, 33, "lc", naming=SPOC_2MIN)  # wrong family


def test_discovery_mast_tid_and_hlsp_trees(tmp_path):
    mast = tmp_path / "mast"
    for kind_dir in ("light-curve", "dv-results", "dv-time-series", "dv-reports"):
        for f in (SECTOR_DIR / kind_dir).iterdir():
            tic = int(f.name.split(f"{'-s0033-' if kind_dir == 'light-curve' else '-s0033-s0033-'}")[1][:16])
            _link(f, mast / "tid" / "s0033" / _tic_dirs(tic) / f.name)
            # decoy for another sector: pruned
            _link(f, mast / "tid" / "s0034" / _tic_dirs(tic) / f.name)
    f = next((SECTOR_DIR / "light-curve").iterdir())
    tic = int(f.name.split("-")[2])
    _link(f, mast / "HLSP" / "tess-spoc" / "s0033" / "target" / _tic_dirs(tic)
          / f"hlsp_tess-spoc_tess_phot_{tic:016d}-s0033_tess_v1_lc.fits.gz")
    for kind, n in KINDS_IN_SAMPLE.items():
        assert len(find_products(mast / "tid", 33, kind)) == n, kind
    assert len(find_products(mast, 33, "lc", naming=SPOC_2MIN)) == 14
    assert list(find_products(mast / "HLSP", 33, "lc")) == [tic]
    both = find_products(mast, 33, "lc")
    assert len(both) == 14  # the HLSP copy of one TIC does not add a key
    assert find_products(mast, 33, "dvt")[TIC3].parent == mast / "tid" / "s0033" / _tic_dirs(TIC3)


def test_naming_from_examples_and_pinned_patterns(tmp_path):
    lc = sample("lc", TIC3).name
    dv = sample("dvr_xml", TIC3).name
    n = Naming.from_examples(lc, dv)
    assert n == Naming("spoc", "tess2020353052510-s0033-", "-0203-s", "tess2020354001541-s0033-s0033-", "-00421")
    for kind, count in KINDS_IN_SAMPLE.items():
        assert len(find_products(SAMPLE, 33, kind, naming=n)) == count, kind
    h = Naming.from_examples("hlsp_tess-spoc_tess_phot_0000000000000001-s0040_tess_v1_lc.fits.gz",
                             "hlsp_tess-spoc_tess_phot_0000000000000001-s0040-s0040_tess_v1_dvr.xml")
    assert h == Naming.hlsp(40)
    assert h.pattern("dvs").match(f"hlsp_tess-spoc_tess_phot_{TIC3:016d}-s0040-s0040_tess_v1_dvs-03.pdf")
    stale = Naming("spoc", "tess2019000000000-s0033-", "-0203-s", None, None)
    with pytest.raises(ProductError, match="tess2019000000000"):
        find_products(SAMPLE, 33, "lc", naming=stale)
    with pytest.raises(ValueError):
        Naming.from_examples("no_tic_here_lc.fits")
    with pytest.raises(ProductError, match="not a folder"):
        find_products(tmp_path / "nowhere", 33, "lc")


def test_discovery_speed_on_many_files(tmp_path):
    """One walk and a regex per name: 20,000 names in a few tenths of a second."""
    import time

    d = tmp_path / "sector-033" / "light-curve"
    d.mkdir(parents=True)
    for i in range(20000):
        (d / f"tess2020353052510-s0033-{i + 1:016d}-0203-s_lc.fits.gz").touch()
    other = tmp_path / "sector-033" / "dv-results"
    other.mkdir()
    t = time.perf_counter()
    found = find_products(tmp_path, 33, "lc")
    assert len(found) == 20000
    assert time.perf_counter() - t < 5.0
