"""vison run settings: what ``vison_config_*.py`` and the ``vison_run`` options held, validated.

Replaces the hand-edited configuration script of the runbook ("Data checks / analysis: the
configuration file"): the data path and day folder(s), the session (``-t _D11``), the tests of
the session with their OBSID limits (``test_specifics``; by default each test is found in the
EXP_LOG by name), the hardware serials, the performance limits (``perflimits``: offsets per
block, CCD and quadrant ±50 ADU around their nominal; image and overscan minus prescan ±10 ADU;
RON 0.86-1.44 ADU) and the preprocessing (``offsetkwargs``: trims [25, 5] for the prescan,
[5, 5] for the other regions; the offset method).  Geometry is never a setting: every size comes
from each file's header (``NAXIS1``/``NAXIS2``, :func:`steps.vison.elvis.geometry_from_header`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from astroflow.pipeline import DataRoot, Settings
from steps.vison import tasks
from steps.vison.elvis import QUADRANTS, find_explogs


class Limits(BaseModel):
    """vison's performance limits (``perflimits``) for the Tasks' checks."""

    model_config = ConfigDict(extra="forbid")

    offsets_adu: dict[str, float] = Field(default_factory=dict, description=(
        "nominal offset per CCD and quadrant of the block, e.g. {'CCD1_E': 1345.0}; missing ones use offset_range_adu"))
    offset_tolerance_adu: float = Field(50.0, gt=0, description="allowed |offset - nominal|")
    offset_range_adu: tuple[float, float] = Field((500.0, 5000.0), description=(
        "sanity range of a prescan offset where no nominal is configured"))
    region_minus_prescan_adu: float = Field(10.0, gt=0, description="allowed |image or overscan - prescan| offset")
    ron_adu: tuple[float, float] = Field((0.86, 1.44), description="read noise limits (also the regions' std)")
    max_lost_pixels: int = Field(0, ge=0, description="pixels at 0 per quadrant before LOSTPIXELS")
    max_saturated_pixels: int = Field(0, ge=0, description="pixels at 65535 per quadrant of a bias before SATURATION")
    dark_fluence_adu: tuple[float, float] = Field((-2.0, 5.0), description=(
        "a dark's image minus prescan offset (vison's DARK01 Flu_lims) before FLUENCE_OOL"))

    def nominal(self, ccd: int, quadrant: str) -> float | None:
        return self.offsets_adu.get(f"CCD{ccd}_{quadrant}")


class Preprocessing(BaseModel):
    """vison's ``offsetkwargs``: the trims and the offset method."""

    model_config = ConfigDict(extra="forbid")

    trim_prescan: tuple[int, int] = Field((25, 5), description="columns left out of the prescan, first and last")
    trim_other: tuple[int, int] = Field((5, 5), description="columns left out of the image and overscan")
    offset_method: Literal["median", "row"] = Field("median", description=(
        "BIAS0X subtracts one global prescan median per quadrant; 'row' a per-row median (adds noise)"))


class VisonSettings(Settings):
    data_root: DataRoot = Field(description="an ELVIS day folder (with its EXP_LOG), or a folder of day folders")
    day_folders: list[str] = Field(default_factory=list, description=(
        "day folders under data_root to read (default: data_root itself if it holds an EXP_LOG, else every "
        "sub-folder that does); their EXP_LOGs are merged"))
    tests: list[str] = Field(description="tests of the session, e.g. BIAS01,BIAS02 (specific names resolve by rule)",
                             min_length=1)
    session: str = Field("D00", pattern=r"^[A-Za-z0-9_-]+$", description="session name (results in RUN/<session>/)")
    block: str = Field("BLOCK", pattern=r"^[A-Za-z0-9-]+$", description=(
        "the detector block's name (vison's BLOCKID, e.g. NAB, BORN): in the cosmetics masks' file names "
        "EUC_MASK_{block}_CCD{n}_SN_{serial}.fits and their calibration-library attributes"))
    obsid_limits: dict[str, tuple[int, int]] = Field(default_factory=dict, description=(
        "first and last ObsID per test (vison's OBSID_lims); a test not listed is found in the EXP_LOG by name"))
    wait: bool = Field(False, description=(
        "wait mode (vison_run -W; set by `astroflow vison wait`): a test is analysed once its sequence is complete "
        "(its structure's frames and their CCD and HK files, or a later test begun); aim mode analyses it as found"))
    start_obsid: int | None = Field(None, ge=0, description=(
        "use only frames from this ObsID on (vison_run -O: a session resubmitted after a failure)"))
    check_only: bool = Field(False, description="run each Task's check alone (vison_run -k), then its flags")
    serials: dict[str, str] = Field(default_factory=dict, description=(
        "hardware serials: CCD1, CCD2, CCD3, ROE, RPSU; frames with others raise WRONG_ROE_CONF"))
    elvis: str | None = Field(None, description="ELVIS version of the EXP_LOGs (default: from their header)")
    hk_limits: Literal["performance", "safe"] = Field("performance", description="HK limit set")
    limits: Limits = Field(default_factory=Limits)
    preprocessing: Preprocessing = Field(default_factory=Preprocessing)

    @field_validator("serials", "obsid_limits", mode="before")
    @classmethod
    def _from_text(cls, value):
        """A flag's text: JSON, or ``KEY=VALUE,KEY=VALUE`` (an ObsID range as ``FIRST:LAST``)."""
        if not isinstance(value, str):
            return value
        text = value.strip()
        if text.startswith("{"):
            return json.loads(text)
        out = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            key, sep, val = part.partition("=")
            if not sep:
                raise ValueError(f"{part!r}: expected KEY=VALUE")
            out[key.strip()] = val.strip().split(":") if ":" in val else val.strip()
        return out

    @field_validator("tests")
    @classmethod
    def _known_tests(cls, value: list[str]) -> list[str]:
        for t in value:
            try:
                tasks.resolve(t)
            except tasks.UnknownTest as exc:
                raise ValueError(str(exc)) from None
        if len(set(value)) != len(value):
            raise ValueError(f"a test is listed twice: {value}")
        return value

    @field_validator("serials")
    @classmethod
    def _serial_keys(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = set(value) - {"CCD1", "CCD2", "CCD3", "ROE", "RPSU"}
        if unknown:
            raise ValueError(f"unknown serial keys {sorted(unknown)}: use CCD1, CCD2, CCD3, ROE, RPSU")
        return value

    @field_validator("limits")
    @classmethod
    def _offset_keys(cls, value: Limits) -> Limits:
        keys = {f"CCD{c}_{q}" for c in (1, 2, 3) for q in QUADRANTS}
        unknown = set(value.offsets_adu) - keys
        if unknown:
            raise ValueError(f"unknown offset keys {sorted(unknown)}: use CCD1_E ... CCD3_H")
        return value

    def folders(self) -> list[Path]:
        """The day folders of the run."""
        root = Path(self.data_root)
        if self.day_folders:
            return [root / d for d in self.day_folders]
        if root.is_dir() and find_explogs(root):
            return [root]
        return sorted(p for p in root.iterdir() if p.is_dir() and find_explogs(p)) if root.is_dir() else [root]
