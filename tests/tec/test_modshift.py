"""Tests of the native model-shift test (TEC step 13: modshift_test.py calling modshift).

Checked three ways: against the plain-numpy reference of the same algorithm
(modshift_reference.py, to 1e-6 relative), against the known truth of
simulated light curves (depth / noise, eclipse phase, odd/even depths), and
against the numbers the original program published for the reference light
curve (../shared/reference/tec.md).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time as clock
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from scipy.special import erfcinv

sys.path.insert(0, str(Path(__file__).resolve().parent))
import modshift_reference as ref  # noqa: E402

from astroflow import _modshift  # noqa: E402
from steps.tec import modshift_cli  # noqa: E402
from steps.tec.science.modshift import OUTPUT_KEYS, ModshiftResult, run_modshift  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
INTERNALS = ("depth", "depsig", "duration", "n_in_transit", "n_used", "n_events",
             "odd_depth", "even_depth", "left_depth", "right_depth", "baseflux")

CURVES = {  # name -> (kind, n, seed)
    "planet": ("planet", 20000, 1),
    "eb": ("eb", 12000, 2),
    "oe": ("oe", 12000, 3),
    "random": ("random", 9000, 4),
    "random2": ("random", 6000, 5),
}


def _close(a, b, rel=1e-6, abs_=1e-12):
    if isinstance(b, float) and math.isnan(b):
        return isinstance(a, float) and math.isnan(a)
    return abs(a - b) <= max(rel * abs(b), abs_)


@pytest.fixture(scope="module")
def curves():
    return {name: ref.synthetic_light_curve(kind, n=n, seed=seed) for name, (kind, n, seed) in CURVES.items()}


@pytest.mark.parametrize("name", list(CURVES))
def test_native_matches_reference(curves, name):
    t, f, m, truth = curves[name]
    want = ref.modshift(t, f, m, truth["period"], truth["epoch"])
    got = _modshift.run(t, f, m, truth["period"], truth["epoch"])
    assert got["valid"] and want["valid"]
    bad = {k: (got[k], want[k]) for k in OUTPUT_KEYS + INTERNALS if not _close(got[k], want[k])}
    assert not bad, f"native vs reference differ on {name}: {bad}"
    assert got["sigma_pri"] > 5  # not a trivially empty comparison


def test_fft_scan_equals_direct_scan():
    rng = np.random.default_rng(7)
    n = 3001
    flux = rng.normal(0, 1e-3, n)
    model = np.zeros(n)
    model[1400:1520] = -2e-3
    for start, end in [(1399, 1521), (0, 200), (2900, 3001), (10, 10)]:
        fft = _modshift.shift_sums(flux, model, 0.0, start, end, direct=False)
        direct = _modshift.shift_sums(flux, model, 0.0, start, end, direct=True)
        numpy_ = ref.shift_sums(flux, model, 0.0, start, end)
        # the shift-dependent part is what matters: compare it relative to its own spread
        scale = np.ptp(direct) or 1.0
        assert np.max(np.abs(fft - direct)) < 1e-9 * scale + 1e-15
        assert np.max(np.abs(numpy_ - direct)) < 1e-9 * scale + 1e-15


def test_run_with_direct_scan_is_identical_in_outputs(curves):
    t, f, m, truth = ref.synthetic_light_curve("eb", n=5000, seed=11)
    a = _modshift.run(t, f, m, truth["period"], truth["epoch"])
    b = _modshift.run(t, f, m, truth["period"], truth["epoch"], direct_scan=True)
    for k in OUTPUT_KEYS:
        assert _close(a[k], b[k], rel=1e-9), k


def test_reference_light_curve_matches_truth_and_original(curves):
    """20,000 points, P = 3 d, T = 3 h, depth 1000 ppm, white noise 500 ppm."""
    t, f, m, truth = curves["planet"]
    r = run_modshift(t, f, m, truth["period"], truth["epoch"])
    n_in = np.sum(np.abs(ref.trapezoid(t, 3.0, truth["epoch"], 0.125, 1e-3)[1]) < 0.125 / 2)
    expected = truth["depth"] / (truth["noise"] / math.sqrt(n_in))  # depth / depsig from the truth
    assert r.sigma_pri == pytest.approx(expected, rel=0.05)
    assert r.phase_pri == pytest.approx(0.0, abs=0.5 * 0.125 / 3.0)
    # false-alarm thresholds: the formula with T/P = 1/24, and the original's published values
    assert r.fa1 == pytest.approx(math.sqrt(2) * erfcinv(0.125 / 3.0 / 20000), rel=0.01)
    assert r.fa2 == pytest.approx(math.sqrt(2) * erfcinv(0.125 / 3.0), rel=0.01)
    assert r.fa1 == pytest.approx(4.745, rel=0.01)
    assert r.fa2 == pytest.approx(2.037, rel=0.01)
    # pure noise elsewhere: the original found 2.2-2.4 for sec/ter/pos and Fred 1.25 on such a curve
    for s in (r.sigma_sec, r.sigma_ter, r.sigma_pos):
        assert 1.0 < s < r.fa1
    assert 0.8 < r.fred < 1.5
    assert r.sigma_oe < 3 and r.tat < 3
    assert r.dmm == pytest.approx(1.0, abs=0.1)
    assert r.sec_depth_err == pytest.approx(truth["noise"] / math.sqrt(n_in), rel=0.05)
    assert -r.depth == pytest.approx(truth["depth"], rel=0.06)


def test_eclipsing_binary_secondary_found(curves):
    t, f, m, truth = curves["eb"]
    r = run_modshift(t, f, m, truth["period"], truth["epoch"])
    tp = truth["duration"] / truth["period"]
    assert r.phase_sec == pytest.approx(0.5, abs=0.5 * tp)
    assert r.sec_depth == pytest.approx(0.4 * truth["depth"], abs=4 * r.sec_depth_err)
    assert r.sigma_sec == pytest.approx(0.4 * r.sigma_pri, rel=0.2)
    assert r.sigma_sec / r.fred > r.fa1 and r.sigma_sec - r.sigma_ter > r.fa2  # TEC: significant secondary


def test_odd_even_difference_found(curves):
    t, f, m, truth = curves["oe"]
    r = _modshift.run(t, f, m, truth["period"], truth["epoch"])
    assert -r["odd_depth"] == pytest.approx(2 * truth["depth"], rel=0.15) or \
        -r["even_depth"] == pytest.approx(2 * truth["depth"], rel=0.15)
    expected = truth["depth"] / math.hypot(r["odd_depth_err"], r["even_depth_err"])
    assert r["sigma_oe"] == pytest.approx(expected, rel=0.2)
    assert r["sigma_oe"] > 10


def test_order_of_input_rows_does_not_matter(curves):
    t, f, m, truth = curves["random2"]
    perm = np.random.default_rng(0).permutation(len(t))
    a = run_modshift(t, f, m, truth["period"], truth["epoch"])
    b = run_modshift(t[perm], f[perm], m[perm], truth["period"], truth["epoch"])
    assert a == b


def test_epoch_choice_does_not_matter(curves):
    t, f, m, truth = curves["planet"]
    a = run_modshift(t, f, m, truth["period"], truth["epoch"]).as_dict()
    b = run_modshift(t, f, m, truth["period"], truth["epoch"] + 7 * truth["period"]).as_dict()
    for k in OUTPUT_KEYS:
        assert _close(b[k], a[k], rel=1e-6, abs_=1e-9), k


def test_500k_points_run():
    t, f, m, truth = ref.synthetic_light_curve("planet", n=500_000, seed=21)
    t0 = clock.perf_counter()
    r = run_modshift(t, f, m, truth["period"], truth["epoch"])
    elapsed = clock.perf_counter() - t0
    n_in = np.sum(np.abs(ref.trapezoid(t, 3.0, truth["epoch"], 0.125, 1e-3)[1]) < 0.125 / 2)
    assert r.valid and r.n_used > 499_000
    assert r.sigma_pri == pytest.approx(truth["depth"] / (truth["noise"] / math.sqrt(n_in)), rel=0.05)
    assert elapsed < 20


def test_threads_give_identical_results(curves):
    jobs = [curves[name] for name in ("planet", "eb", "planet", "eb")]
    serial = [run_modshift(t, f, m, tr["period"], tr["epoch"]) for t, f, m, tr in jobs]
    with ThreadPoolExecutor(max_workers=4) as pool:
        parallel = list(pool.map(lambda job: run_modshift(job[0], job[1], job[2], job[3]["period"], job[3]["epoch"]), jobs))
    assert parallel == serial
    assert serial[0] == serial[2]


def test_parallel_sub_passes_give_identical_results(curves):
    for name in ("oe", "random"):
        t, f, m, tr = curves[name]
        serial = _modshift.run(t, f, m, tr["period"], tr["epoch"])
        parallel = _modshift.run(t, f, m, tr["period"], tr["epoch"], parallel=True)
        assert {k: parallel[k] for k in serial} == pytest.approx(serial, rel=0, abs=0, nan_ok=True)


def test_curves_for_plots(curves):
    t, f, m, tr = curves["eb"]
    r = _modshift.run(t, f, m, tr["period"], tr["epoch"], return_curves=True)
    n = r["n_used"]
    assert all(len(r[k]) == n for k in ("data_phase", "data_flux", "data_model", "conv_depth"))
    assert np.all(np.diff(r["data_phase"]) >= 0)
    # the convolved depth is -depth at the primary and -sec_depth at the secondary
    assert np.min(r["conv_depth"]) == pytest.approx(r["depth"], rel=1e-9)
    at_sec = r["conv_depth"][r["data_phase"] == r["phase_sec"]]  # points sharing the secondary's phase
    assert np.min(np.abs(at_sec + r["sec_depth"])) < 1e-9 * r["sec_depth"]


def test_result_dataclass():
    t, f, m, truth = ref.synthetic_light_curve("planet", n=4000, seed=3)
    r = run_modshift(t, f, m, truth["period"], truth["epoch"])
    assert isinstance(r, ModshiftResult)
    assert tuple(r.as_dict()) == OUTPUT_KEYS
    assert set(r.as_dict(internals=True)) >= set(OUTPUT_KEYS) | {"valid", "depth", "n_in_transit"}
    with pytest.raises(Exception):
        r.sigma_pri = 1.0  # frozen


def test_flat_model_gives_no_result():
    t, f, m, truth = ref.synthetic_light_curve("planet", n=3000, seed=3)
    r = run_modshift(t, f, np.zeros_like(m), truth["period"], truth["epoch"])
    assert not r.valid and r.sigma_pri == 0.0


def test_noise_free_data_gives_no_result():
    t = np.arange(3000) * 0.01
    m = np.where(np.abs((t - 1.0 + 1.5) % 3 - 1.5) < 0.06, -1e-3, 0.0)
    r = run_modshift(t, m.copy(), m, 3.0, 1.0)
    assert not r.valid and all(math.isfinite(v) or math.isnan(v) for v in r.as_dict().values())
    assert ref.modshift(t, m.copy(), m, 3.0, 1.0)["valid"] is False


@pytest.mark.parametrize("bad", ["length", "nan", "period", "short"])
def test_bad_input_raises(bad):
    t, f, m, _ = ref.synthetic_light_curve("planet", n=2000, seed=3)
    args = dict(time=t, flux=f, model=m, period=3.0, epoch=1326.1)
    if bad == "length":
        args["flux"] = f[:-1]
    elif bad == "nan":
        args["flux"] = f.copy()
        args["flux"][5] = np.nan
    elif bad == "period":
        args["period"] = 0.0
    else:
        args.update(time=t[:5], flux=f[:5], model=m[:5])
    with pytest.raises(ValueError):
        run_modshift(**args)


def test_inverfc():
    for p in (1e-9, 2e-6, 1e-3, 0.04, 0.5, 1.0, 1.5, 1.99):
        assert _modshift.inverfc(p) == pytest.approx(erfcinv(p), rel=1e-12, abs=1e-14)
        assert ref.inverfc(p) == pytest.approx(erfcinv(p), rel=1e-12, abs=1e-14)


def _write(path, t, f, m):
    np.savetxt(path, np.c_[t, f, m], fmt="%.10f")  # the original's input format: time flux model rows
    return path


def test_cli_json(tmp_path, capsys):
    t, f, m, truth = ref.synthetic_light_curve("eb", n=6000, seed=8)
    path = _write(tmp_path / "lc.txt", t, f, m)
    rc = modshift_cli.main([str(path), "--period", "3", "--epoch", str(truth["epoch"]), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0
    assert list(out) == list(OUTPUT_KEYS)
    data = np.loadtxt(path)
    want = run_modshift(data[:, 0], data[:, 1], data[:, 2], 3.0, truth["epoch"]).as_dict()
    assert out == pytest.approx(want, rel=1e-12)
    rc = modshift_cli.main([str(path), "--period", "3", "--epoch", str(truth["epoch"])])
    table = capsys.readouterr().out
    assert rc == 0 and "sigma_sec" in table and "phase_pri" in table


def test_cli_whole_process_is_light_and_fast(tmp_path):
    t, f, m, truth = ref.synthetic_light_curve("planet", n=100_000, seed=9)
    path = _write(tmp_path / "lc100k.txt", t, f, m)
    code = (
        "import sys, time; t0 = time.perf_counter(); from steps.tec import modshift_cli; "
        f"rc = modshift_cli.main([{str(path)!r}, '--period', '3', '--epoch', '{truth['epoch']}', '--json']); "
        "heavy = [m for m in ('astropy', 'pyarrow', 'matplotlib', 'scipy', 'pandas') if m in sys.modules]; "
        "print('HEAVY', heavy, file=sys.stderr); sys.exit(rc)"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "shared"), str(REPO)]))
    t0 = clock.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO)
    elapsed = clock.perf_counter() - t0
    assert proc.returncode == 0, proc.stderr
    assert "HEAVY []" in proc.stderr
    assert set(json.loads(proc.stdout)) == set(OUTPUT_KEYS)
    assert elapsed < 3.0  # well under 0.5 s on an idle machine; generous for loaded CI


@pytest.mark.parametrize(
    "content, fragment",
    [
        ("1.0 0.1 0.0\n2.0 abc 0.0\n", "line 2: not a number: 'abc'"),
        ("1.0 0.1\n2.0 0.2\n", "line 1: expected 3 columns"),
        ("# header\n1.0 0.1 0.0\n\n2.0 0.2\n", "line 4: expected 3 columns"),
        ("1.0 0.1 0.0 7.0\n", "line 1: expected 3 columns (time flux model), found 4"),
        ("", "no data rows"),
        ("1.0 nan 0.0\n" * 20, "line 1: non-finite"),
        ("1.0 0.1 0.0\n" * 5, "need at least 10 points"),
    ],
)
def test_cli_malformed_input_names_the_file(tmp_path, capsys, content, fragment):
    path = tmp_path / "broken_input.txt"
    path.write_text(content)
    rc = modshift_cli.main([str(path), "--period", "3", "--epoch", "0"])
    err = capsys.readouterr().err
    assert rc == 2
    assert str(path) in err and fragment in err


def test_cli_missing_file(tmp_path, capsys):
    path = tmp_path / "nope.txt"
    assert modshift_cli.main([str(path), "--period", "3", "--epoch", "0"]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "cannot read" in err
    assert modshift_cli.main([str(tmp_path), "--period", "3", "--epoch", "0"]) == 2
    assert "is a directory" in capsys.readouterr().err


def test_cli_no_transit_exit_code(tmp_path, capsys):
    t, f, m, truth = ref.synthetic_light_curve("planet", n=3000, seed=3)
    path = _write(tmp_path / "flat.txt", t, f, np.zeros_like(m))
    assert modshift_cli.main([str(path), "--period", "3", "--epoch", "1326.1", "--json"]) == 1
    cap = capsys.readouterr()
    assert cap.out == "" and "no result" in cap.err
