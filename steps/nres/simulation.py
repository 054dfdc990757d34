"""The options of ``astroflow simulate nres`` / ``astroflow demo nres`` and the call behind them.

Kept apart from the simulator so that the pipeline declaration imports only pydantic here: the
simulator (``steps.nres.simulate``) is imported when a simulation is asked for.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Site = Literal["cpt", "lsc", "elp", "tlv"]
Defect = Literal["truncated", "no_objects", "wrong_shape", "ignored_frames", "two_flats", "missing_target",
                 "malformed_target"]


class NresSimulation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    nights: int = Field(2, ge=1, le=30, description="nights per site, from DAY-OBS 2024-01-22")
    sites: list[Site] = Field(["cpt", "lsc"], min_length=1, description="LCO sites with an NRES unit")
    full: bool = Field(False, description="4096 x 4096 frames with 67 orders (default: 1024 x 1024, 12 orders)")
    seed: int = Field(0, ge=0, description="random seed (the same seed gives the same bytes)")
    defects: list[Defect] = Field([], description="defects to include, each listed in truth/defects.parquet")

    @model_validator(mode="after")
    def _two_flats_needs_a_previous_night(self):
        if "two_flats" in self.defects and self.nights < 2:
            raise ValueError("the two_flats defect needs nights >= 2 (the previous night's master is the fallback)")
        return self


def simulate(out: Path, opts: NresSimulation) -> dict:
    """Write the simulated nights under ``out``; return the settings that reduce the first site."""
    from steps.nres.simulate import simulate_nights

    return simulate_nights(Path(out), sites=tuple(opts.sites), nights=opts.nights, full=opts.full, seed=opts.seed,
                           defects=tuple(opts.defects))
