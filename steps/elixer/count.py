"""Runbook step 18.4, ``find . -name "*[0-9].pdf" | wc`` (and png, nei.png, mini.png): expected
versus present reports per type, in one table (and in ``astroflow elixer recover --check``)."""

from __future__ import annotations

import pyarrow as pa

from astroflow import rundir
from astroflow.step import Step
from steps.elixer.reportfiles import counts

SCHEMA = pa.schema([("type", pa.string()), ("expected", pa.int64()), ("present", pa.int64()),
                    ("whole", pa.int64()), ("missing", pa.int64()), ("missing_ids", pa.list_(pa.int64()))])


def expected_ids(run_dir) -> list[int]:
    plan = rundir.Plan.load(run_dir / "classify")
    return [int(it["detectid"]) for s in plan.shards for it in s.items] if plan else []


def report_counts(run_dir, kinds) -> list[dict]:
    return counts(expected_ids(run_dir), run_dir / "reports", kinds)


def run(ctx):
    return report_counts(ctx.run_dir, ctx.settings.report_types())


count = Step("count", inputs=("classify",), run=run, schema=SCHEMA, doc=__doc__)
