"""HETDEX (VIRUS) reduction: Karl's runbook steps 1-17 and 20 and Chenxu's flats and biases.

    astroflow run hetdex --config run.toml        # or --data-root DIR --months 202401 --out RUN
    astroflow demo hetdex --out RUN               # simulated month (1 IFU, 1 shot), same pipeline
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from astroflow.pipeline import Pipeline
from astroflow.step import Step
from steps.hetdex.background import background
from steps.hetdex.inventory import inventory
from steps.hetdex.library import CALIBRATIONS
from steps.hetdex.master_bias import master_bias
from steps.hetdex.pixel_flat import bad_pixels, pixel_flat
from steps.hetdex.settings import HetdexSettings
from steps.hetdex.twilight_cal import amp_to_amp_rows, twilight_cal
from steps.hetdex.sci_reduce import sci_reduce
from steps.hetdex.full_sky import full_sky
from steps.hetdex.pixel_residuals import pixel_residuals
from steps.hetdex.astrometry import astrometry
from steps.hetdex.throughput import throughput
from steps.hetdex.calfib import calfib
from steps.hetdex.detections import detect_search, detections
from steps.hetdex.continuum import continuum
from steps.hetdex.shot_h5 import shot_h5
from steps.hetdex.release import detect_h5, survey_h5
from steps.hetdex.ml_inputs import ml_inputs, ml_merge


class HetdexSimulation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    n_ifus: int = Field(1, ge=1, le=78, description="IFUs in the focal plane (78 at full size)")
    n_shots: int = Field(1, ge=1, le=20, description="science shots (three dithered exposures each)")
    seed: int = Field(0, description="random seed (the same seed gives the same data)")
    month: str = Field("202401", description="month YYYYMM of the simulated data")
    n_zero: int = Field(8, ge=2, description="zero frames (one of them bad when >= 4)")
    n_lae: int = Field(30, ge=0, description="Lyman-alpha emitters per IFU and shot")
    n_oii: int = Field(10, ge=0, description="[OII] emitters per IFU and shot")
    n_stars: int = Field(3, ge=0, description="catalogue stars per IFU and shot")
    n_traps: int = Field(2, ge=0, description="charge traps in the whole focal plane")


def simulate(out: Path, opts: HetdexSimulation) -> dict:
    """Write a simulated month in the observatory's formats; return the settings that reduce it."""
    from steps.hetdex.simulate import simulate_month

    return simulate_month(Path(out), n_ifus=opts.n_ifus, n_shots=opts.n_shots, seed=opts.seed, month=opts.month,
                          n_zero=opts.n_zero, n_lae=opts.n_lae, n_oii=opts.n_oii, n_stars=opts.n_stars,
                          n_traps=opts.n_traps)


amp_to_amp = Step(
    "amp_to_amp",
    inputs=("twilight_cal",),
    run=amp_to_amp_rows,
    schema=pa.schema([("month", pa.string()), ("ifuslot", pa.string()), ("specid", pa.string()),
                      ("amp", pa.string()), ("a2a", pa.float64())]),
    doc="Runbook 6 rstep4-6: amp-to-amp normalisation from the full field of twilights, per month.",
)

HETDEX = Pipeline(
    "hetdex",
    settings=HetdexSettings,
    simulate=simulate,
    simulate_options=HetdexSimulation,
    calibrations=CALIBRATIONS,
    report="steps.hetdex.run_report:section",
    doc=__doc__.splitlines()[0],
    steps=[
        inventory,       # 1-2   tar lists and header table (fan-out by tar)
        master_bias,     # 4     monthly master bias + charge traps (by month, controller, amp)
        pixel_flat,      # C1    pixel flats (by camera and amp)
        bad_pixels,      # C1.4  pix_mask.tab
        background,      # 5     sci/bri/twi background models (by month, camera, amp)
        twilight_cal,    # 6     trace, profile, wavelength, fiber-to-fiber (by month, IFU, amp)
        amp_to_amp,      # 6.4-6 amp-to-amp over the field
        sci_reduce,      # 7     science reduction (by shot, exposure, IFU, amp)
        full_sky,        # 20    full-field sky and its per-amp table (by shot and exposure)
        pixel_residuals, # 14b-d twilight flats, residual and chi^2 maps per pixel (by month, IFU, amp)
        astrometry,      # 8     fiber coordinates, relative normalisation (by shot)
        throughput,      # 9-13  stars, FWHM, SED fits, throughput polynomial (by shot)
        calfib,          # 16    calibrated fibers (by shot and IFU)
        detect_search,   # 14    emission-line grid search (by shot and IFU)
        detections,      # 14    refinement: the detection catalogue (by shot and IFU)
        continuum,       # 15    continuum sources (by shot and IFU)
        shot_h5,         # 17    shot files DATEvOBS.h5 (by shot)
        survey_h5,       # 17    survey, fiber index, fiber mask, flim4600_averages.txt
        detect_h5,       # 17    detect_{release}.h5 and continuum_sources.h5
        ml_inputs,       # 17    2D spectrum cut-outs per detection (by shot)
        ml_merge,        # 17    merged_im2D.h5
    ],
)
