"""The truth tables agree with the simulated frames: offsets, read noise, gain, dark current and
hot pixels, cold pixels, PRNU, charge injection and trap dipoles are recoverable from the files
(read with the pipeline's reader) within a few per cent; the truth tables are consistent."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest

from steps.vison import elvis
from steps.vison.elvis import QUADRANTS


def _frames(day, truth, test, ccd=None, **where):
    rows = [r for r in truth.table("frames") if r["test"] == test and (ccd is None or r["ccd"] == ccd)
            and all(r[k] == v for k, v in where.items())]
    return [(r, elvis.read_frame(day.day_folder / r["file"])) for r in rows]


def _flats(day, truth, ccd, fraction):
    """PTC01 frames of one CCD at ``fraction`` of the nominal 200 ke- full well (the lamp drifts < 2 %)."""
    return [(r, f) for r, f in _frames(day, truth, "PTC01", ccd) if abs(r["fluence_e"] / 2e5 - fraction) < 0.02 * fraction]


def _quads(truth):
    return {(r["ccd"], r["quadrant"]): r for r in truth.table("quadrants")}


def _signal(frame, q):
    """Image minus the prescan's mean, float."""
    return frame.region(q, "image").astype(np.float64) - frame.region(q, "prescan").mean()


def test_truth_tables_are_consistent(vison_day):
    day, truth = vison_day
    quads = truth.table("quadrants")
    assert len(quads) == 12 and {(r["ccd"], r["quadrant"]) for r in quads} == {(c, q) for c in (1, 2, 3) for q in QUADRANTS}
    defects, traps = truth.table("defects"), truth.table("traps")
    for r in quads:
        mine = [d for d in defects if (d["ccd"], d["quadrant"]) == (r["ccd"], r["quadrant"])]
        assert r["n_hot"] == sum(d["kind"] == "hot_pixel" for d in mine) >= 4
        assert r["n_cold"] == sum(d["kind"] == "cold_pixel" for d in mine) >= 4
        assert {d["kind"] for d in mine if d["y"] == -1} == {"hot_column", "cold_column"}
        assert r["n_traps"] == sum((t["ccd"], t["quadrant"]) == (r["ccd"], r["quadrant"]) for t in traps)
        assert r["nl_coeffs"][:2] == [0.0, 1.0] and 0 < r["max_nl_pct"] < 2
        assert 0 < r["fwc_adu"] <= 65535 - r["offset_adu"]
    g = day.geometry
    assert all(0 <= t["x"] < g.image_cols and 1 <= t["y"] < g.image_rows - 1 and 0.3 <= t["pc"] <= 1 for t in traps)
    assert len({(t["ccd"], t["quadrant"], t["x"], t["y"]) for t in traps}) == len(traps)


def test_offsets_and_read_noise_from_the_biases(vison_day):
    day, truth = vison_day
    quads = _quads(truth)
    noise = defaultdict(list)
    for row, frame in _frames(day, truth, "BIAS01"):
        for i, q in enumerate(QUADRANTS):
            pre, over = frame.region(q, "prescan").astype(float), frame.region(q, "overscan").astype(float)
            assert pre.mean() == pytest.approx(row["offsets_adu"][i], abs=0.1)
            assert over.mean() == pytest.approx(row["offsets_adu"][i], abs=0.1)
            assert _signal(frame, q).mean() == pytest.approx(0.0, abs=0.5)  # bias image = offset
            noise[frame.ccd, q].append(np.concatenate([pre.ravel() - pre.mean(), over.ravel() - over.mean()]).std())
    for key, values in noise.items():
        assert np.mean(values) == pytest.approx(quads[key]["ron_adu"], rel=0.02), key


def test_gain_from_ptc_pairs(vison_day):
    day, truth = vison_day
    quads = _quads(truth)
    for ccd in (1, 2, 3):
        by_level = defaultdict(list)
        for row, frame in _frames(day, truth, "PTC01", ccd):
            by_level[row["exptime"]].append(frame)
        for q in QUADRANTS:
            ron2 = quads[ccd, q]["ron_adu"] ** 2
            signal, variance = [], []
            for frames in by_level.values():
                for a, b in zip(frames[0::2], frames[1::2]):
                    sa, sb = _signal(a, q), _signal(b, q)
                    level = np.median((sa + sb) / 2)
                    if 1e3 < level < 1.5e4:
                        signal.append(level)
                        variance.append(np.var(sa - sb) / 2 - ron2)
            slope = np.sum(np.array(signal) * variance) / np.sum(np.square(signal))
            assert 1 / slope == pytest.approx(quads[ccd, q]["gain_e_per_adu"], rel=0.03), (ccd, q)


def test_dark_current_hot_and_cold_pixels(vison_day):
    day, truth = vison_day
    quads = _quads(truth)
    defects = truth.table("defects")
    darks = _frames(day, truth, "DARK01", 1)
    flats = [f for _, f in _flats(day, truth, 1, 0.5)]
    dark_s = darks[0][0]["exptime"] + 72.0
    for q in QUADRANTS:
        gain = quads[1, q]["gain_e_per_adu"]
        dark = np.median([_signal(f, q) for _, f in darks], axis=0)
        flat = np.mean([_signal(f, q) for f in flats], axis=0)
        level = np.median(flat)
        for d in (d for d in defects if d["ccd"] == 1 and d["quadrant"] == q):
            if d["kind"] == "hot_pixel":
                assert dark[d["y"], d["x"]] == pytest.approx(d["value"] * dark_s / gain, rel=0.1, abs=5)
            elif d["kind"] == "cold_pixel":
                assert flat[d["y"], d["x"]] / level == pytest.approx(d["value"], abs=0.03)
            elif d["kind"] == "hot_column":
                assert np.median(dark[:, d["x"]]) == pytest.approx(0.3 * dark_s / gain, rel=0.15)


def test_prnu_from_flats(vison_day):
    day, truth = vison_day
    quads = _quads(truth)
    defects = truth.table("defects")
    rows = _flats(day, truth, 2, 0.5)
    assert len(rows) == 10
    for q in QUADRANTS:
        signal = np.array([_signal(f, q) for _, f in rows])
        mean = signal.mean(0)
        ok = np.ones(mean.shape, bool)
        for d in (d for d in defects if d["ccd"] == 2 and d["quadrant"] == q):
            if d["y"] == -1:
                ok[:, d["x"]] = False
            else:
                ok[d["y"], d["x"]] = False
        noise2 = (signal - mean).var(0)[ok].mean() / len(rows)
        rel = (mean[ok] / np.median(mean[ok]))
        prnu = np.sqrt(rel.var() - noise2 / np.median(mean[ok]) ** 2) * 100
        assert prnu == pytest.approx(quads[2, q]["prnu_pct"], rel=0.1)


def test_injection_follows_ig1(vison_day):
    day, truth = vison_day
    quads = _quads(truth)
    frames = {(r["ig1_v"], r["id_dly"]): f for r, f in _frames(day, truth, "CHINJ01", 3)}
    for q in QUADRANTS:
        t = quads[3, q]
        c = t["nl_coeffs"]
        injected = {v: np.median(_signal(f, q)[:30]) for (v, dly), f in frames.items() if dly == 106.0}
        assert np.median(_signal(frames[7.0, 106.0], q)[30:]) == pytest.approx(0, abs=2)
        notch = t["chinj_notch_e"] / t["gain_e_per_adu"]
        assert injected[7.0] == pytest.approx(notch * (1 + c[2] * notch + c[3] * notch**2), rel=0.01)
        first_on = min(v for v, level in injected.items() if level > 50)
        assert t["chinj_threshold_v"] < first_on <= t["chinj_threshold_v"] + 0.25 + 50 * t["gain_e_per_adu"] / t["chinj_slope_e_per_v"]


def test_trap_dipoles(vison_day):
    day, truth = vison_day
    from steps.vison.simulate_detector import dipole_e

    quads = _quads(truth)
    traps = truth.table("traps")
    ref = next(f for r, f in _frames(day, truth, "TP01", 1) if r["tp_mode"] is None and r["id_dly"] == 106.0)
    for mode, step in ((123, 1), (341, -1)):
        pumped = next(f for r, f in _frames(day, truth, "TP01", 1, tp_mode=mode, toi_tp=1000) if r["id_dly"] == 106.0)
        for q in QUADRANTS:
            t = quads[1, q]
            mine = [x for x in traps if x["ccd"] == 1 and x["quadrant"] == q]
            arr = np.array([[x["x"], x["y"], x["tau"], x["pc"]] for x in mine])
            level = t["chinj_notch_e"]
            amp = np.minimum(dipole_e(arr, 1000.0, 5000), 0.5 * level) / t["gain_e_per_adu"]
            d = _signal(pumped, q) - _signal(ref, q)
            x, y = arr[:, 0].astype(int), arr[:, 1].astype(int)
            measured = (d[y + step, x] - d[y, x]) / 2
            strong = amp > 60  # well above the injection's shot noise (~35 ADU per pixel, x2 frames)
            assert strong.sum() >= 3
            assert np.median(measured[strong] / amp[strong]) == pytest.approx(1.0, abs=0.1), (mode, q)
