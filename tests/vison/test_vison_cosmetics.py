"""The COSMETICS00 Task against the simulator's truth: the injected hot and cold pixels masked (at
least 95 %, at most 1 % of the masked false), the merged mask per CCD as
``EUC_MASK_{BLOCK}_CCD{n}_SN_{serial}.fits`` found in the calibration library by block, CCD and
serial (the file the Task wrote: no copy, no link), the ``defects`` dataset, the flags; a test
without its flats gives the dark mask and MISSDATA; the science on a synthetic bias stack."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from astropy.io import fits
from conftest import run_tests

from steps.vison import elvis, scoring
from steps.vison.calibrations import CALIBRATIONS
from steps.vison.masters import read_quadrants
from steps.vison.science import cosmetics, flat
from steps.vison.simulate import SERIALS

BLOCK = "NAB"


def run_cosmetics(day, out):
    return run_tests(day, out, ["COSMETICS00"], block=BLOCK)


@pytest.fixture(scope="module")
def cosmetics_run(vison_flats, tmp_path_factory):
    day, truth = vison_flats
    return run_cosmetics(day, tmp_path_factory.mktemp("vison_cosmetics") / "run"), day, truth


def masks_rows(out) -> list[dict]:
    import pyarrow.dataset as ds

    return ds.dataset(out / "cosmetics_masks", format="parquet").to_table().to_pylist()


def mask_file(out, ccd: int):
    return out / "D00" / "COSMETICS00" / "products" / f"EUC_MASK_{BLOCK}_CCD{ccd}_SN_{SERIALS[ccd - 1]}.fits"


def test_hot_and_cold_pixels_masked_with_few_false(cosmetics_run):
    out, day, truth = cosmetics_run
    defects = truth.table("defects")
    rows_, cols = day.geometry.region("image")
    injected = masked = false = hit = 0
    for ccd in elvis.CCDS:
        quads = read_quadrants(mask_file(out, ccd), day.geometry)
        for q in elvis.QUADRANTS:
            mask = quads[q][rows_, cols] > 0
            mine = [d for d in defects if d["ccd"] == ccd and d["quadrant"] == q]
            pixels = {(d["y"], d["x"]) for d in mine if d["kind"] in ("hot_pixel", "cold_pixel")}
            columns = {d["x"] for d in mine if d["kind"].endswith("_column")}
            truth_mask = np.zeros(mask.shape, dtype=bool)
            truth_mask[tuple(np.array(sorted(pixels)).T)] = True
            truth_mask[:, sorted(columns)] = True
            injected += len(pixels)
            hit += sum(bool(mask[y, x]) for y, x in pixels)
            masked += int(mask.sum())
            false += int((mask & ~truth_mask).sum())
            assert mask[:, sorted(columns)].all(), (ccd, q)  # the hot and cold columns, whole
    assert hit >= 0.95 * injected, (hit, injected)
    assert false <= 0.01 * masked, (false, masked)
    assert injected > 150 and hit == injected and false == 0  # measured: 192 of 192, none false


def test_defects_dataset_by_kind(cosmetics_run):
    out, day, truth = cosmetics_run
    found = scoring.contract(out, "D00", "COSMETICS00", "defects")
    for kind in ("hot_pixel", "cold_pixel", "hot_column", "cold_column"):
        true = {(d["ccd"], d["quadrant"], d["x"], d["y"]) for d in truth.table("defects") if d["kind"] == kind}
        mine = {(d["ccd"], d["quadrant"], d["x"], d["y"]) for d in found if d["kind"] == kind}
        assert len(true & mine) >= 0.95 * len(true), (kind, len(true & mine), len(true))
        assert len(mine - true) <= 0.01 * len(mine), (kind, sorted(mine - true)[:10])
    assert {d["kind"] for d in found} <= {"hot_pixel", "cold_pixel", "hot_column", "cold_column"}
    per_quadrant = {(r["ccd"], r["quadrant"]): r for r in masks_rows(out)}
    assert sum(r["n_merge"] for r in per_quadrant.values()) > 0 and len(per_quadrant) == 12
    assert all(r["ncols_merge"] == 2 and r["n_bias_frames"] == r["n_flat_frames"] == 5 for r in per_quadrant.values())


def test_masks_in_the_library_by_block_ccd_and_serial(cosmetics_run):
    out, day, truth = cosmetics_run
    from astroflow.calib import Library

    lib = Library.for_run(out)
    masks = lib.list("COSMETICS_MASK")
    assert sorted((c.attributes["block"], c.attributes["ccd"], c.attributes["serial"]) for c in masks) == [
        (BLOCK, c, SERIALS[c - 1]) for c in elvis.CCDS]
    when = max(c.dateobs for c in masks) + dt.timedelta(days=2)
    for ccd in elvis.CCDS:
        chosen = lib.select(CALIBRATIONS["COSMETICS_MASK"], when, {"block": BLOCK, "ccd": ccd,
                                                                    "serial": SERIALS[ccd - 1]})
        path = mask_file(out, ccd)
        assert chosen.record.path == str(path.resolve()) and not path.is_symlink()
    assert sorted(p.name for p in out.rglob("EUC_MASK_*")) == sorted(mask_file(out, c).name for c in elvis.CCDS)
    with fits.open(mask_file(out, 1)) as hdul:
        assert [h.name for h in hdul] == ["PRIMARY", "MASK", "DARK", "FLAT"]
        head = hdul["MASK"].header
        assert head["BLOCKID"] == BLOCK and head["PIPESTEP"] == "cosmetics_masks" and head["NBIAS"] == 5
        assert head["NFLAT"] == 5 and hdul["MASK"].data.shape == day.geometry.shape
        assert set(np.unique(hdul["MASK"].data)) == {0, cosmetics.DARK_PIXEL, cosmetics.DARK_COLUMN,
                                                     cosmetics.FLAT_PIXEL, cosmetics.FLAT_COLUMN}
    rows = [r for r in scoring.contract(out, "D00", "COSMETICS00", "flags")]
    raised = {n for r in rows for n in r["flag_names"]}
    assert len(rows) == 12 and not raised & {"MISSDATA", "BADDATA", "SUBTASKCRASH", "POORQUALDATA"}, raised


def test_without_its_flats_the_dark_mask_and_missdata(tmp_path):
    from steps.vison.simulate import simulate_day

    day = simulate_day(tmp_path / "sim", tests=("COSMETICS00",), max_frames=5)  # the 5 biases only
    out = run_cosmetics(day, tmp_path / "run")
    data = fits.getdata(mask_file(out, 2), "MASK")
    assert set(np.unique(data)) == {0, cosmetics.DARK_PIXEL, cosmetics.DARK_COLUMN}
    for r in scoring.contract(out, "D00", "COSMETICS00", "flags"):
        text = " ".join(r["reasons"])
        assert "MISSDATA" in r["flag_names"] and "1 fluence levels" in text, r


def test_dark_defects_on_a_synthetic_bias_stack():
    rng = np.random.default_rng(11)
    shape = (200, 150)
    level = np.full(shape, 3.0, dtype=np.float32) + np.linspace(0, 2, shape[1], dtype=np.float32)  # a slope
    level[:, 60] += 4.0  # a hot column, below vison's 50 ADU and far above the noise of 5 frames
    level[(7, 100, 190), (3, 80, 140)] = (8.0, 20.0, 300.0)
    from steps.vison.science.bias import master

    stack = master((level + rng.normal(0, 1.2, (5, *shape))).astype(np.float32))
    mask, found = cosmetics.dark_defects(stack, binsize=50)  # bins small enough for the model to take the slope
    assert sorted((x, y, k) for x, y, k, _ in found) == [(3, 7, "hot_pixel"), (60, -1, "hot_column"),
                                                         (80, 100, "hot_pixel"), (140, 190, "hot_pixel")]
    merged = cosmetics.merge(mask, np.where(np.arange(shape[1]) == 10, flat.COLUMN, 0)[None].repeat(shape[0], 0))
    assert merged[7, 3] == cosmetics.DARK_PIXEL and merged[0, 60] == cosmetics.DARK_COLUMN
    assert (merged[:, 10] == cosmetics.FLAT_COLUMN).all() and np.count_nonzero(merged) == 3 + 2 * shape[0]


def test_run_report_counts_defects_per_ccd_and_kind(cosmetics_run):
    from steps.vison.report import run_report_section

    out, _, _ = cosmetics_run
    page = run_report_section(out)
    section = page[page.index("D00 / COSMETICS00"):]
    found = scoring.contract(out, "D00", "COSMETICS00", "defects")
    kinds = sorted({d["kind"] for d in found})
    assert "defects per CCD and kind" in section and all(f"<th>{k}</th>" in section for k in kinds)
    for ccd in elvis.CCDS:
        counts = "".join(f'<td class="num">{sum(1 for d in found if d["ccd"] == ccd and d["kind"] == k)}</td>'
                         for k in kinds)
        assert f'<td class="num">{ccd}</td>{counts}' in section
