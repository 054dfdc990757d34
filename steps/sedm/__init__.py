"""SEDM (Palomar 60-inch IFU): the night's pipeline, after the pysedm/sedmpy runbook.

``pipeline.py`` declares it (so far the afternoon's calibrations: ``night``,
``calibration_sets``, ``master_bias``, ``debias_crr``, ``geometry``, ``hexagrid``, ``wavesolution``,
``flat``, ``fallback``, ``fluxcal_link``, ``calibrations``); ``settings.py`` holds the runbook's hand
settings; ``frames.py`` reads what a raw frame is from its header; ``sets.py`` says when a
calibration set is ready; ``plots.py`` draws the check plots; ``science/`` holds the pure kernels
(overscan, master bias, read noise, LA-Cosmic, blind trace finding, extraction, the hexagonal
grid, arc-line fits and wavelength solutions, the 3D flat).  The simulator:
``steps.sedm.simulate.simulate_night`` writes a
night of raw frames in the observatory's format with its truth (``simulate_plan``,
``simulate_optics``, ``simulate_spectra``, ``simulate_detector``, ``simulate_guider``);
``simulation`` holds its options for the command line.
"""
