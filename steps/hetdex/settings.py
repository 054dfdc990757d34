"""HETDEX run settings: the runbook's hand edits as one validated configuration.

Replaces the month and shot lists typed into r1.${mth}/rsetvred/rsetups, the IFU-to-spectrograph
swaps hand-edited into the runs/runt scripts (readme.hist), the library paths of
``lib_calib/lib_mbias/${mth}`` and ``lib_pflat``, and the release name of the H5 scripts.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from astroflow.pipeline import DataRoot, Settings


class IfuSwap(BaseModel):
    """An IFU that was moved to another spectrograph (or whose header is wrong) from ``since``."""

    model_config = ConfigDict(extra="forbid")

    ifuslot: str = Field(description="IFU slot, 3 digits")
    specid: str = Field(description="spectrograph (camera) id from that date")
    ifuid: str | None = Field(None, description="IFU id from that date (default: keep the header's)")
    since: str = Field("00000000", description="first night (YYYYMMDD) the mapping applies")


class HetdexSettings(Settings):
    data_root: DataRoot = Field(description="raw VIRUS data: {date}/virus/virus{obs:07d}*.tar")
    months: list[str] = Field(default_factory=list, description="calibration months YYYYMM (empty: every month found)")
    shots: list[str] = Field(default_factory=list, description="science shots DATEvOBS to reduce (empty: all found)")
    star_catalog: Path | None = Field(None, description="CSV star_ID,ra,dec,u,g,r,i,z of field stars (astrometry, throughput)")
    fplane: Path | None = Field(None, description="fplane table (ifuslot fpx fpy specid specslot ifuid ifurot platesc)")
    ifu_swaps: list[IfuSwap] = Field(default_factory=list, description="IFU-to-spectrograph swaps overriding headers")
    release: str = Field("hdr5", description="release name of the H5 files (survey_{release}.h5 ...)")
    detectid_base: int | None = Field(None, description="first line detectid (default: release number x 1e9)")
    fwhm_guess: float = Field(1.7, description="PSF FWHM (arcsec) before the star fit", gt=0.5, lt=5)
    detect_sn_search: float = Field(4.8, description="S/N threshold of the grid search (runbook 14: 4.5 for its own statistic)")
    detect_sn_min: float = Field(5.0, description="S/N threshold of the refined catalogue")
    detect_min_ew_obs: float = Field(1.0, ge=0, description="lines on a significant continuum need this observed EW (A)")
    continuum_counts: float = Field(8.0, description="continuum fibers: median sky-subtracted e-/2A bin, blue or red")
    continuum_merge_arcsec: float = Field(3.0, description="continuum fibers closer than this are one source (runbook: 5.5)")
    continuum_sn_min: float = Field(5.0, description="continuum sources: S/N of the extracted 4200-5200 A continuum")
    cosmic_nsigma: float = Field(5.0, gt=0, description="runbook 7: a pixel this many sigma above the fiber-profile model is a cosmic ray")
    residual_chi2_max: float = Field(3.0, description="runbook 14_d: median extraction chi^2 above which a fiber-column is flagged")
    images_in_shot_files: bool = Field(True, description="write /Data/Images (1032x1032 per amp and exposure)")

    @field_validator("months")
    @classmethod
    def _months(cls, v):
        for m in v:
            if len(m) != 6 or not m.isdigit():
                raise ValueError(f"month {m!r} is not YYYYMM")
        return v

    @field_validator("shots")
    @classmethod
    def _shots(cls, v):
        for s in v:
            if len(s) != 12 or s[8] != "v" or not (s[:8] + s[9:]).isdigit():
                raise ValueError(f"shot {s!r} is not DATEvOBS (e.g. 20240105v011)")
        return v

    @property
    def release_number(self) -> int:
        digits = "".join(c for c in self.release if c.isdigit())
        return int(digits[0]) if digits else 0

    @property
    def line_id_base(self) -> int:
        return self.detectid_base if self.detectid_base is not None else self.release_number * 1_000_000_000

    def mapping(self, ifuslot: str, date: str, specid: str, ifuid: str) -> tuple[str, str]:
        """(specid, ifuid) of an IFU on a night, after the configured swaps."""
        for sw in sorted(self.ifu_swaps, key=lambda s: s.since):
            if sw.ifuslot == ifuslot and date >= sw.since:
                specid, ifuid = sw.specid, sw.ifuid or ifuid
        return specid, ifuid
