import pytest

from steps.elixer.simulate import simulate_detections


@pytest.fixture(scope="session")
def sim1000(tmp_path_factory):
    """The simulator's own population; about 170 LyA calls at S/N >= 6, so that 1.5 % is 2.5 of them."""
    return simulate_detections(tmp_path_factory.mktemp("elixer1000"), n=1000, seed=11)


@pytest.fixture(scope="session")
def sim_small(tmp_path_factory):
    return simulate_detections(tmp_path_factory.mktemp("elixer12"), n=12, seed=5)
