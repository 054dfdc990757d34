"""NRES run settings: the runbook's hand edits and environment variables as one configuration.

Replaces the globs over ``/archive/engineering/{site}/{instrument}/{day-obs}/raw/`` typed per
batch (``201712??/raw/*b00*``), the ``--site --camera --nres-instrument --start --end`` of every
``nres_stack_calibrations`` call, the 18-day loops, and the original environment variables:
``NRES_DATA_ROOT`` (``data_root``), ``NRES_DO_RV`` (``do_rv``), ``CAL_STACK_DELAY``
(``stack_delay_s``), ``FITS_BROKER`` (``fits_broker``) and ``DB_URL`` (the core's ``[run]
db_url``, read as ``ASTROFLOW_DB_URL``).  The variables are still accepted: when set they
override the configuration file, and the resolved values are what the run records.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from pydantic import Field, model_validator

from astroflow.pipeline import DataRoot, Settings

class NresSettings(Settings):
    environment = {"NRES_DATA_ROOT": "data_root", "NRES_DO_RV": "do_rv", "CAL_STACK_DELAY": "stack_delay_s",
                   "FITS_BROKER": "fits_broker"}

    data_root: DataRoot = Field(description="raw archive root: {data_root}/{site}/{instrument}/{day-obs}/raw/*.fits.fz")
    site: str = Field(description="site code, e.g. cpt", min_length=3, max_length=3)
    instrument: str = Field(description="NRES unit, e.g. nres03", pattern=r"^nres\d{2}$")
    start: date | None = Field(None, description="first DAY-OBS to reduce (YYYY-MM-DD; default: night)")
    end: date | None = Field(None, description="DAY-OBS after the last one to reduce (exclusive; default: start + 1 day)")
    night: str | None = Field(None, description="one DAY-OBS YYYYMMDD (the run's partition; sets start and end)",
                              pattern=r"^\d{8}$")
    targets: Path | None = Field(None, description="targets.csv (the original format)")
    do_rv: bool = Field(True, description="measure radial velocities (NRES_DO_RV)")
    stack_delay_s: float = Field(300.0, ge=0, description="wait after a calibration block ends before stacking (CAL_STACK_DELAY)")
    fits_broker: str | None = Field(None, description="AMQP URL of the archive's fits exchange (FITS_BROKER; site events)")
    min_bias: int = Field(5, ge=1, description="frames needed to stack a master BIAS")
    min_dark: int = Field(5, ge=1, description="frames needed to stack a master DARK")
    min_flat: int = Field(5, ge=1, description="frames needed to stack a master FLAT (per fiber state)")
    min_double: int = Field(1, ge=1, description="frames needed to stack a DOUBLE arc")
    templates: list[str] = Field(default_factory=list, description="RV standards to make ZERO files from (empty: "
                                 "every target with template_min_frames exposures in one night)")
    template_min_frames: int = Field(5, ge=1, description="exposures of one night that make a ZERO (the runbook: 5 at S/N ~200)")
    template_min_snr: float = Field(30.0, ge=0, description="exposures below this S/N are left out of a ZERO")

    @model_validator(mode="after")
    def _dates(self):
        if self.night is not None:
            d = date(int(self.night[:4]), int(self.night[4:6]), int(self.night[6:]))
            if self.start is None:
                self.start = d
            if self.end is None:
                self.end = d + timedelta(days=1)
        if self.start is None:
            raise ValueError("give start (and end) or night")
        if self.end is None:
            self.end = self.start + timedelta(days=1)
        if self.end <= self.start:
            raise ValueError(f"end {self.end} is not after start {self.start}")
        return self

    def day_obs(self) -> list[str]:
        """The DAY-OBS folders of the run, YYYYMMDD."""
        n = (self.end - self.start).days
        return [(self.start + timedelta(days=i)).strftime("%Y%m%d") for i in range(n)]

    def raw_folder(self, day_obs: str) -> Path:
        return Path(self.data_root) / self.site / self.instrument / day_obs / "raw"

