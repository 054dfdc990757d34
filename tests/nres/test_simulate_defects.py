"""Defects appear as the truth lists them, leave every other frame byte for byte the same (which
also shows that a seed gives the same bytes whatever else is simulated), and bad requests fail."""

from __future__ import annotations

import math

import pytest
from astroflow.arrivals import fits_complete
from astropy.io import fits

from steps.nres.simulate import DEFECTS, simulate_nights


def test_every_defect_is_listed_with_what_the_pipeline_must_do(nres_sim_defects):
    rows = nres_sim_defects.table("defects")
    assert {r["defect"] for r in rows} == set(DEFECTS)
    assert all(r["expected"] for r in rows)
    frames = {r["filename"]: r for r in nres_sim_defects.table("frames")}
    for r in rows:
        for name in r["filename"].split():
            if name != "targets.csv":
                assert (nres_sim_defects.root / frames[name]["path"]).exists(), name


def _one(sim, defect, suffix=None):
    rows = [r for r in sim.table("frames") if r["defect"] == defect and (suffix is None or r["filename"][-11:-8] == suffix)]
    assert len(rows) == 1, rows
    return sim.root / rows[0]["path"]


def test_truncated_no_objects_and_wrong_shape(nres_sim_defects):
    assert fits_complete(_one(nres_sim_defects, "truncated")) is not None
    no_objects = _one(nres_sim_defects, "no_objects")
    with fits.open(no_objects) as h:
        assert h[0].header["OBSTYPE"] == "LAMPFLAT"
        assert "OBJECTS" not in h[0].header and "OBJECTS" not in h[1].header
    with fits.open(_one(nres_sim_defects, "wrong_shape")) as h:
        assert h[1].data.shape == (1000, 1008)
        assert h[1].header["BIASSEC"] == "[1025:1056,1:1024]" and h[1].header["TRIMSEC"] == "[1:1024,1:1024]"


def test_ignored_frames(nres_sim_defects):
    with fits.open(_one(nres_sim_defects, "ignored_frames", "g00")) as h:
        assert h[0].header["OBSTYPE"] == "GUIDE" and h[1].data.shape == (256, 256)
    with fits.open(_one(nres_sim_defects, "ignored_frames", "x00")) as h:
        assert h[0].header["OBSTYPE"] == "LAMPFLAT" and h[0].header["OBJECTS"] == "tung&tung&none"
        assert (h[1].data == 65535).sum() > 10000  # an engineering lamp test: saturated


def test_two_flats_on_the_last_night(nres_sim_defects):
    flats = [r for r in nres_sim_defects.table("frames")
             if r["day_obs"] == "20240123" and r["obstype"] == "LAMPFLAT" and r["objects"] == "none&tung&tung"]
    assert len(flats) == 2
    numbers = sorted(r["framenum"] for r in nres_sim_defects.table("frames") if r["day_obs"] == "20240123")
    assert len(numbers) == numbers[-1] - 3  # three frame numbers were lost


def test_targets_csv_defects(nres_sim_defects):
    lines = (nres_sim_defects.root / "targets.csv").read_text().splitlines()
    rows = {line.split(",")[0]: line.split(",") for line in lines[1:]}
    assert "HD37124" not in rows and len(rows["HD30495"]) == 16
    observed = [r for r in nres_sim_defects.table("frames") if r["object"] == "HD37124"]
    assert {r["day_obs"] for r in observed} == {"20240122", "20240123"}
    assert all(r["rv_m_s"] == pytest.approx(-23074.5) for r in observed)
    stars = {s["name"]: s for s in nres_sim_defects.table("stars")}
    assert not stars["HD37124"]["in_targets_csv"] and stars["HD30495"]["malformed_row"]


def test_other_frames_are_the_same_bytes_with_and_without_defects(nres_sim, nres_sim_defects):
    clean = {p.relative_to(nres_sim.root): p for p in nres_sim.root.glob("cpt/*/*/raw/*")}
    faulty = {p.relative_to(nres_sim_defects.root): p for p in nres_sim_defects.root.glob("cpt/*/*/raw/*")}
    common = set(clean) & set(faulty)
    assert len(common) == len(clean) - 3  # all but the lost flats
    for rel in common:
        assert clean[rel].read_bytes() == faulty[rel].read_bytes(), rel
    truth = {r["filename"]: r for r in nres_sim.table("frames")}
    for r in nres_sim_defects.table("frames"):
        if r["filename"] in truth:
            assert _known(r) == _known(truth[r["filename"]])


def _known(row: dict) -> dict:
    return {k: v for k, v in row.items() if not (isinstance(v, float) and math.isnan(v))}


def test_bad_requests_fail(tmp_path):
    with pytest.raises(ValueError, match="unknown NRES site"):
        simulate_nights(tmp_path, sites=("ogg",))
    with pytest.raises(ValueError, match="unknown defect"):
        simulate_nights(tmp_path, defects=("gremlins",))
    with pytest.raises(ValueError, match="two_flats"):
        simulate_nights(tmp_path, nights=1, defects=("two_flats",))
    assert not any(tmp_path.iterdir())
