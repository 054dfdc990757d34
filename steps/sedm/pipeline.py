"""SEDM (Palomar 60-inch IFU): the night's pipeline after the pysedm/sedmpy runbook: afternoon
calibrations, then each standard and science frame to a classified, flux-calibrated spectrum.

    astroflow run sedm --data-root /data/sedm/raw --date 20180907 --redux-root /scr2/sedmdrp/redux --out RUN
    astroflow demo sedm --out RUN      # a simulated night, same pipeline
"""

from __future__ import annotations

from astroflow.arrivals import Arrivals
from astroflow.pipeline import Pipeline
from steps.sedm.calibration_sets import calibration_sets
from steps.sedm.calibration_table import calibrations
from steps.sedm.calibrations import CALIBRATIONS
from steps.sedm.cube import cube
from steps.sedm.calibrate import calibrate
from steps.sedm.classify import classify
from steps.sedm.debias_crr import debias_crr
from steps.sedm.errors_table import report
from steps.sedm.extract import extract
from steps.sedm.fallback import fallback
from steps.sedm.flexure import flexure
from steps.sedm.flat import flat
from steps.sedm.fluxcal import fluxcal
from steps.sedm.fluxcal_link import fluxcal_link
from steps.sedm.geometry import geometry
from steps.sedm.hexagrid import hexagrid
from steps.sedm.master_bias import master_bias
from steps.sedm.night import night
from steps.sedm.night_report import night_report
from steps.sedm.quality import quality
from steps.sedm.settings import SedmSettings
from steps.sedm.spectra import spectra
from steps.sedm.upload import upload
from steps.sedm.verify import verify
from steps.sedm.wavesolution import wavesolution
from steps.sedm.simulation import SedmSimulation, simulate


def calibration_deadline(settings) -> list:
    """The time the afternoon sets stop waiting for frames: the watcher runs the night again then."""
    return [settings.deadline()]


SEDM = Pipeline(
    "sedm",
    settings=SedmSettings,
    simulate=simulate,
    simulate_options=SedmSimulation,
    partition="date",
    calibrations=CALIBRATIONS,
    report=report,
    arrivals=Arrivals("data_root", ("{date}/*.fits",), deadlines=calibration_deadline, partition="tonight",
                      idle_stop_s=7200.0),  # astroflow sedm watch: tonight's UT date; over after 2 h without a frame
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
        flexure,           # S2   flexure across (trace shift) and along (Na D, O2 A band) per sky frame
        cube,              # S3   e3d_crr_b_ifu..._{OBJECT}.fits: flexure-corrected, 3D-flat, extinction
        extract,           # S4-5 brightest spaxel (standards) or guider WCS (science); PSF-forced photometry
        quality,           #      the runbook's quality 0-5 (> 2: neither classified nor uploaded)
        fluxcal,           # S4d  standards: fluxcal_{date}_{HH_MM_SS}_{OBJECT}.fits (inverse sensitivity, telluric)
        calibrate,         # S5d-e the fluxcal nearest in MJD_OBS, telluric correction at AIRMASS (fan-out by frame)
        classify,          # S5f  astroflow-xcor (SNID-like, not SNID), or SNID where configured; quality > 2 skipped
        spectra,           # S5g  spec_forcepsf_...{OBJECT}.fits/.txt with the classification; RUNDIR/spectra/
        verify,            #      verify_forcepsf_...png: IFU, acquisition, PSF data/model/residual, spectrum
        upload,            # S6a  marshal, slack, pharos (each off by default; fan-out by spectrum and sink)
        night_report,      # S5h, S6b  report.txt and report_ztf.txt
    ],
)
