"""The options of a SEDM simulation (for ``astroflow simulate sedm`` / ``astroflow demo sedm``)
and the call behind them.

Kept apart from the simulator so that a pipeline declaration imports only pydantic here: the
simulator (``steps.sedm.simulate``) is imported when a simulation is asked for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Case = Literal["outside", "faint", "guider_failed", "neighbour", "few_arcs"]


class SedmSimulation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    date: str = Field("20240612", pattern=r"^\d{8}$", description="UT date of the night, YYYYMMDD")
    full: bool = Field(False, description="2048 x 2048 frames, 1027 spaxels and 15 transients "
                                          "(default: 768 x 768, 169 spaxels, 7 transients)")
    seed: int = Field(0, ge=0, description="random seed (the same seed gives the same bytes)")
    cases: list[Case] = Field(["outside", "faint", "guider_failed", "neighbour"],
                              description="quality cases to include, each listed in truth/frames.parquet")


def simulate(out: Path, opts: SedmSimulation) -> dict:
    """Write the simulated night under ``out``; return the settings that reduce it (the truth's
    folder is left out: the pipeline never reads it)."""
    from steps.sedm.simulate import simulate_night

    written = simulate_night(Path(out), full=opts.full, seed=opts.seed, cases=tuple(opts.cases), date=opts.date)
    return {k: v for k, v in written.items() if k != "truth"}
