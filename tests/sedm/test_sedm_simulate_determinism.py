"""The same seed writes the same bytes; another seed another night."""

from __future__ import annotations

import numpy as np
import pytest

from steps.sedm import simulate_optics as opt
from steps.sedm.simulate import simulate_night


def test_same_seed_same_bytes(sedm_sim, tmp_path):
    again = simulate_night(tmp_path)
    ours = sorted(p.relative_to(sedm_sim.root) for p in sedm_sim.root.rglob("*") if p.is_file())
    theirs = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert ours == theirs and again["date"] == sedm_sim.settings["date"]
    for rel in ours:
        assert (sedm_sim.root / rel).read_bytes() == (tmp_path / rel).read_bytes(), rel


def test_another_seed_another_instrument():
    a = opt.make_spaxels(opt.SMALL, np.random.default_rng([1, 1]))
    b = opt.make_spaxels(opt.SMALL, np.random.default_rng([2, 1]))
    assert not np.allclose(a.wave_coeffs, b.wave_coeffs) and not np.allclose(a.throughput, b.throughput)


def test_unknown_case_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown SEDM simulation cases"):
        simulate_night(tmp_path, cases=("cloudy",))


def test_the_options_know_every_case():
    from typing import get_args

    from steps.sedm.simulate import DEFAULT_CASES
    from steps.sedm.simulate_plan import CASES
    from steps.sedm.simulation import Case, SedmSimulation

    assert set(get_args(Case)) == set(CASES)
    assert tuple(SedmSimulation().cases) == DEFAULT_CASES
