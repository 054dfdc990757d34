"""The options of ``astroflow simulate vison`` / ``astroflow demo vison`` and the call behind them.

Kept apart from the simulator so that the pipeline declaration imports only pydantic here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Fault = Literal["missing_ccd", "corrupt_fits", "explog_missing_rows", "hk_ool", "wrong_serials", "lost_pixels"]


class VisonSimulation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sim_tests: list[str] = Field(["BIAS01", "BIAS02"], min_length=1, description=(
        "first-wave tests to acquire (BIAS01, BIAS02, DARK01, PTC01, PTC02WAVE, NL02, FLAT01, CHINJ01, TP01, "
        "COSMETICS00)"))
    full_size: bool = Field(False, description="4238 x 4172 frames (default: a reduced geometry, 398 x 168)")
    seed: int = Field(0, ge=0, description="random seed (the same seed gives the same bytes)")
    faults: list[Fault] = Field([], description="bad inputs to include, each listed in truth/faults.parquet")
    max_frames: int | None = Field(None, ge=1, description="keep the first frames of each test (a test cut short)")
    resubmitted: dict[str, int] = Field({}, description=(
        "tests aborted after n frames and then acquired whole again, as TEST=n,TEST=n"))

    @field_validator("resubmitted", mode="before")
    @classmethod
    def _from_text(cls, value):
        if not isinstance(value, str):
            return value
        pairs = [p.partition("=") for p in value.split(",") if p.strip()]
        if any(not sep for _, sep, _ in pairs):
            raise ValueError(f"{value!r}: expected TEST=n,TEST=n")
        return {k.strip(): v.strip() for k, _, v in pairs}


def simulate(out: Path, opts: VisonSimulation) -> dict:
    """Write one simulated day folder under ``out``; return the settings that analyse its Tasks."""
    from steps.vison import tasks
    from steps.vison.simulate import SERIALS, simulate_day

    day = simulate_day(Path(out), full_size=opts.full_size, seed=opts.seed, faults=tuple(opts.faults),
                       tests=tuple(opts.sim_tests), max_frames=opts.max_frames, resubmitted=opts.resubmitted)
    analysable = [t for t in opts.sim_tests if t in tasks.TASKS]
    return {"data_root": str(day.day_folder), "tests": analysable or list(tasks.TASKS)[:1], "session": "D00",
            "serials": {f"CCD{i + 1}": s for i, s in enumerate(SERIALS)}}
