"""SEDM (Palomar 60-inch IFU): the night's pipeline, after the pysedm/sedmpy runbook.

So far the simulator alone: ``steps.sedm.simulate.simulate_night`` writes a night of raw frames in
the observatory's format with its truth (``simulate_plan``, ``simulate_optics``,
``simulate_spectra``, ``simulate_detector``, ``simulate_guider``); ``simulation`` holds its
options for the command line.
"""
