"""SEDM run settings: the runbook's hand edits as one validated configuration.

Replaces the paths and counts the pysedm/sedmpy night scripts took from their own source and
environment: the raw root (``/data/sedm/raw``, read-only), the reduced root
(``/scr2/sedmdrp/redux``), the UT date of the night (``redux/20180907``), and how many frames
of each afternoon set the calibrations wait for ("Once all the bias files are acquired the
master biases are generated"): the observatory announces each set in OBJECT (``Calib: bias 3 of
10``); a set is complete at its announced size or the ideal count, and usable down to the
minimum.  An incomplete set waits for its frames until the night's calibration deadline (by
default 30 minutes, the runbook's "roughly 30 minutes" of pre-science processing, before the end
of the evening's astronomical twilight at Palomar, when "science image acquisition begins"),
then its minimum count or the fallback to an earlier night is used.  ``SEDM_DATA_ROOT``,
``SEDM_REDUX_ROOT`` and ``SEDM_USER`` are still read.
"""

from __future__ import annotations

import datetime as dt
import functools
import os
from pathlib import Path
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

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
    calibration_deadline: AwareDatetime | Literal["twilight"] = Field(
        "twilight", description="until when an incomplete afternoon set waits for its frames, then its minimum "
        "count or the fallback is used: a time with its zone (2024-06-12T04:10:00Z), or 'twilight': "
        "deadline_before_twilight_min before the evening Sun reaches twilight_sun_alt_deg at the site "
        "(resolved with the configuration: the run's run.json keeps the time)")
    deadline_before_twilight_min: float = Field(30.0, ge=0, description="minutes before twilight the "
                                                "calibrations stop waiting (the runbook: they take ~30 min)")
    twilight_sun_alt_deg: float = Field(-18.0, ge=-30, le=0, description="the twilight the deadline is before "
                                        "(-18: astronomical, when science acquisition begins)")
    site_latitude_deg: float = Field(33.35633, ge=-90, le=90, description="the site (Palomar Observatory)")
    site_longitude_deg: float = Field(-116.86492, ge=-180, le=360, description="east longitude of the site")
    site_height_m: float = Field(1712.0, description="height of the site above the ellipsoid")
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
        if self.calibration_deadline == "twilight":
            # the evening's twilight of the UT date: the first after {date} 00:00 UT less 6 h (the
            # Palomar evening that begins the night), less deadline_before_twilight_min
            self.calibration_deadline = _twilight(
                self.date, self.site_latitude_deg, self.site_longitude_deg, self.site_height_m,
                self.twilight_sun_alt_deg) - dt.timedelta(minutes=self.deadline_before_twilight_min)
        if not self.grid_min < self.grid_max:
            raise ValueError(f"grid_min ({self.grid_min}) must be below grid_max ({self.grid_max})")
        if self.redux_root is not None:
            raw, redux = Path(os.path.abspath(self.data_root)), Path(os.path.abspath(self.redux_root))
            if redux == raw or raw in redux.parents:
                raise ValueError(f"redux_root {redux} is inside the raw root {raw}: raw data is read-only")
        return self

    def deadline(self) -> dt.datetime:
        """The night's calibration deadline (UTC)."""
        return self.calibration_deadline.astimezone(dt.timezone.utc)

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


@functools.lru_cache(maxsize=32)
def _twilight(date: str, lat: float, lon: float, height: float, sun_alt: float) -> dt.datetime:
    from steps.sedm.science.twilight import evening_crossing

    start = dt.datetime.strptime(date, "%Y%m%d").replace(tzinfo=dt.timezone.utc) - dt.timedelta(hours=6)
    return evening_crossing(start, lat, lon, height, sun_alt)
