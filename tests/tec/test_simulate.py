"""Tests of the TEC simulator (steps/tec/simulate.py): names, formats, truth consistency."""

from __future__ import annotations

import csv
import gzip
import io
import re
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import xml.etree.ElementTree as ET
from astropy.io import fits
from pypdf import PdfReader

from steps.tec.simulate import simulate_sector

NS = {"dv": "http://www.nasa.gov/2018/TESS/DV"}
SAMPLE = Path(__file__).resolve().parents[3] / "shared" / "samples" / "tec-sector-033" / "sector-033"
N = 30


@pytest.fixture(scope="module")
def spoc(tmp_path_factory):
    return simulate_sector(tmp_path_factory.mktemp("spoc"), n_tces=N, seed=3)


@pytest.fixture(scope="module")
def ftl(tmp_path_factory):
    return simulate_sector(tmp_path_factory.mktemp("ftl"), n_tces=N, seed=4, family="ftl", with_tpf=True)


def _truth(sim):
    return pq.read_table(sim.truth).to_pylist()


def _xml_root(path: Path) -> ET.Element:
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        data = gzip.decompress(data)
    return ET.fromstring(data)


def _one(folder: Path, pattern: str) -> Path:
    hits = sorted(folder.glob(pattern))
    assert len(hits) == 1, (folder, pattern, hits)
    return hits[0]


# -- names and layout ---------------------------------------------------------------------


def test_spoc_names_and_layout(spoc):
    root = spoc.root / "sector-033"
    assert spoc.sector_dir == root and spoc.cadence == "2min"
    tics = sorted({r["tic"] for r in _truth(spoc)})
    assert len(tics) == spoc.n_targets
    for tic in tics:
        _one(root / "light-curve", f"tess*-s0033-{tic:016d}-0203-s_lc.fits.gz")
        for folder, suffix in (("dv-results", "_dvr.xml.gz"), ("dv-time-series", "_dvt.fits.gz"),
                               ("dv-reports", "_dvr.pdf"), ("dv-reports", "_dvm.pdf")):
            _one(root / folder, f"tess*-s0033-s0033-{tic:016d}-00421{suffix}")
    for r in _truth(spoc):
        _one(root / "dv-reports", f"tess*-s0033-s0033-{r['tic']:016d}-{r['planet_number']:02d}-00421_dvs.pdf")
    name = next((root / "light-curve").iterdir()).name
    assert re.fullmatch(r"tess\d{13}-s0033-\d{16}-0203-s_lc\.fits\.gz", name)
    assert (spoc.root / "toi.csv").exists() and (spoc.root / "known_planets.csv").exists()


def test_ftl_names_and_layout(ftl):
    root = ftl.root / "sector-33"
    assert ftl.cadence == "10min"
    for r in _truth(ftl):
        tic = r["tic"]
        _one(root / "ftl-light-curve", f"hlsp_tess-spoc_tess_phot_{tic:016d}-s0033_tess_v1_lc.fits")
        _one(root / "ftl-target-pixel", f"hlsp_tess-spoc_tess_phot_{tic:016d}-s0033_tess_v1_tp.fits")
        _one(root / "ftl-dv-results", f"hlsp_tess-spoc_tess_phot_{tic:016d}-s0033-s0033_tess_v1_dvr.xml")
        _one(root / "ftl-dv-time-series", f"hlsp_tess-spoc_tess_phot_{tic:016d}-s0033-s0033_tess_v1_dvt.fits")
        _one(root / "ftl-dv-reports", f"hlsp_tess-spoc_tess_phot_{tic:016d}-s0033-s0033_tess_v1_dvr.pdf")
        _one(root / "ftl-dv-reports", f"hlsp_tess-spoc_tess_phot_{tic:016d}-s0033-s0033_tess_v1_dvm.pdf")
        _one(root / "ftl-dv-reports",
             f"hlsp_tess-spoc_tess_phot_{tic:016d}-s0033-s0033_tess_v1_dvs-{r['planet_number']:02d}.pdf")


# -- DV XML -------------------------------------------------------------------------------


def _tree(root: ET.Element) -> set:
    out = set()

    def walk(e, path):
        p = f"{path}/{e.tag.split('}')[1]}"
        out.add((p, tuple(sorted(e.attrib))))
        for c in e:
            walk(c, p)

    walk(root, "")
    return out


def test_xml_has_every_field_tec_reads(spoc):
    truth = _truth(spoc)
    files = sorted((spoc.sector_dir / "dv-results").glob("*_dvr.xml.gz"))
    for f in files:
        root = _xml_root(f)
        assert root.tag == f"{{{NS['dv']}}}dvTargetResults"
        n = int(root.get("planetCandidateCount"))
        assert n == len(root.findall("dv:planetResults", NS)) >= 1
        assert root.get("sectorsObserved").count("1") == 1 and root.get("sectorsObserved")[33] == "1"
        for tag in ("raDegrees", "decDegrees", "effectiveTemp", "log10Metallicity", "log10SurfaceGravity",
                    "radius", "tessMag", "pmRa", "pmDec"):
            float(root.find(f"dv:{tag}", NS).get("value"))
        ld = root.find("dv:limbDarkeningModel", NS)
        [float(ld.get(f"coefficient{i}")) for i in range(1, 5)]
        di = root.find("dv:planetResults[@planetNumber='1']/dv:differenceImageResults", NS)
        assert int(di.get("sector")) == 33 and int(di[0].get("ccdNumber")) in range(1, 5)
        ref = di.find("dv:ticReferenceCentroid", NS)
        assert float(ref[0].get("value")) > 0 and float(ref[1].get("value")) > 0
        for j in range(1, n + 1):
            pr = root.find(f"dv:planetResults[@planetNumber='{j}']", NS)
            at = pr.find("dv:allTransitsFit", NS)
            assert at.get("fullConvergence") in ("true", "false")
            for name in ("transitEpochBtjd", "planetRadiusEarthRadii", "minImpactParameter", "transitDurationHours",
                         "transitDepthPpm", "orbitalPeriodDays", "ratioPlanetRadiusToStarRadius",
                         "ratioSemiMajorAxisToStarRadius", "equilibriumTempKelvin", "effectiveStellarFlux"):
                float(at.find(f"dv:modelParameters/dv:modelParameter[@name='{name}']", NS).get("value"))
            for fit in ("oddTransitsFit", "evenTransitsFit", "trapezoidalFit"):
                assert pr.find(f"dv:{fit}/dv:modelParameters", NS) is not None
            pc = pr.find("dv:planetCandidate", NS)
            for attr in ("epochTjd", "orbitalPeriodInDays", "trialTransitPulseDurationInHours",
                         "maxMultipleEventSigma", "maxSesInMes", "observedTransitCount", "robustStatistic",
                         "chiSquare2", "chiSquareDof2", "modelChiSquare2", "modelChiSquareDof2"):
                float(pc.get(attr))
            g = pr.find("dv:ghostDiagnosticResults/dv:coreApertureCorrelationStatistic", NS)
            float(g.get("significance"))
            for cent in ("msTicCentroidOffsets", "msControlCentroidOffsets"):
                off = pr.find(f"dv:centroidResults/dv:differenceImageMotionResults/dv:{cent}/dv:meanSkyOffset", NS)
                assert float(off.get("uncertainty")) > 0
            oe = pr.find("dv:binaryDiscriminationResults/dv:oddEvenTransitDepthComparisonStatistic", NS)
            assert 0 <= float(oe.get("significance")) <= 1
    assert len(files) == len({r["tic"] for r in truth})


@pytest.mark.skipif(not SAMPLE.exists(), reason="sample sector not available")
def test_xml_tree_matches_sample(spoc):
    ours = set().union(*(_tree(_xml_root(f)) for f in (spoc.sector_dir / "dv-results").glob("*.gz")))
    theirs = set().union(*(_tree(_xml_root(f)) for f in (SAMPLE / "dv-results").glob("*.gz")))
    assert theirs <= ours


def test_dv_fits_near_injected_values(spoc):
    truth = {(r["tic"], r["planet_number"]): r for r in _truth(spoc)}
    for f in (spoc.sector_dir / "dv-results").glob("*.gz"):
        root = _xml_root(f)
        tic = int(root.get("ticId"))
        for pr in root.findall("dv:planetResults", NS):
            r = truth[(tic, int(pr.get("planetNumber")))]
            at = pr.find("dv:allTransitsFit/dv:modelParameters", NS)

            def mp(name):
                return float(at.find(f"dv:modelParameter[@name='{name}']", NS).get("value"))

            assert abs(mp("orbitalPeriodDays") - r["period"]) < 0.01 * r["period"]
            assert abs(mp("transitEpochBtjd") - r["epoch_btjd"]) < r["duration_h"] / 24
            if r["kind"] != "sinusoid":
                assert abs(mp("transitDurationHours") / r["duration_h"] - 1) < 0.5
                assert abs(mp("transitDepthPpm") / r["depth_ppm"] - 1) < 0.6


# -- FITS -----------------------------------------------------------------------------------


def _describe(path: Path) -> list:
    with fits.open(path) as h:
        return [("TCE_n" if x.name.startswith("TCE_") else x.name,
                 tuple((c.name, c.format) for c in x.columns) if hasattr(x, "columns") else (),
                 set(x.header)) for x in h]


@pytest.mark.skipif(not SAMPLE.exists(), reason="sample sector not available")
@pytest.mark.parametrize("folder", ["light-curve", "dv-time-series"])
def test_fits_layout_matches_sample(spoc, folder):
    theirs = _describe(sorted((SAMPLE / folder).glob("*.gz"))[0])
    ours = _describe(sorted((spoc.sector_dir / folder).glob("*.gz"))[0])
    assert [x[0] for x in ours[:2]] == [x[0] for x in theirs[:2]] and ours[-1][0] == theirs[-1][0]
    for (n1, c1, k1), (n2, c2, k2) in zip(theirs, ours):
        if n1 == n2:
            assert c1 == c2, n1
            assert k1 <= k2, (n1, sorted(k1 - k2))


def test_fits_contents(spoc):
    truth = _truth(spoc)
    tic = max(truth, key=lambda r: r["n_tces_on_tic"])["tic"]
    n_tce = sum(r["tic"] == tic for r in truth)
    lc = _one(spoc.sector_dir / "light-curve", f"*{tic:016d}*_lc.fits.gz")
    with fits.open(lc) as h:
        assert [x.name for x in h] == ["PRIMARY", "LIGHTCURVE", "APERTURE"]
        d, hdr = h[1].data, h[1].header
        assert 18000 < len(d) < 21000 and abs(hdr["TIMEDEL"] - 2 / 1440) < 1e-9
        for key in ("PDC_TOT", "PDC_NOI", "PDC_COR", "PDC_NOIP", "CDPP1_0"):
            assert key in hdr
        t = d["TIME"]
        assert np.isnan(t).sum() > 500  # downlink gap
        assert 2201 < np.nanmin(t) < 2202 and np.nanmax(t) - np.nanmin(t) > 27
        q = d["QUALITY"]
        assert (q & 32).sum() >= 10 and np.isnan(d["PDCSAP_FLUX"][(q & 32) > 0]).all()
        assert np.nanmedian(d["PDCSAP_FLUX"]) > 100 and np.nanmedian(d["MOM_CENTR1"]) > 1
        assert h["PRIMARY"].header["TICID"] == tic
    dvt = _one(spoc.sector_dir / "dv-time-series", f"*{tic:016d}*_dvt.fits.gz")
    with fits.open(dvt) as h:
        assert h[0].header["NUMTCES"] == n_tce and len(h) == n_tce + 2
        assert h[n_tce + 1].name == "STATISTICS"
        if n_tce > 1:  # SPOC gaps TCE_1's transits before searching for TCE_2
            assert np.isnan(h["TCE_2"].data["LC_INIT"]).sum() > np.isnan(h["TCE_1"].data["LC_INIT"]).sum()


def test_mes_matches_light_curve_noise(spoc, ftl):
    """DV MES == box depth * sqrt(valid in-transit cadences) / per-cadence noise measured on the LC."""
    for sim, folder in ((spoc, "light-curve"), (ftl, "ftl-light-curve")):
        truth = _truth(sim)
        tics = {r["tic"] for r in truth}
        checked = 0
        for tic in tics:
            rows = sorted((r for r in truth if r["tic"] == tic), key=lambda r: r["planet_number"])
            if any(r["kind"] == "sinusoid" for r in rows):
                continue
            d = fits.getdata(_one(sim.sector_dir / folder, f"*{tic:016d}*_lc.fits*"), 1)
            t, f = d["TIME"], d["PDCSAP_FLUX"]
            ok = np.isfinite(t) & np.isfinite(f)
            rel = f / np.nanmedian(f) - 1
            quiet = ok.copy()
            for r in rows:  # noise from cadences away from every eclipse (primary and phase 0.5)
                for shift in (0.0, 0.5):
                    ph = (t - r["epoch_btjd"] - shift * r["period"] + 0.5 * r["period"]) % r["period"] - 0.5 * r["period"]
                    quiet &= ~(np.abs(ph) < r["duration_h"] / 24)
            dd = np.diff(rel[quiet])
            sigma = 1.4826 * np.median(np.abs(dd - np.median(dd))) / np.sqrt(2)
            root = _xml_root(_one(sim.sector_dir / folder.replace("light-curve", "dv-results"),
                                  f"*{tic:016d}*_dvr.xml*"))
            gapped = np.zeros(t.size, bool)
            for r in rows:
                ph = (t - r["epoch_btjd"] + 0.5 * r["period"]) % r["period"] - 0.5 * r["period"]
                n_in = int((ok & ~gapped & (np.abs(ph) < r["duration_h"] / 48)).sum())
                snr = r["box_depth_ppm"] * 1e-6 * np.sqrt(n_in) / sigma
                pc = root.find(f"dv:planetResults[@planetNumber='{r['planet_number']}']/dv:planetCandidate", NS)
                mes = float(pc.get("maxMultipleEventSigma"))
                assert abs(mes / snr - 1) < 0.15, (r["kind"], tic, r["planet_number"], mes, snr)
                assert abs(r["snr_expected"] / snr - 1) < 0.15
                gapped |= np.abs(ph) < 1.5 * r["duration_h"] / 48
                checked += 1
        assert checked >= 15


# -- truth ----------------------------------------------------------------------------------


def test_truth_covers_every_tce(spoc):
    truth = pq.read_table(spoc.truth)
    assert truth.num_rows == N == spoc.n_tces
    assert truth.schema.field("tic").type == "int64" and truth.schema.field("planet_number").type == "int32"
    rows = truth.to_pylist()
    n_xml = sum(int(_xml_root(f).get("planetCandidateCount"))
                for f in (spoc.sector_dir / "dv-results").glob("*.gz"))
    assert n_xml == len(rows)
    assert len({(r["tic"], r["planet_number"]) for r in rows}) == len(rows)
    kinds = {r["kind"] for r in rows}
    assert {"planet", "multi", "eb", "eb_oddeven", "blend", "sinusoid", "modump", "skyline"} <= kinds
    assert kinds & {"half_period_of", "double_period_of"}
    for r in rows:
        if r["kind"] in ("half_period_of", "double_period_of"):
            parent = next(x for x in rows if x["tic"] == r["tic"] and x["planet_number"] == r["related_pn"])
            ratio = r["period"] / parent["period"]
            assert parent["planet_number"] < r["planet_number"] and ratio in (pytest.approx(0.5), pytest.approx(2.0))
        if r["kind"] == "modump":
            assert r["on_momentum_dump"]
        if r["kind"] == "blend":
            assert r["centroid_offset_arcsec"] > 5
        if r["kind"] == "eb":
            assert r["secondary_depth_ppm"] > 0.1 * r["depth_ppm"]
        if r["kind"] == "eb_oddeven":
            assert r["oddeven_ratio"] < 0.8
        if r["kind"] == "sinusoid":
            assert r["period"] < 5
    sky = pq.read_table(spoc.truth_skyline).to_pylist()
    assert len(sky) >= 2 and len(sky[0]["tics"]) == sum(r["in_skyline"] for r in rows) >= 2
    assert {0, 1, 2, 3, 4} <= {r["expected_known_flag"] for r in rows}


def _same_table(a, b) -> bool:
    """Table equality with NaN == NaN (pyarrow's equals treats NaNs as different)."""
    if a.schema != b.schema or a.num_rows != b.num_rows:
        return False
    for name in a.column_names:
        x, y = a[name].to_numpy(zero_copy_only=False), b[name].to_numpy(zero_copy_only=False)
        same = np.array_equal(x, y, equal_nan=True) if x.dtype.kind == "f" else bool((x == y).all())
        if not same:
            return False
    return True


def test_same_seed_same_truth(tmp_path, spoc):
    again = simulate_sector(tmp_path / "again", n_tces=N, seed=3, workers=1)  # serial vs process pool
    assert _same_table(pq.read_table(again.truth), pq.read_table(spoc.truth))
    a = sorted((spoc.sector_dir / "dv-results").glob("*"))
    b = sorted((again.sector_dir / "dv-results").glob("*"))
    assert [x.name for x in a] == [x.name for x in b] and a[0].read_bytes() == b[0].read_bytes()
    other = simulate_sector(tmp_path / "other", n_tces=N, seed=5)
    assert not _same_table(pq.read_table(other.truth), pq.read_table(spoc.truth))


# -- catalogues ------------------------------------------------------------------------------


def test_toi_csv_parses_with_csv_module(spoc):
    lines = spoc.toi_csv.read_text().splitlines()
    assert not lines[0].startswith("Source Pipeline") and lines[4].startswith("Source Pipeline,")
    rows = list(csv.DictReader(io.StringIO("\n".join(lines[4:]))))
    assert all(len(r) == 43 and None not in r for r in rows)
    assert any("," in r["Public Comment"] for r in rows) and any('"' in r["Public Comment"] for r in rows)
    assert {r["TOI Disposition"] for r in rows} <= {"PC", "CP", "KP", "FP"}
    truth = _truth(spoc)
    by_toi = {f"{r['toi']:.2f}": r for r in truth if np.isfinite(r["toi"])}
    assert by_toi
    for r in rows:
        t = by_toi.get(r["Full TOI ID"])
        if t:  # epoch in BTJD, same ephemeris
            p, e = float(r["Orbital Period Value"]), float(r["Orbital Epoch Value"])
            assert e < 3000 and int(r["TIC"]) == t["tic"] and abs(p / t["period"] - 1) < 1e-3
            n = round((t["epoch_btjd"] - e) / p)
            assert abs(e + n * p - t["epoch_btjd"]) < 0.05


def test_known_planets_csv(spoc):
    text = spoc.known_planets_csv.read_text().splitlines()
    assert text[0].startswith("#")
    rows = list(csv.DictReader(line for line in text if not line.startswith("#")))
    assert rows and all(r["tic_id"].startswith("TIC ") for r in rows)
    truth = {r["known_planet_name"]: r for r in _truth(spoc) if r["known_planet_name"]}
    assert truth and len(rows) > len(truth)  # some entries are on TICs without a TCE
    for r in rows:
        t = truth.get(r["pl_name"])
        if t:
            p, t0 = float(r["pl_orbper"]), float(r["pl_tranmid"]) - 2457000
            assert float(r["pl_tranmid"]) > 2.4e6 and t0 < t["epoch_btjd"] - 10 * p
            n = round((t["epoch_btjd"] - t0) / p)
            assert abs(t0 + n * p - t["epoch_btjd"]) < t["duration_h"] / 24 / 2


# -- PDFs -----------------------------------------------------------------------------------


def test_dv_report_difference_image_page(spoc):
    truth = _truth(spoc)
    tic = max(truth, key=lambda r: r["n_tces_on_tic"])["tic"]
    pdf = PdfReader(_one(spoc.sector_dir / "dv-reports", f"*{tic:016d}-00421_dvr.pdf"))
    labels = pdf.page_labels
    texts = [p.extract_text() for p in pdf.pages]
    first = next(i for i, t in enumerate(texts) if t.startswith("DV SUMMARY"))
    assert labels[:first] == ["i", "ii", "iii"][:first] and first >= 2
    assert texts[first - 1].strip().splitlines()[-1] == labels[first - 1]  # the line before SUMMARY
    for r in (r for r in truth if r["tic"] == tic):
        key = f"planet-{r['planet_number']:02d}/difference-image/{tic:016d}-{r['planet_number']:02d}-difference-image-33"
        pages = [i for i, t in enumerate(texts) if key in t]
        assert len(pages) == 1
        lines = texts[pages[0]].splitlines()
        k = next(i for i, line in enumerate(lines) if key in line)
        label = int(lines[k + 5])
        assert pages[0] == first + label - 1 and labels[pages[0]] == str(label)
    for pn in range(1, sum(r["tic"] == tic for r in truth) + 1):
        dvs = PdfReader(_one(spoc.sector_dir / "dv-reports", f"*{tic:016d}-{pn:02d}-00421_dvs.pdf"))
        assert len(dvs.pages) == 1 and f"Planet Candidate {pn}" in dvs.pages[0].extract_text()
    dvm = PdfReader(_one(spoc.sector_dir / "dv-reports", f"*{tic:016d}-00421_dvm.pdf"))
    assert "Mini-Report" in dvm.pages[0].extract_text()


def test_target_pixel_file(ftl):
    tp = next((ftl.sector_dir / "ftl-target-pixel").iterdir())
    with fits.open(tp) as h:
        assert h[1].name == "PIXELS"
        for col in ("TIME", "CADENCENO", "FLUX", "FLUX_BKG", "QUALITY"):
            assert col in h[1].columns.names
        assert "1CRV4P" in h[1].header and "2CRV4P" in h[1].header
        assert h[1].data["FLUX"].ndim == 3
