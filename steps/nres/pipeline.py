"""NRES (LCO's echelle spectrographs): calibrations, traces, extraction, radial velocities.

    astroflow run nres --data-root /archive/engineering --site cpt --instrument nres03 \\
        --start 2024-01-15 --end 2024-01-16 --targets targets.csv --out RUN
    astroflow demo nres --out RUN       # simulated nights, same pipeline
"""

from __future__ import annotations

from astroflow.arrivals import Arrivals
from astroflow.pipeline import Pipeline
from steps.nres.calibration_table import calibrations
from steps.nres.calibrations import CALIBRATIONS
from steps.nres.classify import classify
from steps.nres.extract import extract
from steps.nres.db import MIGRATIONS
from steps.nres.index import index
from steps.nres.night_summary import night_summary
from steps.nres.profile import profile
from steps.nres.rv import rv
from steps.nres.template import template
from steps.nres.reduce_frame import reduce_arc, reduce_bias, reduce_dark, reduce_flat, reduce_target
from steps.nres.settings import NresSettings
from steps.nres.simulation import NresSimulation, simulate
from steps.nres.stack import stack_arc, stack_bias, stack_dark, stack_flat
from steps.nres.summary import summary
from steps.nres.tools import TOOLS
from steps.nres.trace import trace
from steps.nres.wavelength import wavelength

NRES = Pipeline(
    "nres",
    settings=NresSettings,
    simulate=simulate,
    simulate_options=NresSimulation,
    partition="night",
    calibrations=CALIBRATIONS,
    db_migrations=MIGRATIONS,
    tools=TOOLS,
    arrivals=Arrivals("data_root", ("{site}/{instrument}/*/raw/*.fits.fz",)),
    doc=__doc__.splitlines()[0],
    steps=[
        index,          # the frame table (fan-out by raw file)
        reduce_bias,    # overscan, gain (fan-out by BIAS frame)
        stack_bias,     # master BIAS per night and set
        reduce_dark,    # + bias (fan-out by DARK frame)
        stack_dark,     # master DARK per night, set and temperature (e-/s)
        reduce_flat,    # + bias, dark (fan-out by LAMPFLAT frame)
        stack_flat,     # master FLAT per night and fiber state
        trace,          # blind traces from the night's two flats (fan-out by night and camera)
        profile,        # profile and blaze per master flat
        reduce_arc,     # + bias, dark (fan-out by DOUBLE frame)
        stack_arc,      # DOUBLE per night and fiber state
        wavelength,     # TRIPLE and the ThAr solution per fiber (fan-out by night and camera)
        reduce_target,  # + bias, dark (fan-out by TARGET frame)
        extract,        # 1-D spectra, drift-corrected wavelengths, continuum (fan-out by science frame)
        template,       # ZERO files of the RV standards (fan-out by standard and night)
        classify,       # the template of each science frame, TEFF and LOGG (fan-out by science frame)
        rv,             # radial velocities, barycentric correction, the -1d.fits (fan-out by science frame)
        summary,        # the -summary.pdf of each science frame (fan-out by science frame)
        calibrations,   # the masters of the run, one table
        night_summary,  # the night page: frames, velocities, failures, masters (fan-out by night)
    ],
)
