"""Issue 16's TEC acceptance on the simulator: false secondaries on planets, deep binaries in triage.

One sector of planets and eclipsing binaries is simulated with the two failure modes seen on
independent data (module fixture, steps 1-19, the embedded runner with 2 workers, no figures):

* red noise on every star (red-to-white variance 0.3-3 at transit time scales) and large hosts
  with short periods (duty cycles T/P up to ~0.15): the off-event phases then hold few
  independent transit widths, the measured red-noise term Fred of the model-shift runs below 1
  and the original's ``sigma_sec / Fred > FA1`` makes white-noise dips "significant" (runbook
  steps 12 and 17);
* eclipsing binaries with a secondary 50-100 % of the primary depth: left in the noise estimate
  of ses_mes (runbook step 9) the secondaries shrink new_mes and the flux triage (step 11) fails
  the binary with newMesShrink.

The figures asked are the acceptance's (planets flagged < 3 %, binaries in Tier 3 >= 95 %);
nothing here is tuned to the simulator.
"""

import numpy as np
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

SECONDARY_FLAGS = {"HasSecDV", "HasSecAlt"}
# the simulator's DV XML marks 4 % of the DV fits and 2 % of its trapezoid fits as not converged,
# at random: such a TCE is left out of steps 12-19 whatever its light curve shows
DV_NOT_CONVERGED = {"DvFitNotConverged", "TrapezoidFitNotConverged"}


@pytest.fixture(scope="module")
def sector(tmp_path_factory):
    from astroflow import config, runner
    from steps.tec.pipeline import TEC
    from steps.tec.simulate import simulate_sector

    data = tmp_path_factory.mktemp("tec-secondary-sim")
    sim = simulate_sector(data, n_tces=150, seed=21, workers=2,
                          fractions={"multi": 0, "eb_oddeven": 0, "blend": 0, "sinusoid": 0, "modump": 0,
                                     "halfdouble": 0, "eb": 0.3},
                          red_noise=(0.3, 3.0), eb_secondary=(0.5, 1.0), planet_periods=(0.5, 3.0),
                          host_radius=(1.4, 2.4))
    settings = {"data_root": str(data), "sector": 33, "family": "spoc", "toi_csv": str(sim.toi_csv),
                "known_planets": str(sim.known_planets_csv)}
    out = tmp_path_factory.mktemp("tec-secondary-run")
    cfg = config.resolve(TEC, settings=settings, runner={"workers": 2},
                         steps={"modshift_med": {"figures": False}, "modshift_alt": {"figures": False}})
    res = runner.run(TEC, cfg, out, progress=False, until="rank")
    assert res.ok, {n: (s.state, s.message) for n, s in res.steps.items() if s.state != "done"}
    truth = {(t["tic"], t["planet_number"]): t for t in pq.read_table(sim.truth).to_pylist()}
    ranking = {(r["tic"], r["planet_number"]): r for r in pq.read_table(out / "ranking.parquet").to_pylist()}
    return out, truth, ranking


def table(out, step):
    return {(r["tic"], r["planet_number"]): r for r in ds.dataset(out / step, format="parquet").to_table().to_pylist()}


def test_the_sector_has_the_failure_modes_conditions(sector):
    _, truth, _ = sector
    planets = [t for t in truth.values() if t["kind"] == "planet"]
    assert all(t["red_ratio"] >= 0.3 for t in planets)
    duty = np.array([t["duration_h"] / 24 / t["period"] for t in planets])
    assert np.mean(duty > 0.05) >= 0.5
    ebs = [t for t in truth.values() if t["kind"] == "eb"]
    assert ebs and all(t["secondary_depth_ppm"] >= 0.5 * t["depth_ppm"] for t in ebs)


def test_planets_without_a_secondary_rarely_get_a_secondary_flag(sector):
    out, truth, ranking = sector
    planets = [k for k, t in truth.items() if t["kind"] == "planet" and ranking[k]["tier"] is not None]
    assert len(planets) >= 80
    flagged = [k for k in planets if SECONDARY_FLAGS & set(ranking[k]["flags"])]
    assert len(flagged) / len(planets) < 0.03, [(k, ranking[k]["flags"]) for k in flagged]
    # the significance test itself, before the albedo override can explain a dip away
    for step in ("modshift_med", "modshift_alt"):
        ms = table(out, step)
        tested = [k for k in planets if ms[k]["modshift_valid"]]
        assert len(tested) >= 0.9 * len(planets)
        assert np.mean([ms[k]["secondary_good"] for k in tested]) < 0.03, step


def test_deep_eclipsing_binaries_pass_triage_and_reach_tier_3(sector):
    out, truth, ranking = sector
    ebs = [k for k, t in truth.items() if t["kind"] == "eb" and ranking[k]["triage_reason"] not in DV_NOT_CONVERGED]
    assert len(ebs) >= 30
    triage = table(out, "flux_triage")
    assert not [k for k in ebs if triage[k]["reason"] == "newMesShrink"]
    tier3 = [k for k in ebs if ranking[k]["tier"] == 3]
    assert len(tier3) / len(ebs) >= 0.95, [(k, ranking[k]["triage_reason"], ranking[k]["flags"])
                                           for k in ebs if k not in tier3]
    # and for the stated reason: a significant secondary eclipse, not overridden
    assert all(SECONDARY_FLAGS & set(ranking[k]["flags"]) for k in tier3)
