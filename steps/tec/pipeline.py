"""TEC (TESS-ExoClass) sector vetting, the runbook in order (../seeds/000: steps 1-21).

    astroflow run tec --data-root DIR --sector N --toi-csv TOI.csv --known-planets PS.csv --out RUN
    astroflow demo tec --out RUN        # simulated sector, same pipeline
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from astroflow.pipeline import Pipeline
from steps.tec.centroid_figures import centroid_figures
from steps.tec.dump import dump
from steps.tec.dv_report_pages import dv_report_pages
from steps.tec.federate_known import federate_known
from steps.tec.federate_toi import federate_toi
from steps.tec.flux_triage import flux_triage_step
from steps.tec.flux_weighted_centroids import flux_weighted_centroids
from steps.tec.gather import gather
from steps.tec.merge4tev import merge4tev
from steps.tec.modshift import modshift_alt, modshift_med
from steps.tec.modump_check import modump_check
from steps.tec.rank import rank_step
from steps.tec.reports import reports, run_report_section
from steps.tec.resample import resample
from steps.tec.self_match import self_match_step
from steps.tec.ses_mes import ses_mes
from steps.tec.settings import TecSettings
from steps.tec.skyline import skyline
from steps.tec.sweet import sweet
from steps.tec.tpf_resample import tpf_resample
from steps.tec.twexo import twexo
from steps.tec.tools import TOOLS


class TecSimulation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    n_tces: int = Field(200, ge=1, description="number of TCEs in the simulated sector")
    seed: int = Field(0, description="random seed (the same seed gives the same sector)")
    sector: int = Field(33, ge=1, description="sector number")
    family: Literal["spoc", "ftl"] = Field("spoc", description="2-min SPOC names or 10-min FTL/HLSP names")


def simulate(out: Path, opts: TecSimulation) -> dict:
    """Write a simulated sector in the SPOC formats; return the settings that run TEC on it."""
    from steps.tec.simulate import simulate_sector

    sim = simulate_sector(Path(out), n_tces=opts.n_tces, seed=opts.seed, sector=opts.sector, family=opts.family)
    return {
        "data_root": str(out),
        "sector": opts.sector,
        "family": "hlsp" if opts.family == "ftl" else "spoc",
        "toi_csv": str(sim.toi_csv),
        "known_planets": str(sim.known_planets_csv),
    }


TEC = Pipeline(
    "tec",
    settings=TecSettings,
    simulate=simulate,
    simulate_options=TecSimulation,
    report=run_report_section,
    tools=TOOLS,
    doc=__doc__.splitlines()[0],
    steps=[
        gather,            # 1  DV XML -> TCE table (fan-out by file)
        dump,              # 2  human-readable TCE table
        resample,          # 3  DV time series -> 10-min bins (fan-out by TIC)
        skyline,           # 4
        federate_known,    # 5
        self_match_step,   # 6
        dv_report_pages,   # 7  difference-image pages (fan-out by TCE)
        tpf_resample,      # 8  [optional] target pixel files -> DV bins (fan-out by TIC)
        ses_mes,           # 9  SES/MES statistics (fan-out by TCE)
        federate_toi,      # 10
        flux_triage_step,  # 11
        modshift_med,      # 12  trapezoid fit + model-shift on the DV median-detrended flux (fan-out by TCE)
        sweet,             # 13  SWEET sinusoid test, P < 5 d (fan-out by TCE)
        flux_weighted_centroids,  # 14  centroids + PDC goodness from the light curves (fan-out by TIC)
        modump_check,      # 15  events on momentum dumps
        twexo,             # 16  target facts and links page (fan-out by TIC)
        modshift_alt,      # 17  trapezoid fit + model-shift on the TEC detrending (fan-out by TCE)
        centroid_figures,  # 18  [optional] per-pixel significance figures (fan-out by TCE)
        rank_step,         # 19  RANK, flags, Tier files, ranking.parquet
        reports,           # 20  TEC report PDF per ranked TCE (fan-out by TCE)
        merge4tev,         # 21  DV mini-report + TEC reports per TIC for TEV (fan-out by TIC)
    ],
)
