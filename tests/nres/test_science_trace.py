"""Traces of steps/nres/science/trace.py against synthetic echellograms with known centres."""

import numpy as np
import pytest
from scipy.special import erf

from steps.nres.science import trace

NX, NY = 600, 420
SEP = 12.0          # fiber separation (px); fiber 0 highest in y, as on NRES


def true_centres(n_orders=5):
    """Curved orders: y(x) = base + tilt + curvature, fibers SEP apart; returns (order, fiber, y)."""
    x = np.arange(NX)
    u = (x - NX / 2) / NX
    rows = []
    for o in range(n_orders):
        base = 40 + o * (70 + 3 * o)
        yc = base + 12 * u + 40 * u ** 2 - 6 * u ** 3
        for f in range(3):
            rows.append((o, f, yc + (1 - f) * SEP))
    return rows


def make_flat(lit, n_orders=5, sigma=1.6, peak=12000.0, seed=0, read_noise=7.0, ny=NY, dark=()):
    rng = np.random.default_rng(seed)
    y = np.arange(ny)[:, None]
    img = np.zeros((ny, NX))
    blaze = 0.8 + 0.2 * np.cos(np.linspace(-1.2, 1.2, NX))
    for o, f, yc in true_centres(n_orders):
        if f not in lit or o in dark:
            continue
        # pixel-integrated Gaussian cross profile
        a = (y - 0.5 - yc[None, :]) / (np.sqrt(2) * sigma)
        b = (y + 0.5 - yc[None, :]) / (np.sqrt(2) * sigma)
        img += peak * np.sqrt(2 * np.pi) * sigma * 0.5 * (erf(b) - erf(a)) * blaze[None, :]
    img = rng.poisson(np.clip(img, 0, None)).astype(float) + rng.normal(0, read_noise, img.shape)
    return img


def offsets(ts, truth):
    out = []
    for o, f, yc in truth:
        i = ts.index(o, f)
        assert i is not None, (o, f)
        sel = slice(ts.x_min[i], ts.x_max[i] + 1)
        out.append(np.max(np.abs(ts.y()[i][sel] - yc[sel])))
    return np.array(out)


def test_lit_fibers_from_objects():
    assert trace.lit_fibers("tung&tung&none") == [0, 1]
    assert trace.lit_fibers("none&tung&tung") == [1, 2]
    assert trace.lit_fibers("none&thar&thar") == [1, 2]
    assert trace.lit_fibers("HD49933&thar&none", lamps=None) == [0, 1]
    assert trace.lit_fibers([True, False, True]) == [0, 2]


def test_blind_trace_one_flat_labels_and_accuracy():
    flat = make_flat([0, 1])
    ts = trace.blind_trace(flat, [0, 1])
    assert len(ts) == 10 and ts.n_orders == 5
    assert sorted(set(ts.fiber)) == [0, 1]
    truth = [r for r in true_centres() if r[1] in (0, 1)]
    assert offsets(ts, truth).max() < 0.1            # the acceptance: 0.1 px
    # fiber 0 above fiber 1 in every order (the default fiber direction)
    for o in range(5):
        assert ts.y([NX // 2])[ts.index(o, 0), 0] > ts.y([NX // 2])[ts.index(o, 1), 0]


def test_two_flats_give_all_fibers_and_reject_spurious_features():
    fa = make_flat([0, 1], seed=1)
    fb = make_flat([1, 2], seed=2)
    fa[:, 300] += 4000.0                              # a hot column crossing the centre
    fa[200:203, 297:300] += 30000.0                   # a cosmic ray
    ts = trace.trace_two_flats(fa, [0, 1], fb, [1, 2])
    assert len(ts) == 15 and ts.n_orders == 5
    assert offsets(ts, true_centres()).max() < 0.1
    assert ts.meta["fiber_direction"] == -1


def test_fiber_direction_measured_from_the_shared_fiber():
    # the same instrument built upside down: fiber 0 lowest in y
    fa = make_flat([0, 1], seed=3)[::-1]
    fb = make_flat([1, 2], seed=4)[::-1]
    ts = trace.trace_two_flats(fb, [1, 2], fa, [0, 1])   # and the flats given the other way round
    assert ts.meta["fiber_direction"] == +1
    yc = ts.y([NX // 2])[:, 0]
    for o in range(5):
        assert yc[ts.index(o, 0)] < yc[ts.index(o, 1)] < yc[ts.index(o, 2)]


def test_refine_converges_from_a_displaced_guess():
    flat = make_flat([0, 1], seed=5)
    truth = [r for r in true_centres() if r[1] in (0, 1)]
    x = np.arange(NX)
    guess = trace.TraceSet.from_centres(x, np.array([yc + 1.3 for _, _, yc in truth]),
                                        [o for o, _, _ in truth], [f for _, f, _ in truth], NX, NY, degree=3)
    ts = trace.refine(flat, guess, hw=4.0)
    assert offsets(ts, truth).max() < 0.1
    assert np.all(ts.rms < 0.05)


def test_partial_trace_at_the_edge_is_kept_when_it_crosses_the_centre():
    # a shorter detector: the top order's fiber 0 leaves it towards both ends
    flat = make_flat([0, 1], seed=6, ny=390)
    ts = trace.blind_trace(flat, [0, 1])
    assert ts.n_orders == 5 and len(ts) == 10
    i = ts.index(4, 0)
    assert i is not None and ts.x_max[i] - ts.x_min[i] < NX - 50
    assert ts.x_min[i] < NX // 2 < ts.x_max[i]
    assert offsets(ts, [r for r in true_centres() if r[1] in (0, 1)]).max() < 0.1


HAND = """By-hand ord posns at x=100,300,500 for iord=0,4, ifib=0,1, synthetic
nfib 2 0 1
iord  100  300  500
  0   {a0}  {a1}  {a2}
  0   {b0}  {b1}  {b2}
  2   {c0}  {c1}  {c2}
  2   {d0}  {d1}  {d2}
  4   {e0}  {e1}  {e2}
  4   {f0}  {f1}  {f2}
"""


def hand_text():
    cols = [100, 300, 500]
    t = {r[:2]: r[2] for r in true_centres()}
    fill = {}
    for key, (o, f) in zip("abcdef", [(0, 0), (0, 1), (2, 0), (2, 1), (4, 0), (4, 1)]):
        for j, c in enumerate(cols):
            fill[f"{key}{j}"] = round(t[(o, f)][c])
    return HAND.format(**fill)


def test_hand_trace_format_round_trip_and_trace0():
    text = hand_text()
    hand = trace.read_hand_trace(text)
    assert hand["fibers"] == [0, 1] and list(hand["order"]) == [0, 2, 4]
    assert hand["y"].shape == (3, 2, 3)
    again = trace.read_hand_trace(trace.write_hand_trace(hand))
    assert np.array_equal(again["y"], hand["y"]) and again["fibers"] == hand["fibers"]
    # trace0: every order 0..4 and the third fiber extrapolated, then refined on two flats
    t0 = trace.trace_from_hand(hand, NX, NY, n_orders=5)
    assert t0.n_orders == 5 and sorted(set(t0.fiber)) == [0, 1, 2]
    err0 = offsets(t0, true_centres())
    assert err0.max() < 3.0                           # integer hand positions, a quadratic per order
    fa, fb = make_flat([0, 1], seed=7), make_flat([1, 2], seed=8)
    ts = trace.refine_two_flats(fa, [0, 1], fb, [1, 2], t0, hw=4.0)
    assert offsets(ts, true_centres()).max() < 0.1


def test_hand_trace_parser_errors():
    with pytest.raises(ValueError):
        trace.read_hand_trace("title\nnfib 2 0 1\niord 100 200\n 0 10 20\n")          # odd rows
    with pytest.raises(ValueError):
        trace.read_hand_trace("title\nnfib 2 0 1\niord 100 200\n 0 10\n 0 10 20\n")   # short row
    with pytest.raises(ValueError):
        trace.read_hand_trace("title\nnfib x\niord 1\n 0 1\n")


def test_traceset_arrays_round_trip():
    ts = trace.blind_trace(make_flat([0, 1], seed=9), [0, 1])
    back = trace.TraceSet.from_arrays(ts.to_arrays())
    assert np.allclose(back.y(), ts.y()) and np.array_equal(back.fiber, ts.fiber)


def test_an_order_without_light_keeps_its_number():
    # order 2 dark in both flats (a dead order): the orders above keep their numbers
    fa, fb = make_flat([0, 1], seed=11, dark=(2,)), make_flat([1, 2], seed=12, dark=(2,))
    ts = trace.trace_two_flats(fa, [0, 1], fb, [1, 2])
    assert sorted(set(ts.order)) == [0, 1, 3, 4] and len(ts) == 12
    assert offsets(ts, [r for r in true_centres() if r[0] != 2]).max() < 0.1
