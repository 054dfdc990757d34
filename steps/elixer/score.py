"""The classification scored against a simulator's truth: accuracy per class and EW bin, contamination.

    python -m steps.elixer.score --seeds 1 2 3 --n 600 [--hard] [--stress all] [--json]

Each seed simulates ``--n`` detections (:mod:`steps.elixer.simulate`), classifies every one with
:func:`steps.elixer.science.classify.classify` and compares the call (P(LyA) > threshold) with
the true class.  ``--hard`` adds enriched samples of the hard cases (LAEs with EW_rest 5-20 A,
[OII] emitters with EW_rest > 40 A), so that their bins hold hundreds of lines; the overall
accuracy and the contamination are always measured on the natural mix.  ``--stress`` repeats it
on variants of the simulator's physics (:data:`steps.elixer.simulate.STRESS`: weaker or stronger
IGM, symmetric LyA, redder LAEs, bluer [OII] hosts with weaker breaks, weaker [OII] companions,
more sky residual, under-reported errors), so that nothing is tuned to one simulator.

The figures (issue 16's acceptance):

* accuracy: correct calls / lines, at S/N >= 6 (the detections table's ``sn``);
* [OII] contamination: [OII] emitters called LyA / all lines called LyA, at S/N >= 6;
* per class and EW_rest bin (each class in its own frame): the fraction called correctly.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path


LAE_BINS = [(0, 5), (5, 20), (20, 50), (50, 1e9)]
OII_BINS = [(0, 10), (10, 20), (20, 40), (40, 1e9)]


def classify_file(det_path: Path, priors=None) -> list[dict]:
    """One result per detection: detectid, sn (detections table), plya, label."""
    from steps.elixer.detfile import DetectionsFile, detection_rows
    from steps.elixer.science.classify import classify
    from steps.elixer.science.priors import ClassifierPriors

    p = priors or ClassifierPriors()
    f = DetectionsFile(det_path)
    out = []
    try:
        for r in detection_rows(det_path):
            s = f.spectrum(r["detectid"])
            m = classify(s["wave1d"], s["spec1d"] / 2, s["spec1d_err"] / 2, r, p)
            out.append({"detectid": int(r["detectid"]), "sn": float(r["sn"]), "plya": m["plya"],
                        "lya": bool(m["plya"] > p.plya_threshold), "z_best": m["z_best"],
                        "votes": {v["name"]: round(float(v.get("ln_lr", v["vote"])), 2) for v in m["votes"]}})
    finally:
        f.close()
    return out


def tally(results: list[dict], truth: dict[int, dict], sn_min: float = 6.0) -> dict:
    """Accuracy, contamination and per-bin fractions of ``results`` against ``truth``."""
    sel = [r for r in results if r["sn"] >= sn_min]
    n = len(sel)
    right = sum((r["lya"] == (truth[r["detectid"]]["true_class"] == "LAE")) for r in sel)
    called = [r for r in sel if r["lya"]]
    oii_in = sum(truth[r["detectid"]]["true_class"] == "OII" for r in called)
    bins = {}
    for cls, edges in (("LAE", LAE_BINS), ("OII", OII_BINS)):
        for lo, hi in edges:
            rows = [r for r in sel if truth[r["detectid"]]["true_class"] == cls
                    and lo <= float(truth[r["detectid"]]["ew_rest"]) < hi]
            ok = sum(r["lya"] == (cls == "LAE") for r in rows)
            name = f"{cls} EW {lo:g}-{hi:g}" if hi < 1e8 else f"{cls} EW > {lo:g}"
            bins[name] = {"n": len(rows), "correct": ok}
    return {"n": n, "correct": right, "accuracy": right / max(n, 1), "called_lya": len(called), "oii_in_lya": oii_in,
            "contamination": oii_in / max(len(called), 1), "bins": bins}


def _merge(tallies: list[dict]) -> dict:
    out = {"n": 0, "correct": 0, "called_lya": 0, "oii_in_lya": 0, "bins": {}}
    for t in tallies:
        for k in ("n", "correct", "called_lya", "oii_in_lya"):
            out[k] += t[k]
        for b, v in t["bins"].items():
            acc = out["bins"].setdefault(b, {"n": 0, "correct": 0})
            acc["n"] += v["n"]
            acc["correct"] += v["correct"]
    out["accuracy"] = out["correct"] / max(out["n"], 1)
    out["contamination"] = out["oii_in_lya"] / max(out["called_lya"], 1)
    return out


def score_seed(seed: int, n: int, work: Path, hard: bool = False, sn_min: float = 6.0, stress: str = "default",
               priors=None) -> dict:
    """The tallies of one seed: ``natural`` (the sky's mix) and, with ``hard``, ``hard_lae`` and
    ``hard_oii`` at S/N >= ``sn_min`` and at every S/N (``*_all_sn``)."""
    from steps.elixer.simulate import read_truth, simulate_detections

    paths = simulate_detections(work / f"{stress}_seed{seed}", n=n, seed=seed, stress=stress)
    res = {"natural": tally(classify_file(paths["detections"], priors), read_truth(paths["truth"]), sn_min)}
    if hard:
        for name, opts in (("hard_lae", {"low_ew_lae_fraction": 1.0, "lae_ew_range": (5.0, 20.0), "only": "LAE"}),
                           ("hard_oii", {"oii_ew_min": 40.0, "only": "OII"})):
            p = simulate_detections(work / f"{stress}_seed{seed}_{name}", n=max(n // 3, 100), seed=seed + 1000,
                                    stress=stress, **opts)
            results, truth = classify_file(p["detections"], priors), read_truth(p["truth"])
            res[name] = tally(results, truth, sn_min)
            res[name + "_all_sn"] = tally(results, truth, 0.0)
    return res


def _pct(k, n):
    return f"{100 * k / n:5.1f} % ({k}/{n})" if n else "   -- (0)"


def print_report(per_seed: dict[int, dict], out=sys.stdout) -> None:
    for seed, res in per_seed.items():
        t = res["natural"]
        print(f"seed {seed}: S/N >= 6: {t['n']} lines, accuracy {_pct(t['correct'], t['n'])}, "
              f"[OII] contamination {_pct(t['oii_in_lya'], t['called_lya'])}", file=out)
    kinds = sorted({k for r in per_seed.values() for k in r})
    for kind in kinds:
        m = _merge([r[kind] for r in per_seed.values() if kind in r])
        print(f"\n{kind} (all seeds): {m['n']} lines, accuracy {_pct(m['correct'], m['n'])}, "
              f"contamination {_pct(m['oii_in_lya'], m['called_lya'])}", file=out)
        for b, v in m["bins"].items():
            if v["n"]:
                print(f"  {b:<16s} correct {_pct(v['correct'], v['n'])}", file=out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--n", type=int, default=600)
    ap.add_argument("--hard", action="store_true", help="also score enriched hard-case samples")
    ap.add_argument("--sn-min", type=float, default=6.0)
    ap.add_argument("--stress", nargs="+", default=["default"],
                    help="simulator variants (steps.elixer.simulate.STRESS), or 'all'")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    from steps.elixer.simulate import STRESS

    names = list(STRESS) if a.stress == ["all"] else a.stress
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            out[name] = {s: score_seed(s, a.n, Path(tmp), a.hard, a.sn_min, name) for s in a.seeds}
            if not a.json:
                print(f"\n=== simulator: {name} ===")
                print_report(out[name])
                sys.stdout.flush()
    if a.json:
        print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
