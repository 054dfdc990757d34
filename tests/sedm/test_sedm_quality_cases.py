"""SEDM quality: the runbook's grades 0-5 as a function, and on the simulated night the grade of
every standard and science frame equal to the case the simulator injected (outside 3, faint 4,
guider_failed and neighbour 5, the others 0; the standard never 5)."""

from __future__ import annotations


from steps.sedm.science.quality import acceptable, grade


def g(**kw):
    base = {"kind": "science", "position_source": "wcs", "guider_ok": True, "in_ifu": True,
            "negative_fraction": 0.05}
    return grade(**{**base, **kw})[0]


def test_the_runbook_scheme():
    assert g() == 0
    assert g(in_ifu=False, position_source="brightest") == 3
    assert g(negative_fraction=0.35) == 4
    assert g(negative_fraction=0.20) == 0  # "more than 20 %"
    assert g(guider_ok=False, position_source="brightest") == 5
    assert g(guider_ok=False, position_source="brightest", recovered=True) == 1
    assert g(guider_ok=False, position_source="centroid") == 0  # a hand centroid clears 5
    # 3 cannot be fixed: it wins over 4; the unknown position (5) wins over 4
    assert g(in_ifu=False, position_source="brightest", negative_fraction=0.5) == 3
    assert g(guider_ok=False, position_source="brightest", negative_fraction=0.5) == 5
    # standards use the brightest spaxel: never 5 (nor 3)
    assert g(kind="standard", guider_ok=False, position_source="brightest") == 0
    assert g(kind="standard", guider_ok=False, position_source="brightest", negative_fraction=0.4) == 4
    assert [acceptable(q) for q in range(6)] == [True, True, True, False, False, False]


def test_grades_equal_the_injected_cases(sedm_run):
    graded = {r["filename"]: r for r in sedm_run.rows("quality")}
    truth = [r for r in sedm_run.sim.table("frames")
             if r["camera"] == "IFU" and r["imgtype"] in ("standard", "science")]
    assert {r["filename"] for r in truth} == set(graded)
    got = {t["filename"]: (t["case"] or t["imgtype"], graded[t["filename"]]["quality"]) for t in truth}
    want = {t["filename"]: (t["case"] or t["imgtype"], t["quality"]) for t in truth}
    assert got == want
    assert {t["case"] for t in truth} >= {"outside", "faint", "guider_failed", "neighbour"}
    for t in truth:
        r = graded[t["filename"]]
        assert r["acceptable"] == (r["quality"] <= 2)
        if t["imgtype"] == "standard":
            assert r["quality"] != 5
