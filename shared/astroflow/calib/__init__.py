"""The calibration library: calibrations as rows of one database, chosen by declared policies,
with every look-up explained and every use recorded (see :mod:`astroflow.calib.library`).

    from astroflow.calib import CalibType, Library

    BIAS = CalibType("bias", match=("specid", "amp"), select="before", lookback_days=30, fallback=True)
    lib = Library.for_run(run_dir)                      # RUN/calibrations.db unless told otherwise
    lib.register("bias", "lib/mbias_086_LL.fits", dateobs, {"specid": "086", "amp": "LL"})
    choice = lib.select(BIAS, frame_time, {"specid": "086", "amp": "LL"})
    choice.record.path, choice.reason                   # "latest before the observation, 1.2 d before; ..."
"""

import importlib

# name -> module; imported on first use (PEP 562), so that a step declaring its policies
# (CalibType) does not import the database layer (sqlalchemy) in every process that loads it
_FROM = {"CalibrationError": "library", "CalibrationNotFound": "library", "Library": "library",
         "Calibration": "records", "Provenance": "records",
         "CalibType": "policy", "Choice": "policy", "NoCalibration": "policy", "choose": "policy"}
__all__ = sorted(_FROM)


def __getattr__(name: str):
    if name not in _FROM:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_FROM[name]}"), name)
    globals()[name] = value
    return value
