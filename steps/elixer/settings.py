"""ELiXer run settings: the switches of ``selixer --hdr 2 --dets LIST --png --neighborhood 10 --mini``.

The classification priors are a nested model (``[settings.priors]`` in a run configuration; see
:mod:`steps.elixer.science.priors` for every value and its source).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, FilePath

from astroflow.pipeline import Settings
from steps.elixer.science.priors import ClassifierPriors

REPORT_TYPES = {"png": ".png", "pdf": ".pdf", "nei": "_nei.png", "mini": "_mini.png"}


class ElixerSettings(Settings):
    detections: FilePath = Field(description="HETDEX detections HDF5 file (hetdex_api layout: /Detections, /Spectra, /Fibers)")
    detectids: FilePath | None = Field(None, description="one-column file of detectids to run (default: every detection)")
    png: bool = Field(True, description="write {detectid}.png reports")
    pdf: bool = Field(True, description="write {detectid}.pdf reports")
    mini: bool = Field(False, description="write {detectid}_mini.png reports (--mini)")
    nei: bool = Field(False, description="write {detectid}_nei.png neighbourhood images")
    neighborhood: float = Field(10.0, gt=0, description="neighbourhood radius, arcsec (--neighborhood)")
    ffsky: bool = Field(False, description="use the full-field sky-subtracted spectra (spec1d_ffsky)")
    seed: int = Field(0, description="seed of the Monte Carlo PLAE/POII intervals (per detection: seed + detectid)")
    priors: ClassifierPriors = Field(default_factory=ClassifierPriors, description="classification priors ([settings.priors])")

    def report_types(self) -> list[str]:
        return [t for t in REPORT_TYPES if getattr(self, t)]


def report_path(run_dir: Path, detectid: int, kind: str) -> Path:
    """ELiXer's names: ``{detectid}.png``, ``.pdf``, ``_nei.png``, ``_mini.png`` under RUN/reports/."""
    return Path(run_dir) / "reports" / f"{detectid}{REPORT_TYPES[kind]}"
