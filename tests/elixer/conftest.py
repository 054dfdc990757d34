import pytest

from steps.elixer.simulate import simulate_detections


@pytest.fixture(scope="session")
def sim300(tmp_path_factory):
    return simulate_detections(tmp_path_factory.mktemp("elixer300"), n=300, seed=11)


@pytest.fixture(scope="session")
def sim_small(tmp_path_factory):
    return simulate_detections(tmp_path_factory.mktemp("elixer12"), n=12, seed=5)
