"""The classification against simulated truth and against its own published ingredients."""

import numpy as np

from steps.elixer.detfile import DetectionsFile, detection_rows
from steps.elixer.science.bayes import plae_poii, prior_plae
from steps.elixer.science.classify import classify
from steps.elixer.science.priors import ClassifierPriors, odds_midpoint, upper_gamma
from steps.elixer.simulate import read_truth


def test_upper_gamma_negative_order_matches_integral():
    from scipy.integrate import quad

    for a in (-0.65, -0.2):
        for x in (0.05, 0.5, 3.0):
            ref = quad(lambda t: t ** (a - 1) * np.exp(-t), x, np.inf)[0]
            assert abs(upper_gamma(a, x) - ref) / ref < 1e-6


def test_odds_follow_ew_and_are_clipped():
    p = ClassifierPriors()
    low, high = plae_poii(4500.0, 1e-16, np.array([10.0, 300.0]), False, p)
    assert low < 1 < high
    assert plae_poii(3600.0, 1e-16, 5.0)[0] == p.odds_clip[1]  # no [OII] below 3727 A
    assert 0 < prior_plae(4500.0) < 1
    assert odds_midpoint(p, 4000) == 1.4 and odds_midpoint(p, 5000) == 10.0


def test_accuracy_and_contamination_on_simulated_truth(sim300):
    truth = read_truth(sim300["truth"])
    rows = detection_rows(sim300["detections"])
    f = DetectionsFile(sim300["detections"])
    p = ClassifierPriors()
    right, n, lae_called, oii_in_lae = 0, 0, 0, 0
    for r in rows:
        if r["sn"] < 6:
            continue
        s = f.spectrum(r["detectid"])
        m = classify(s["wave1d"], s["spec1d"] / 2, s["spec1d_err"] / 2, r, p)
        is_lae = truth[r["detectid"]]["true_class"] == "LAE"
        called = m["plya"] > 0.5
        right += called == is_lae
        n += 1
        lae_called += called
        oii_in_lae += called and not is_lae
        if called and is_lae:
            assert abs(m["z_best"] - float(truth[r["detectid"]]["z"])) < 0.01
    accuracy, contamination = right / n, oii_in_lae / max(lae_called, 1)
    print(f"S/N >= 6: {n} lines, accuracy {accuracy:.3f}, [OII] contamination {contamination:.3f}")
    assert n > 150
    assert accuracy >= 0.95
    assert contamination <= 0.02
