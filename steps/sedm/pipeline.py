"""SEDM (Palomar 60-inch IFU): the night's pipeline after the pysedm/sedmpy runbook; so far the
afternoon's calibrations: master biases, traces, wavelength solution, fallback.

    astroflow run sedm --data-root /data/sedm/raw --date 20180907 --redux-root /scr2/sedmdrp/redux --out RUN
    astroflow demo sedm --out RUN      # a simulated night, same pipeline
"""

from __future__ import annotations

from astroflow.arrivals import Arrivals
from astroflow.pipeline import Pipeline
from steps.sedm.calibration_sets import calibration_sets
from steps.sedm.calibration_table import calibrations
from steps.sedm.calibrations import CALIBRATIONS
from steps.sedm.debias_crr import debias_crr
from steps.sedm.errors_table import report
from steps.sedm.fallback import fallback
from steps.sedm.flat import flat
from steps.sedm.fluxcal_link import fluxcal_link
from steps.sedm.geometry import geometry
from steps.sedm.hexagrid import hexagrid
from steps.sedm.master_bias import master_bias
from steps.sedm.night import night
from steps.sedm.settings import SedmSettings
from steps.sedm.wavesolution import wavesolution
from steps.sedm.simulation import SedmSimulation, simulate

SEDM = Pipeline(
    "sedm",
    settings=SedmSettings,
    simulate=simulate,
    simulate_options=SedmSimulation,
    partition="date",
    calibrations=CALIBRATIONS,
    report=report,
    arrivals=Arrivals("data_root", ("{date}/*.fits",)),
    doc=__doc__.splitlines()[0],
    steps=[
        night,             # 1-2  the dated night directory, raw frames linked and classified (fan-out by frame)
        calibration_sets,  #      each afternoon set against "n of N" and the configured counts (fan-out by set)
        master_bias,       # 3    master bias per ADC speed (fan-out by speed)
        debias_crr,        # 4    b_ and crr_b_ of every other IFU frame (fan-out by frame)
        geometry,          # 5    the spaxel traces, blind from the dome flats ({date}_TraceMatch)
        hexagrid,          # 5    the hexagonal spaxel grid from the trace positions ({date}_HexaGrid)
        wavesolution,      # 5    per-spaxel wavelength solutions from the Hg, Cd, Xe arcs ({date}_WaveSolution)
        flat,              # 5    the 3D flat from the dome flats ({date}_Flat)
        fallback,          # 6    a failed geometry: the latest good night's files linked in (fan-out by product)
        fluxcal_link,      # 7    the most recent fluxcal_*.fits linked in
        calibrations,      #      the night's calibration products, one table
    ],
)
