"""vison (Euclid VIS ground calibration): ELVIS day folders -> the Tasks' offsets, RON, gain, flags, masters.

    astroflow run vison --data-root DAYFOLDER --tests BIAS01,BIAS02 --out RUN
    astroflow demo vison --out RUN          # a simulated day, same pipeline
    astroflow simulate vison --out DIR
    astroflow vison wait --config FILE --session D12 --day-folder PATH   # as the day is acquired

Each Task's sub-tasks (check, prep, basic, meta; :mod:`steps.vison.tasks`) are steps fanned out
per test and CCD; todo_flags are ``--set bias_basic.enabled=false``, ``--check-only`` keeps the
checks alone.  DARK01's meta reads the master bias that BIAS01's meta registers in the
calibration library (``bias_meta -> dark_meta``).  TP01's meta takes the gain of the session's
PTC0X meta for its capture probabilities (``ptc_meta -> tp_meta``, an optional input).  Wait
mode (:mod:`steps.vison.wait`) is the core watcher on the day folder: each Task starts once its
test is complete.
"""

from __future__ import annotations

from astroflow.arrivals import Arrivals
from astroflow.pipeline import Pipeline
from steps.vison.bias_basic import bias_basic
from steps.vison.bias_check import bias_check
from steps.vison.bias_flags import bias_flags
from steps.vison.bias_meta import bias_meta
from steps.vison.bias_prep import bias_prep
from steps.vison.calibrations import CALIBRATIONS
from steps.vison.chinj_check import chinj_check
from steps.vison.chinj_extract import chinj_extract
from steps.vison.chinj_flags import chinj_flags
from steps.vison.chinj_meta import chinj_meta
from steps.vison.cosmetics_check import cosmetics_check
from steps.vison.cosmetics_flags import cosmetics_flags
from steps.vison.cosmetics_masks import cosmetics_masks
from steps.vison.cosmetics_prep import cosmetics_prep
from steps.vison.dark_check import dark_check
from steps.vison.dark_flags import dark_flags
from steps.vison.dark_meta import dark_meta
from steps.vison.dark_prep import dark_prep
from steps.vison.flat_check import flat_check
from steps.vison.flat_flags import flat_flags
from steps.vison.flat_meta import flat_meta
from steps.vison.flat_prep import flat_prep
from steps.vison.hk import hk
from steps.vison.inventory import arrived, inventory
from steps.vison.nl02_check import nl02_check
from steps.vison.nl02_flags import nl02_flags
from steps.vison.nl02_nl import nl02_nl
from steps.vison.ptc02_check import ptc02_check
from steps.vison.ptc02_extract import ptc02_extract
from steps.vison.ptc02_flags import ptc02_flags
from steps.vison.ptc02_meta import ptc02_meta
from steps.vison.ptc_check import ptc_check
from steps.vison.ptc_extract import ptc_extract
from steps.vison.ptc_flags import ptc_flags
from steps.vison.ptc_meta import ptc_meta
from steps.vison.report import run_report_section
from steps.vison.settings import VisonSettings
from steps.vison.simulation import VisonSimulation, simulate
from steps.vison.tp_check import tp_check
from steps.vison.tp_extract import tp_extract
from steps.vison.tp_flags import tp_flags
from steps.vison.tp_meta import tp_meta

EXP_LOGS = "**/EXP_LOG_*.txt"  # appended to after the frames they list

VISON = Pipeline(
    "vison",
    settings=VisonSettings,
    simulate=simulate,
    simulate_options=VisonSimulation,
    calibrations=CALIBRATIONS,
    report=run_report_section,
    partition="session",
    arrivals=Arrivals("data_root", (EXP_LOGS, "**/EUC_*.fits", "**/HK_*_ROE*.txt"), check=arrived, growing=(EXP_LOGS,),
                      poll_s=120.0, idle_stop_s=4 * 3600.0),  # astroflow vison wait: the EXP_LOG every 2 min, 4 h idle
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
        ptc02_check,    # PTC02WAVE check: offsets, fluence and wavelength of every flat (fan-out by test and CCD)
        ptc02_extract,  # PTC02WAVE extract_PTC: pair variance against signal per wavelength and tile
        ptc02_meta,     # PTC02WAVE meta: PTC fit, gain with its error, full well, per wavelength
        ptc02_flags,    # PTC02WAVE compliance: flags with their reasons
        nl02_check,     # NL02 check: offset, fluence and quartiles of every flat, its source and time
        nl02_nl,        # NL02 NL: drift-corrected non-linearity curve (degree 4) and its maximum
        nl02_flags,     # NL02 compliance: flags with their reasons
        dark_check,   # DARK01 check: offsets, noise and fluence of every dark (fan-out by test and CCD)
        dark_prep,    # DARK01 prep: the offsets to subtract
        dark_meta,    # DARK01 meta: master dark (minus the library's master bias), dark current, hot pixels/columns
        dark_flags,   # DARK01 compliance: flags with their reasons
        flat_check,   # FLAT01 check: offsets, noise and fluence of every flat (fan-out by test and CCD)
        flat_prep,    # FLAT01 prep: the offsets to subtract
        flat_meta,    # FLAT01 indivflats, masterflat, prmask: flats over a smooth model, master flats, PRNU, defects
        flat_flags,   # FLAT01 compliance: flags with their reasons
        cosmetics_check,  # COSMETICS00 check: offsets and noise of its biases and flats (fan-out by test and CCD)
        cosmetics_prep,   # COSMETICS00 prep: the offsets to subtract
        cosmetics_masks,  # COSMETICS00 masks: dark and flat defects merged per CCD, EUC_MASK_* in the library
        cosmetics_flags,  # COSMETICS00 compliance: flags with their reasons
        chinj_check,    # CHINJ01 check: offsets and noise of every injection frame, its IG1 (fan-out by test and CCD)
        chinj_extract,  # CHINJ01 extract: injected minus non-injected level of every frame and quadrant
        chinj_meta,     # CHINJ01 meta: injection against IG1, threshold, slope and notch per drain delay
        chinj_flags,    # CHINJ01 compliance: flags with their reasons
        tp_check,       # TP01 check: offsets and noise of every pumped frame, its dwell and mode
        tp_extract,     # TP01 injection, extract, basic: dipole maps stacked per dwell, traps above 5 x noise
        tp_meta,        # TP01 meta: tau and capture probability per trap (gain from the session's PTC0X)
        tp_flags,       # TP01 compliance: flags with their reasons
    ],
)
