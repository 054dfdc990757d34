"""The SNID-like classifier (steps/sedm/science/classify.py) and its adapter (steps/sedm/classify.py)
against the simulator's truth.

The spectra are the simulator's transients (``simulate_spectra.transient_flux``: the SN Ia-like and
SN II-like models it injects, at known z), blurred by the prism's line spread, on the cube's 220
bins, with noise at S/N 20 and more, as calibrated spectra look.  The template bank is the
project's (``steps/sedm/data/templates``), built from published line lists, not from the
simulator's model.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest

from steps.sedm import simulate_spectra as spec
from steps.sedm.classify import TEMPLATES, ClassifyParams, parse_snid_output, read_bank, run_snid
from steps.sedm.science import classify as xcor

GRID = np.linspace(3700.0, 9300.0, 220)
FINE = np.arange(3300.0, 9800.0, 2.0)
BAND = (GRID >= 4500) & (GRID <= 8500)


def _blur(values, sigma_ln=0.009):
    ln = np.log(FINE)
    step = np.median(np.diff(ln))
    uniform = np.arange(ln[0], ln[-1], step)
    k = np.arange(-int(5 * sigma_ln / step), int(5 * sigma_ln / step) + 1) * step
    kernel = np.exp(-0.5 * (k / sigma_ln) ** 2)
    return np.interp(np.log(GRID), uniform, np.convolve(np.interp(uniform, ln, values), kernel / kernel.sum(), "same"))


def observed(f_fine, snr, rng):
    f = _blur(f_fine)
    sigma = np.median(f[BAND]) / snr * np.sqrt(np.clip(f / np.median(f[BAND]), 0.05, None))
    return f + rng.normal(0.0, sigma), sigma ** 2


@pytest.fixture(scope="module")
def bank():
    return read_bank(TEMPLATES)


def test_the_bank_is_documented_and_covers_the_types(bank):
    readme = (TEMPLATES / "README.md").read_text()
    assert {t.type for t in bank} == {"Ia", "Ib", "Ic", "II"}
    for t in bank:
        assert t.name in readme
        assert t.wavelength[0] <= 3100 and t.wavelength[-1] >= 9500 and np.all(t.flux > 0)
    assert "not SNID" in xcor.CLASSIFIER


CASES = [(kind, z, snr, seed) for kind in ("Ia", "II") for z, snr, seed in
         ((0.008, 20, 1), (0.03, 25, 2), (0.06, 20, 3), (0.09, 40, 4), (0.13, 20, 5), (0.18, 30, 6))]


@pytest.mark.parametrize("kind,z,snr,seed", CASES)
def test_injected_type_and_redshift_are_recovered(bank, kind, z, snr, seed):
    """Every S/N >= 20 transient: the injected type, z within 0.01, rlap >= 4."""
    rng = np.random.default_rng(seed)
    flux, var = observed(spec.transient_flux(kind, z, 18.0, FINE), snr, rng)
    assert xcor.signal_to_noise(GRID, flux, var) == pytest.approx(snr, rel=0.2)
    res = xcor.classify(GRID, flux, bank)
    print(f"{kind} z={z} S/N {snr}: {res.type} {res.subtype} z={res.z:.4f}+-{res.zerr:.4f} age {res.age:g} "
          f"rlap {res.rlap:.1f} best {res.best.template if res.best else None} fractions "
          f"{ {k: round(v, 2) for k, v in res.fractions.items()} }")
    assert res.type == kind
    assert abs(res.z - z) < 0.01
    assert res.rlap >= xcor.RLAP_MIN and res.fractions[kind] == max(res.fractions.values())
    assert 0 < res.zerr < 0.05


def test_the_wrong_bank_gives_the_wrong_answer(bank):
    """The test can fail: a SN II classified against the Ia templates alone is no II."""
    rng = np.random.default_rng(4)
    flux, _ = observed(spec.transient_flux("II", 0.05, 18.0, FINE), 40, rng)
    res = xcor.classify(GRID, flux, [t for t in bank if t.type == "Ia"])
    assert res.type != "II"


def test_a_template_recovers_its_own_redshift(bank):
    """Sub-bin redshift: a template redshifted by a known z matches itself to < 0.001."""
    t = next(t for t in bank if t.name == "Ia-norm_p00")
    for z in (0.0123, 0.0771):
        m = xcor.match(t.wavelength * (1 + z), t.flux, t)
        assert abs(m.z - z) < 0.001 and m.rlap > 10


SNID_OUTPUT = """### SNID output file ###
### type fraction/redshift/age ###
#type ntemp fraction slope redshift redshift_error age age_error
 Ia      12   0.857   1.0  0.0512 0.0021  3.1  2.0
### rlap-ordered template listings ###
#no. sn           type     lap   rlap    z       zerr    age   age_flag grade
   1 sn1994D      Ia-norm  0.78  14.21  0.0509  0.0031   2.1  0  good
   2 sn2002bo     Ia-norm  0.78  12.04  0.0521  0.0035   4.0  0  good
   3 sn1991bg     Ia-91bg  0.70   7.10  0.0480  0.0050   1.0  0  good
   4 sn1999em     IIP      0.60   3.10  0.0900  0.0090  20.0  0  bad
"""


def test_the_snid_listing_is_read(bank):
    matches = parse_snid_output(SNID_OUTPUT)
    assert [m.template for m in matches] == ["sn1994D", "sn2002bo", "sn1991bg"]
    res = xcor.aggregate(matches, classifier="SNID")
    assert (res.type, res.subtype, res.classifier) == ("Ia", "Ia-norm", "SNID")
    assert res.z == pytest.approx(0.0515) and res.rlap == pytest.approx(14.21)


def test_a_configured_snid_executable_is_run(tmp_path):
    """The adapter runs the configured program with SNID's arguments and reads its output file."""
    exe = tmp_path / "snid"
    log = tmp_path / "args.txt"
    exe.write_text(f"#!/bin/sh\necho \"$@\" > {log}\ncat > spectrum_snid.output <<'EOF'\n{SNID_OUTPUT}EOF\n")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    res = run_snid(exe, tmp_path / "templates", GRID, np.ones_like(GRID), ClassifyParams())
    args = log.read_text().split()
    assert "rlapmin=4" in args and "wmin=4000" in args and "wmax=9500" in args and args[-1] == "spectrum.txt"
    assert res.type == "Ia" and res.classifier == "SNID"


def test_the_bank_builder_is_reproducible(tmp_path):
    """The shipped bank is what build_bank.py makes."""
    from steps.sedm.data.templates import build_bank

    build_bank.main(tmp_path)
    for path in sorted(Path(tmp_path).glob("*.csv")):
        assert path.read_text() == (TEMPLATES / path.name).read_text(), path.name
    assert len(os.listdir(tmp_path)) == len(read_bank(TEMPLATES)) + 1


# --- the pipeline on the simulated night ------------------------------------------------------

def test_the_pipeline_types_every_acceptable_transient(sedm_run):
    """Every transient of acceptable quality: the injected type, z within 0.01, labelled
    astroflow-xcor; quality > 2 frames are not classified (skipped, no row)."""
    truth = {r["filename"]: r for r in sedm_run.sim.table("transients")}
    quality = {r["filename"]: r for r in sedm_run.rows("quality")}
    rows = {r["filename"]: r for r in sedm_run.rows("classify")}
    acceptable = {f for f, q in quality.items() if q["kind"] == "science" and q["acceptable"]}
    assert set(rows) == acceptable and len(acceptable) >= 3
    for name, r in sorted(rows.items()):
        t = truth[name]
        print(f"{t['object']}: truth {t['type']} z={t['z']}; {r['type']} {r['subtype']} z={r['z']:.4f}"
              f"+-{r['zerr']:.4f} rlap {r['rlap']:.1f} ({r['best_template']}, S/N {r['snr']:.0f})")
        assert r["classifier"] == "astroflow-xcor (SNID-like, not SNID)"
        assert r["snr"] >= 20 and r["type"] == t["type"] and abs(r["z"] - t["z"]) < 0.01
        assert r["rlap"] >= 4 and r["calibrated"]


def test_a_recoverable_quality_5_transient_is_typed_too(sedm_run, bank):
    """The guider-failed case whose target is the brightest (quality 5, what redex --recover
    makes 1): its calibrated spectrum gives the injected type and z."""
    from steps.sedm.extract import read_spectrum

    truth = {r["filename"]: r for r in sedm_run.sim.table("transients")}
    cal = {r["filename"]: r for r in sedm_run.rows("calibrate")}
    (name,) = [f for f, t in truth.items() if t["case"] == "guider_failed"]
    sp = read_spectrum(sedm_run.out / cal[name]["calibrated_path"])
    res = xcor.classify(sp["wavelength"], sp["flux"], bank)
    assert cal[name]["snr"] >= 20
    assert res.type == truth[name]["type"] and abs(res.z - truth[name]["z"]) < 0.01
