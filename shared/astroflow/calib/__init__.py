"""The calibration library: calibrations as rows of one database, chosen by declared policies,
with every look-up explained and every use recorded (see :mod:`astroflow.calib.library`).

    from astroflow.calib import CalibType, Library

    BIAS = CalibType("bias", match=("specid", "amp"), select="before", lookback_days=30, fallback=True)
    lib = Library.for_run(run_dir)                      # RUN/calibrations.db unless told otherwise
    lib.register("bias", "lib/mbias_086_LL.fits", dateobs, {"specid": "086", "amp": "LL"})
    choice = lib.select(BIAS, frame_time, {"specid": "086", "amp": "LL"})
    choice.record.path, choice.reason                   # "latest before the observation, 1.2 d before; ..."
"""

from astroflow.calib.library import CalibrationError, CalibrationNotFound, Library
from astroflow.calib.models import Calibration, Provenance
from astroflow.calib.policy import CalibType, Choice, NoCalibration, choose

__all__ = ["CalibType", "Calibration", "CalibrationError", "CalibrationNotFound", "Choice", "Library",
           "NoCalibration", "Provenance", "choose"]
