"""SEDM run settings: the runbook's hand edits as one validated configuration.

Replaces the paths and counts the pysedm/sedmpy night scripts took from their own source and
environment: the raw root (``/data/sedm/raw``, read-only), the reduced root
(``/scr2/sedmdrp/redux``), the UT date of the night (``redux/20180907``), and how many frames
of each afternoon set the calibrations wait for ("Once all the bias files are acquired the
master biases are generated"): the observatory announces each set in OBJECT (``Calib: bias 3 of
10``); a set is complete at its announced size or the ideal count, and usable down to the
minimum.  ``SEDM_DATA_ROOT``, ``SEDM_REDUX_ROOT`` and ``SEDM_USER`` are still read.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, model_validator

from astroflow.pipeline import DataRoot, Settings


class SedmSettings(Settings):
    environment = {"SEDM_DATA_ROOT": "data_root", "SEDM_REDUX_ROOT": "redux_root", "SEDM_USER": "user"}

    data_root: DataRoot = Field(description="raw root: IFU and guider frames under {data_root}/{date}/")
    date: str = Field(description="UT date of the night, YYYYMMDD (the run's partition)", pattern=r"^\d{8}$")
    redux_root: Path | None = Field(None, description="reduced root: the night directory is {redux_root}/{date} "
                                    "(default: RUN/redux)")
    standards: Path | None = Field(None, description="standards folder: one reference spectrum per star, "
                                   "named by the OBJECT's star name (BD+33d2642.csv)")
    user: str | None = Field(None, description="who runs the night (SEDM_USER)")
    bias_ideal: int = Field(10, ge=1, description="bias frames per ADC speed the master waits for")
    bias_minimum: int = Field(5, ge=1, description="fewest bias frames per ADC speed that make a master")
    lamp_ideal: int = Field(5, ge=1, description="frames of each arc lamp (Hg, Cd, Xe) and dome set waited for")
    lamp_minimum: int = Field(3, ge=1, description="fewest frames of an arc or dome set that are used")
    minmax_above: int = Field(7, ge=2, description="stack a master bias with min/max rejection when it has "
                              "more frames than this (else the median)")

    @model_validator(mode="after")
    def _counts_and_roots(self):
        for kind in ("bias", "lamp"):
            if getattr(self, f"{kind}_minimum") > getattr(self, f"{kind}_ideal"):
                raise ValueError(f"{kind}_minimum ({getattr(self, f'{kind}_minimum')}) is above "
                                 f"{kind}_ideal ({getattr(self, f'{kind}_ideal')})")
        if self.redux_root is not None:
            raw, redux = Path(os.path.abspath(self.data_root)), Path(os.path.abspath(self.redux_root))
            if redux == raw or raw in redux.parents:
                raise ValueError(f"redux_root {redux} is inside the raw root {raw}: raw data is read-only")
        return self

    def raw_roots(self) -> list[Path]:
        """The raw-data folders no step may write in (the ``DataRoot`` fields)."""
        return [Path(self.data_root)]

    def raw_night(self) -> Path:
        """The raw frames of the night: ``{data_root}/{date}/``."""
        return Path(self.data_root) / self.date

    def ideal(self, kind: str) -> int:
        return self.bias_ideal if kind == "bias" else self.lamp_ideal

    def minimum(self, kind: str) -> int:
        return self.bias_minimum if kind == "bias" else self.lamp_minimum
