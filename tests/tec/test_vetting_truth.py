"""TEC steps 12-21 on one simulated sector, scored against the simulator's truth.

One sector of ~120 TCEs is simulated and run through all 21 steps once (module fixture, the
embedded runner with 2 workers); the tests read the ranking, the per-step datasets and the
products.  The rules are the published ones (tec.md step 19): nothing here is tuned to the
simulator.
"""

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from pypdf import PdfReader

from steps.tec.pipeline import TEC

from steps.tec.science.sweet import sweet_flag, sweet_test
from steps.tec.vetted import pdc_light_curve

@pytest.fixture(scope="module")
def run(tec_run, tec_sim):
    truth = tec_sim[2]
    ranking = {(r["tic"], r["planet_number"]): r for r in pq.read_table(tec_run / "ranking.parquet").to_pylist()}
    return tec_run, truth, ranking


def dataset(out, step):
    return {(r["tic"], r["planet_number"]): r for r in ds.dataset(out / step, format="parquet").to_table().to_pylist()}


def ranked(truth, ranking, kinds):
    return [k for k, t in truth.items() if t["kind"] in kinds and ranking[k]["tier"] is not None]


def test_ranking_table_covers_every_tce_with_the_declared_schema(run):
    out, truth, ranking = run
    table = pq.read_table(out / "ranking.parquet")
    assert table.schema.equals(pa.schema([
        ("tic", pa.int64()), ("planet_number", pa.int32()), ("tier", pa.int8()), ("rank", pa.float64()),
        ("known_flag", pa.int8()), ("flags", pa.list_(pa.string())), ("triage_reason", pa.string())]))
    assert set(ranking) == set(truth)
    for r in ranking.values():
        assert (r["tier"] is None) == (r["rank"] is None)
        assert (r["triage_reason"] == "pass") == (r["tier"] is not None)
        if r["tier"] is not None:
            assert 0.0 <= r["rank"] <= 1.0
            assert (r["tier"] == 1) == (not r["flags"])


def test_tier_files_match_the_ranking(run):
    out, _, ranking = run
    for tier in (1, 2, 3):
        lines = (out / f"spoc_ranking_Tier{tier}_sector33.txt").read_text().splitlines()
        rows = [line.split() for line in lines]
        assert {(int(r[0]), int(r[1])) for r in rows} == {k for k, r in ranking.items() if r["tier"] == tier}
        ranks = [float(r[2]) for r in rows]
        assert ranks == sorted(ranks, reverse=True)
        assert all(int(r[3]) == ranking[(int(r[0]), int(r[1]))]["known_flag"] for r in rows)
        assert all(len(r) == {1: 4, 2: 6, 3: 6}[tier] for r in rows)


def test_planets_with_mes_above_10_are_tier_1_or_2(run):
    _, truth, ranking = run
    planets = [k for k in ranked(truth, ranking, ("planet", "multi")) if truth[k]["mes_dv"] >= 10]
    assert len(planets) >= 20
    good = np.mean([ranking[k]["tier"] in (1, 2) for k in planets])
    assert good >= 0.9, [(k, ranking[k]["flags"]) for k in planets if ranking[k]["tier"] == 3]


def test_eclipsing_binaries_with_a_significant_secondary_are_tier_3(run):
    _, truth, ranking = run
    ebs = [k for k in ranked(truth, ranking, ("eb",))
           if truth[k]["snr_expected"] * truth[k]["secondary_depth_ppm"] / truth[k]["box_depth_ppm"] >= 10]
    assert len(ebs) >= 3
    tier3 = np.mean([ranking[k]["tier"] == 3 for k in ebs])
    assert tier3 >= 0.9, [(k, ranking[k]["flags"]) for k in ebs if ranking[k]["tier"] != 3]
    assert all(any(f.startswith("HasSec") and not f.endswith("?") for f in ranking[k]["flags"])
               for k in ebs if ranking[k]["tier"] == 3)


def test_short_period_sinusoids_fail_sweet(run):
    out, truth, ranking = run
    sinusoids = [k for k, t in truth.items() if t["kind"] == "sinusoid" and t["period"] < 5]
    assert sinusoids
    for k in ranked(truth, ranking, ("sinusoid",)):
        if truth[k]["period"] < 5:
            assert "Sweet" in ranking[k]["flags"], (k, ranking[k])
    # Most sinusoids fail the flux triage before step 13, so SWEET is also run here on every one.
    # The published test divides the PDC flux by a 4th-order polynomial only: a star whose slow
    # variability (the simulator draws up to 3000 ppm at 4-30 d) dwarfs its sinusoid keeps a
    # scatter the sinusoid cannot explain, as in the original, so a majority is asked for.
    lcs = dataset(out, "resample")
    ratios = []
    for k in sinusoids:
        time, flux, valid = pdc_light_curve(lcs[k], np.array([]))
        ratios.append(sweet_test(time[valid], flux[valid], truth[k]["dv_period"]).ratio)
    assert np.mean(sweet_flag(ratios)) >= 0.5, ratios
    # and it passes the planets it tests
    sweet = dataset(out, "sweet")
    planets = [k for k in sweet if truth[k]["kind"] in ("planet", "multi")]
    assert planets and np.mean([not sweet_flag(sweet[k]["sweet_ratio"]) for k in planets]) >= 0.95
    assert max(ratios) < 1.0 <= np.median([sweet[k]["sweet_ratio"] for k in planets]) + 0.01


def test_blends_get_the_centroid_flag(run):
    _, truth, ranking = run
    blends = ranked(truth, ranking, ("blend",))
    assert blends
    for k in blends:
        assert {"CenOOT", "CenTIC"} & set(ranking[k]["flags"]), (k, truth[k]["centroid_offset_arcsec"], ranking[k])
    planets = ranked(truth, ranking, ("planet", "multi"))
    assert np.mean([not {"CenOOT", "CenTIC"} & set(ranking[k]["flags"]) for k in planets]) >= 0.9


def test_momentum_dump_events_get_the_momentum_dump_flag(run):
    out, truth, ranking = run
    modump = dataset(out, "modump_check")
    events = [k for k, t in truth.items() if t["on_momentum_dump"] and k in modump]
    assert events
    for k in events:
        assert modump[k]["modump_fraction"] >= 0.5, (k, modump[k])
        # the test uses each transit's SES-peak time, which wanders within the search window for
        # weak single events: the flag is asked of the events with MES >= 10
        if truth[k]["mes_dv"] >= 10:
            assert modump[k]["modump_fraction"] > 0.9, (k, modump[k])
            assert "MoDump" in ranking[k]["flags"]
    others = [k for k in modump if not truth[k]["on_momentum_dump"]]
    assert np.mean(["MoDump" not in ranking[k]["flags"] for k in others]) >= 0.95


def test_known_planets_and_tois_get_the_known_flag(run):
    _, truth, ranking = run
    assert any(t["known_planet_name"] for t in truth.values()) and any(np.isfinite(t["toi"]) for t in truth.values())
    for k, t in truth.items():
        got, want = ranking[k]["known_flag"], t["expected_known_flag"]
        if t["known_planet_name"]:
            assert got == 2, (k, t["known_planet_name"])
        elif np.isfinite(t["toi"]):
            assert got == 1, (k, t["toi"])
        elif want == 3:
            # a TOI elsewhere on the TIC: 3, or -1 when that TOI was compared with this TCE and not
            # federated (rank_tces.py gives -1 to a TCE matched to a TOI without federation)
            assert got in (3, -1), (k, got)
        else:
            assert got == want, (k, got, want)


def test_every_ranked_tce_has_a_report_and_every_tic_a_tev_file(run):
    out, _, ranking = run
    reports = dataset(out, "reports")
    assert set(reports) == {k for k, r in ranking.items() if r["tier"] is not None}
    for k, r in reports.items():
        assert r["path"] == f"pdfs/tec-s0033-{k[0]:016d}-{k[1]:02d}.pdf"
        assert r["n_pages"] >= 5 and "DV summary (_dvs.pdf)" not in r["missing"]
    k, r = next(iter(sorted(reports.items())))
    reader = PdfReader(out / r["path"])
    texts = [p.extract_text() or "" for p in reader.pages]
    assert any(f"Tier {ranking[k]['tier']}" in t for t in texts)
    tev = {r["tic"]: r for r in ds.dataset(out / "merge4tev", format="parquet").to_table().to_pylist()}
    assert set(tev) == {k[0] for k in reports}
    for tic, r in tev.items():
        assert r["path"] == f"tevpdfs/tec-s0033-{tic:016d}-00001_dvm.pdf" and (out / r["path"]).is_file()
        assert r["n_reports"] == sum(1 for k in reports if k[0] == tic)


def test_per_tce_products_in_the_original_layout(run):
    out, _, ranking = run
    k = next(k for k, r in sorted(ranking.items()) if r["tier"] is not None)
    folder = out / "S33" / f"{k[0] // 1000:04d}"
    for name in (f"tess_{k[0]:016d}_{k[1]:02d}_med-modshift.pdf", f"tess_{k[0]:016d}_{k[1]:02d}-modshift.pdf",
                 f"twexo_{k[0]:016d}.pdf"):
        assert (folder / name).is_file(), name
    assert not list(out.rglob("*.tmp-*"))


def test_run_report_has_the_tier_tables(run):
    out, _, ranking = run
    html = TEC.report(out)
    for tier in (1, 2, 3):
        assert f"Tier {tier} (" in html
    k = next(k for k, r in ranking.items() if r["tier"] is not None)
    assert f'href="pdfs/tec-s0033-{k[0]:016d}-{k[1]:02d}.pdf"' in html
