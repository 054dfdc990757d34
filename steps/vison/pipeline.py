"""vison (Euclid VIS ground calibration): ELVIS day folders -> the Tasks' offsets, RON, gain, flags, masters.

    astroflow run vison --data-root DAYFOLDER --tests BIAS01,BIAS02 --out RUN
    astroflow demo vison --out RUN          # a simulated day, same pipeline
    astroflow simulate vison --out DIR

Each Task's sub-tasks (check, prep, basic, meta; :mod:`steps.vison.tasks`) are steps fanned out
per test and CCD; todo_flags are ``--set bias_basic.enabled=false``.  DARK01's meta reads the
master bias that BIAS01's meta registers in the calibration library (``bias_meta -> dark_meta``).
"""

from __future__ import annotations

from astroflow.pipeline import Pipeline
from steps.vison.bias_basic import bias_basic
from steps.vison.bias_check import bias_check
from steps.vison.bias_flags import bias_flags
from steps.vison.bias_meta import bias_meta
from steps.vison.bias_prep import bias_prep
from steps.vison.calibrations import CALIBRATIONS
from steps.vison.dark_check import dark_check
from steps.vison.dark_flags import dark_flags
from steps.vison.dark_meta import dark_meta
from steps.vison.dark_prep import dark_prep
from steps.vison.hk import hk
from steps.vison.inventory import inventory
from steps.vison.ptc_check import ptc_check
from steps.vison.ptc_extract import ptc_extract
from steps.vison.ptc_flags import ptc_flags
from steps.vison.ptc_meta import ptc_meta
from steps.vison.report import run_report_section
from steps.vison.settings import VisonSettings
from steps.vison.simulation import VisonSimulation, simulate

VISON = Pipeline(
    "vison",
    settings=VisonSettings,
    simulate=simulate,
    simulate_options=VisonSimulation,
    calibrations=CALIBRATIONS,
    report=run_report_section,
    partition="session",
    doc=__doc__.splitlines()[0],
    steps=[
        inventory,    # each test's frames in the EXP_LOGs, what is missing (once per session)
        hk,           # HK per frame against its limits (fan-out by test)
        bias_check,   # BIAS0X check: offsets and std of prescan, image, overscan (fan-out by test and CCD)
        bias_prep,    # BIAS0X prep: the offsets to subtract (global prescan median)
        bias_basic,   # BIAS0X basic: 2-D bias model, RON
        bias_meta,    # BIAS0X meta: master bias, registered in the calibration library
        bias_flags,   # BIAS0X compliance: flags with their reasons
        ptc_check,    # PTC0X check: offsets and fluence of every flat (fan-out by test and CCD)
        ptc_extract,  # PTC0X extract_PTC: pair variance against signal, per tile
        ptc_meta,     # PTC0X meta: PTC fit, gain with its error, full well
        ptc_flags,    # PTC0X compliance: flags with their reasons
        dark_check,   # DARK01 check: offsets, noise and fluence of every dark (fan-out by test and CCD)
        dark_prep,    # DARK01 prep: the offsets to subtract
        dark_meta,    # DARK01 meta: master dark (minus the library's master bias), dark current, hot pixels/columns
        dark_flags,   # DARK01 compliance: flags with their reasons
    ],
)
