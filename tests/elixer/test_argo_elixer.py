"""The ELiXer WorkflowTemplate: valid, committed, and within Argo's limits for 100,000 detections."""

from pathlib import Path

import yaml

from astroflow import argo
from astroflow.rundir import Plan
from steps.elixer.pipeline import ELIXER

ROOT = Path(__file__).resolve().parents[2]


def test_template_is_valid_and_committed():
    text = argo.to_yaml(ELIXER)
    doc = yaml.safe_load(text)
    argo.validate(doc)
    assert (ROOT / "argo" / "elixer.yaml").read_text() == text
    assert len(text.encode()) < 256 * 1024


def test_100k_detections_stay_within_argo_limits():
    step = ELIXER.step("classify")
    plan = Plan.cut([{"detectid": 3000000000 + i} for i in range(100_000)], step.shard_size, 1000)
    assert len(argo.shard_ids(plan.n_shards).encode()) < 10 * 1024
    other_pods = 2 * len(ELIXER.steps) + 1  # init, one plan task and at least one pod per other step
    assert plan.n_shards + other_pods <= 1000
