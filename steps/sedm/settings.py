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

from pydantic import BaseModel, ConfigDict, Field, model_validator

from astroflow.pipeline import DataRoot, Settings
from astroflow.sinks import Sink

ARC_LINES = Path(__file__).resolve().parent / "data" / "sedm_arclines.csv"  # the default arc line list


class SedmSinks(BaseModel):
    """Where the night's results go (runbook: "the spectrum is uploaded to the growth marshal", "push
    this plot to the SEDM-P60 slack channel", the pharos database, "sends out a summary e-mail"):
    each off by default; ``url: outbox`` is the local stand-in (``RUN/outbox/{sink}/``)."""

    model_config = ConfigDict(extra="forbid")

    marshal: Sink = Field(default_factory=Sink, description="spectra of objects matching upload_pattern")
    slack: Sink = Field(default_factory=Sink, description="each spectrum's verification plot")
    pharos: Sink = Field(default_factory=Sink, description="the SEDM database: one row per spectrum")
    email: Sink = Field(default_factory=Sink, description="the end-of-night summary (sedm report --final)")


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
    arc_lines: Path | None = Field(None, description="arc line list (CSV lamp,wavelength_vacuum,group,note; "
                                   "default: steps/sedm/data/sedm_arclines.csv)")
    wave_degree: int = Field(5, ge=1, le=9, description="degree of each spaxel's pixel-to-wavelength polynomial")
    wave_rms_limit: float = Field(3.0, gt=0, description="A: a spaxel's solution is good at or below this rms, "
                                  "and the night's solution fails (GeometrySolutionFailed) when the median is above")
    wave_min_lines: int = Field(8, ge=2, description="arc lines a spaxel's solution needs (and the reference "
                                "spaxel's identification)")
    wave_min_good: float = Field(0.8, gt=0, le=1, description="fraction of the traces that must have a good "
                                 "solution, else GeometrySolutionFailed")
    grid_min: float = Field(3700.0, gt=0, description="A: first wavelength of the cube grid (and the 3D flat)")
    grid_max: float = Field(9300.0, gt=0, description="A: last wavelength of the cube grid")
    grid_bins: int = Field(220, ge=2, description="wavelengths of the cube grid, evenly spaced")
    flat_band: tuple[float, float] = Field((4500.0, 8500.0), description="A: band whose median ratio to the "
                                           "median spaxel is a spaxel's throughput")
    fallback_nights: int = Field(7, ge=1, description="a failed geometry, wavelength solution or flat takes "
                                 "the latest good night's within this many nights")

    upload_pattern: str = Field("ZTF*", description="objects whose spectra go to the marshal (shell pattern)")
    email_to: str = Field("", description="who gets the end-of-night e-mail")
    sinks: SedmSinks = Field(default_factory=SedmSinks, description="marshal, slack, pharos, email; all off "
                             "by default")

    templates: Path | None = Field(None, description="the built-in classifier's template bank: a folder with "
                                   "bank.csv and one CSV per template (default: steps/sedm/data/templates)")
    snid: Path | None = Field(None, description="a real SNID executable; with snid_templates, classify runs it "
                              "instead of the built-in astroflow-xcor")
    snid_templates: Path | None = Field(None, description="SNID's template folder (its tempdir), for snid")

    @model_validator(mode="after")
    def _counts_and_roots(self):
        for kind in ("bias", "lamp"):
            if getattr(self, f"{kind}_minimum") > getattr(self, f"{kind}_ideal"):
                raise ValueError(f"{kind}_minimum ({getattr(self, f'{kind}_minimum')}) is above "
                                 f"{kind}_ideal ({getattr(self, f'{kind}_ideal')})")
        if not self.grid_min < self.grid_max:
            raise ValueError(f"grid_min ({self.grid_min}) must be below grid_max ({self.grid_max})")
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

    def grid(self):
        """The cube's wavelength grid (A, vacuum)."""
        import numpy as np

        return np.linspace(self.grid_min, self.grid_max, self.grid_bins)

    def line_list(self) -> Path:
        return self.arc_lines or ARC_LINES

    def ideal(self, kind: str) -> int:
        return self.bias_ideal if kind == "bias" else self.lamp_ideal

    def minimum(self, kind: str) -> int:
        return self.bias_minimum if kind == "bias" else self.lamp_minimum
