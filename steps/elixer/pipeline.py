"""ELiXer, HETDEX runbook step 18: classify line detections, build their reports, catalogue them.

    astroflow run elixer --detections detect_hdr5.h5 [--detectids LIST] --out RUN   # or:
    astroflow elixer run --detections detect_hdr5.h5 --out RUN [--mini --nei]
    astroflow elixer recover --out RUN            # 18.4: rebuild missing or failed reports
    astroflow elixer report-db --reports RUN/reports --out DBDIR                      # 18.5
    astroflow demo elixer --out RUN               # simulated detections, same pipeline
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from astroflow.pipeline import Pipeline
from steps.elixer.classify import classify
from steps.elixer.count import count
from steps.elixer.merge import merge
from steps.elixer.report_db import report_db
from steps.elixer.settings import ElixerSettings
from steps.elixer.tools import TOOLS


class ElixerSimulation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    n_detections: int = Field(60, ge=1, description="number of simulated line detections")
    seed: int = Field(0, description="random seed")
    low_ew_lae_fraction: float = Field(0.1, ge=0, le=1, description="fraction of LyA lines with EW_rest < 20 A")


def simulate(out: Path, opts: ElixerSimulation) -> dict:
    from steps.elixer.simulate import simulate_detections

    paths = simulate_detections(Path(out), n=opts.n_detections, seed=opts.seed,
                                low_ew_lae_fraction=opts.low_ew_lae_fraction)
    return {"detections": str(paths["detections"]), "detectids": str(paths["detectids"])}


ELIXER = Pipeline(
    "elixer",
    settings=ElixerSettings,
    simulate=simulate,
    simulate_options=ElixerSimulation,
    report="steps.elixer.run_report:section",
    tools=TOOLS,
    doc=__doc__.splitlines()[0],
    steps=[
        classify,   # 18.1-18.2  detectids -> classification + reports (fan-out by detectid)
        merge,      # 18.3       shard parts -> elixer_cat.h5
        count,      # 18.4       expected vs present reports per type
        report_db,  # 18.5       [optional] report images -> SQLite databases
    ],
)
