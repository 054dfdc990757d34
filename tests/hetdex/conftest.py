"""One simulated HETDEX month (1 IFU, 1 shot) reduced once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from astroflow import config, runner
from steps.hetdex.pipeline import HETDEX, HetdexSimulation, simulate


@pytest.fixture(scope="session")
def demo(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("hetdex")
    data, run = root / "input", root / "run"
    settings = simulate(data, HetdexSimulation())
    cfg = config.resolve(HETDEX, settings=settings, runner={"workers": 2})
    result = runner.run(HETDEX, cfg, run, progress=False)
    assert result.ok, {n: s.message for n, s in result.steps.items() if s.state != "done"}
    return {"data": Path(data), "run": Path(run), "settings": settings}
