"""TEC run settings: every hand edit of the runbook as a validated configuration value.

Replaces tec_run_parameters.py / tec_make_params.py edits (sector number, run name, data root,
SPOC vs FTL file-name prefixes and postfixes, cadence flags), the TOI CSV path edited into
federate_toiWtce.py (line 174), the SECTOR_OVERRIDE and worker edits for multi-sector runs, and
the RESAMP edit of grab_flxwcent.py (derived from the cadence here).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from astroflow.pipeline import DataRoot, Settings
from steps.tec.products import Naming

CADENCE_MINUTES = {"2min": 2.0, "200s": 200 / 60, "10min": 10.0}


class TecSettings(Settings):
    sector: int = Field(description="sector number (the last sector of a multi-sector run)", ge=1)
    first_sector: int | None = Field(None, description="first sector of a multi-sector run", ge=1)
    data_root: DataRoot = Field(description="folder holding the sector's SPOC or FTL products (any layout)")
    run_name: str | None = Field(None, description="run name used in product file names (default sectorNN)")
    family: Literal["auto", "spoc", "hlsp"] = Field("auto", description="file-name family: SPOC 2-min or HLSP/FTL")
    lc_prefix: str | None = Field(None, description="light-curve file prefix (FTL lc_file_prefix)")
    lc_postfix: str | None = Field(None, description="light-curve file postfix (FTL lc_file_postfix)")
    dv_prefix: str | None = Field(None, description="DV file prefix (FTL dv_file_prefix)")
    dv_postfix: str | None = Field(None, description="DV file postfix (FTL dv_file_postfix)")
    cadence: Literal["auto", "2min", "200s", "10min"] = Field(
        "auto", description="cadence of the light curves (auto: from the files)")
    toi_csv: Path | None = Field(None, description="TEV TOI catalogue CSV as downloaded (no sed fix needed)")
    known_planets: Path | None = Field(None, description="NASA Exoplanet Archive CSV of known transiting planets")
    known_online: bool = Field(False, description="fetch the known-planet table from the archive when no file is given")
    seed: int = Field(0, description="seed of the random parts (noise fill, reference signals, fit starts)")

    @model_validator(mode="after")
    def _check(self):
        if self.first_sector is not None and self.first_sector > self.sector:
            raise ValueError(f"first_sector {self.first_sector} is after sector {self.sector}")
        return self

    @property
    def multi_sector(self) -> bool:
        return self.first_sector is not None and self.first_sector != self.sector

    @property
    def dv_sectors(self) -> tuple[int, int]:
        return (self.first_sector or self.sector, self.sector)

    @property
    def name(self) -> str:
        return self.run_name or f"sector{self.sector}"

    def naming(self) -> Naming | None:
        """The file-name family to match (None accepts both SPOC and HLSP)."""
        if self.family == "auto" and not any((self.lc_prefix, self.lc_postfix, self.dv_prefix, self.dv_postfix)):
            return None
        family = "hlsp" if self.family == "hlsp" else "spoc"
        return Naming(family, self.lc_prefix, self.lc_postfix, self.dv_prefix, self.dv_postfix)

    def tce_dir(self, tic: int) -> Path:
        """Per-TCE folder of the original layout: ``S{sector:02d}/{floor(TIC/1000):04d}``."""
        sector = -1 if self.multi_sector else self.sector
        return Path(f"S{sector:02d}") / f"{tic // 1000:04d}"
