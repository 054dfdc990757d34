"""Write a SPOC DV results XML (`*_dvr.xml`) for one simulated target.

The element tree, attribute names and element order follow real SPOC exports
(namespace http://www.nasa.gov/2018/TESS/DV; see reference/spoc-formats.md
section 1). Inputs are plain dicts made by the simulator; this module only
formats them.
"""

from __future__ import annotations

from xml.sax.saxutils import quoteattr

import numpy as np

DV_NS = "http://www.nasa.gov/2018/TESS/DV"


def _f(x) -> str:
    """Number formatting like the SPOC exporter (10 significant digits)."""
    if isinstance(x, (bool, np.bool_)):
        return "true" if x else "false"
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    x = float(x)
    if not np.isfinite(x):
        return "NaN"
    return f"{x:.10g}"


def _el(tag: str, **attrs) -> str:
    body = " ".join(f"{k}={quoteattr(_f(v) if not isinstance(v, str) else v)}" for k, v in attrs.items())
    return f"<dv:{tag} {body} />"


def _vu(tag: str, value, unc, **extra) -> str:
    return _el(tag, value=value, uncertainty=unc, **extra)


MODEL_PARAMETER_ORDER = (
    "transitEpochBtjd", "eccentricity", "longitudeOfPeriDegrees", "planetRadiusEarthRadii",
    "semiMajorAxisAu", "minImpactParameter", "starRadiusSolarRadii", "transitDurationHours",
    "transitIngressTimeHours", "transitDepthPpm", "orbitalPeriodDays",
    "ratioPlanetRadiusToStarRadius", "ratioSemiMajorAxisToStarRadius", "inclinationDegrees",
    "equilibriumTempKelvin", "effectiveStellarFlux", "starDensitySolarDensity",
)
FITTED = {"transitEpochBtjd", "minImpactParameter", "orbitalPeriodDays",
          "ratioPlanetRadiusToStarRadius", "ratioSemiMajorAxisToStarRadius"}


def _model_fit(tag: str, fit: dict) -> str:
    """allTransitsFit / oddTransitsFit / evenTransitsFit."""
    params = fit["params"]  # name -> (value, uncertainty)
    head = (f'<dv:{tag} fullConvergence="{_f(fit["converged"])}" modelChiSquare="{_f(fit["chi2"])}" '
            f'modelDegreesOfFreedom="{_f(fit["dof"])}" modelFitSnr="{_f(fit["snr"])}" '
            'seededWithPriorFit="false" limbDarkeningModelName="claret2017" '
            'transitModelName="mandel-agol_geometric_transit_model">')
    cov = "<dv:modelParameterCovariance>{} 0 0 {} 0 0 0 0 {}</dv:modelParameterCovariance>".format(
        _f(params["transitEpochBtjd"][1] ** 2), _f(params["orbitalPeriodDays"][1] ** 2),
        _f(params["minImpactParameter"][1] ** 2))
    mps = "".join(
        _el("modelParameter", name=name, value=params[name][0], uncertainty=params[name][1],
            fitted="true" if name in FITTED else "false")
        for name in MODEL_PARAMETER_ORDER)
    return f"{head}{cov}<dv:modelParameters>{mps}</dv:modelParameters></dv:{tag}>"


def _trapezoidal_fit(trp: dict) -> str:
    p = trp["params"]
    order = ("transitEpochBtjd", "transitDepthPpm", "transitDurationHours", "transitIngressTimeHours",
             "orbitalPeriodDays", "ratioSemiMajorAxisToStarRadius", "ratioPlanetRadiusToStarRadius")
    mps = "".join(_el("modelParameter", name=n, value=p[n][0], uncertainty=p[n][1],
                      fitted="false" if n == "orbitalPeriodDays" else "true") for n in order)
    return (f'<dv:trapezoidalFit fullConvergence="{_f(trp["converged"])}" modelFitSnr="{_f(trp["snr"])}" '
            f'modelChiSquare="{_f(trp["chi2"])}" modelDegreesOfFreedom="{_f(trp["dof"])}">'
            f"<dv:modelParameters>{mps}</dv:modelParameters></dv:trapezoidalFit>")


def _offsets(tag: str, o: dict) -> str:
    parts = [
        _vu("meanDecOffset", o["dec"], o["err"]), _vu("meanRaOffset", o["ra"], o["err"]),
        _vu("meanSkyOffset", o["sky"], o["err"]),
        _vu("singleFitDecOffset", o["dec"] * 0.96, o["err"] * 1.1),
        _vu("singleFitRaOffset", o["ra"] * 0.96, o["err"] * 1.1),
        _vu("singleFitSkyOffset", o["sky"] * 0.96, o["err"] * 1.1),
    ]
    return f"<dv:{tag}>{''.join(parts)}</dv:{tag}>"


def _difference_image(di: dict) -> str:
    head = (f'<dv:differenceImageResults sector="{di["sector"]}" startCadence="{di["start"]}" '
            f'endCadence="{di["end"]}" numberOfTransits="{di["ntransits"]}" '
            f'numberOfCadencesInTransit="{di["n_in"]}" numberOfCadenceGapsInTransit="0" '
            f'numberOfCadencesOutOfTransit="{di["n_out"]}" numberOfCadenceGapsOutOfTransit="0" '
            'overlappedTransits="false">')
    parts = [
        _el("ccdLocation", cameraNumber=di["camera"], ccdNumber=di["ccd"]),
        "<dv:ticReferenceCentroid>" + _vu("row", di["row"], 0.02) + _vu("column", di["col"], 0.02)
        + "</dv:ticReferenceCentroid>",
        "<dv:controlCentroidOffsets>" + _vu("rowOffset", 0, 0.01) + _vu("columnOffset", 0, 0.01)
        + "</dv:controlCentroidOffsets>",
        _el("qualityMetric", value=di["quality"], attempted="true", valid=_f(di["quality"] > 0.7)),
    ]
    r0, c0 = di["pix_row0"], di["pix_col0"]
    oot, intr, err = di["oot"], di["intr"], di["err"]
    for i in range(oot.shape[0]):
        for j in range(oot.shape[1]):
            e = err[i, j]
            parts.append(
                f'<dv:differenceImagePixelData ccdRow="{r0 + i}" ccdColumn="{c0 + j}">'
                + _vu("meanFluxInTransit", intr[i, j], e) + _vu("meanFluxOutOfTransit", oot[i, j], e)
                + _vu("meanFluxDifference", oot[i, j] - intr[i, j], e * np.sqrt(2))
                + _vu("meanFluxForTargetTable", oot[i, j], e) + "</dv:differenceImagePixelData>")
    return head + "".join(parts) + "</dv:differenceImageResults>"


def _planet_results(pn: int, r: dict) -> str:
    pc = r["candidate"]
    ws = r["weak_secondary"]
    oe = r["oddeven"]
    g = r["ghost"]
    toi = r.get("toi", float("nan"))
    match = f' toiId="{toi:.2f}" toiCorrelation="{_f(r["toi_corr"])}"' if np.isfinite(toi) else ""
    out = [f'<dv:planetResults planetNumber="{pn}"{match}>',
           _model_fit("allTransitsFit", r["all"]),
           _model_fit("evenTransitsFit", r["even"]),
           _model_fit("oddTransitsFit", r["odd"]),
           "<dv:centroidResults><dv:differenceImageMotionResults>",
           _offsets("msTicCentroidOffsets", r["cent_tic"]),
           _offsets("msControlCentroidOffsets", r["cent_oot"]),
           "</dv:differenceImageMotionResults><dv:fluxWeightedMotionResults>",
           _el("motionDetectionStatistic", value=r["motion_stat"][0], significance=r["motion_stat"][1]),
           "</dv:fluxWeightedMotionResults></dv:centroidResults>",
           "<dv:binaryDiscriminationResults>",
           _el("longerPeriodComparisonStatistic", value=r["longer"][0], significance=r["longer"][1],
               planetNumber=r["longer"][2]),
           _el("oddEvenTransitDepthComparisonStatistic", value=oe[0], significance=oe[1]),
           _el("shorterPeriodComparisonStatistic", value=r["shorter"][0], significance=r["shorter"][1],
               planetNumber=r["shorter"][2]),
           _el("oddEvenTransitEpochComparisonStatistic", value=r["oe_epoch"][0], significance=r["oe_epoch"][1]),
           "</dv:binaryDiscriminationResults>",
           _difference_image(r["diffimg"]),
           "<dv:ghostDiagnosticResults>",
           _el("coreApertureCorrelationStatistic", value=g[0], significance=g[1]),
           _el("haloApertureCorrelationStatistic", value=g[2], significance=g[3]),
           "</dv:ghostDiagnosticResults>",
           '<dv:imageArtifactResults><dv:rollingBandContaminationHistogram testPulseDurationLc="0" />'
           "</dv:imageArtifactResults>",
           ('<dv:planetCandidate epochTjd="{epoch}" orbitalPeriodInDays="{period}" '
            'trialTransitPulseDurationInHours="{pulse}" maxMultipleEventSigma="{mes}" '
            'maxSingleEventSigma="{ses}" maxSesInMes="{ses}" observedTransitCount="{nobs}" '
            'expectedTransitCount="{nexp}" robustStatistic="{rs}" chiSquare1="{c1}" chiSquareDof1="{d1}" '
            'chiSquare2="{c2}" chiSquareDof2="{d2}" chiSquareGof="{cg}" chiSquareGofDof="{dg}" '
            'modelChiSquare2="{mc2}" modelChiSquareDof2="{d2}" modelChiSquareGof="{mcg}" '
            'modelChiSquareGofDof="{dg}" thresholdForDesiredPfa="7.1" suspectedEclipsingBinary="{seb}" '
            'significance="{sig}" statisticRatioBelowThreshold="false">').format(
               epoch=_f(pc["epoch"]), period=_f(pc["period"]), pulse=_f(pc["pulse"]), mes=_f(pc["mes"]),
               ses=_f(pc["ses"]), nobs=pc["nobs"], nexp=pc["nexp"], rs=_f(pc["robust"]),
               c1=_f(pc["chi2_1"]), d1=pc["dof1"], c2=_f(pc["chi2_2"]), d2=pc["dof2"], cg=_f(pc["chi2_gof"]),
               dg=pc["dof_gof"], mc2=_f(pc["model_chi2_2"]), mcg=_f(pc["model_chi2_gof"]),
               seb=_f(pc["suspected_eb"]), sig=_f(pc["significance"])),
           _el("weakSecondary", maxMesPhaseInDays=ws["phase"], maxMes=ws["mes"], minMesPhaseInDays=ws["min_phase"],
               minMes=ws["min_mes"], mesMad=ws["mad"], robustStatistic=ws["robust"], medianMes=ws["median"],
               bootstrapThresholdForDesiredPfa=7.1, bootstrapMesMean=0, bootstrapMesStd=1)[:-3] + ">"
           + _vu("depthPpm", ws["depth"], ws["depth_err"]) + "</dv:weakSecondary>",
           "</dv:planetCandidate>",
           "<dv:secondaryEventResults><dv:planetParameters>",
           _vu("geometricAlbedo", r["albedo"][0], r["albedo"][1]),
           "</dv:planetParameters></dv:secondaryEventResults>",
           _trapezoidal_fit(r["trapezoid"]),
           _el("bootstrapResults", falseAlarmRate=pc["significance"], significance=pc["mes"]),
           "</dv:planetResults>"]
    return "".join(out)


def dv_results_xml(target: dict, planets: list[dict]) -> bytes:
    """The whole document. `target` holds the star; `planets` one dict per TCE (PN order)."""
    s = target
    attrs = (f'xmlns:dv="{DV_NS}" ticId="{s["tic"]}" planetCandidateCount="{len(planets)}" '
             f'startCadence="{s["start_cadence"]}" endCadence="{s["end_cadence"]}" '
             f'sectorsObserved="{s["sectors_observed"]}" pipelineTaskId="{s["task_id"]}"')
    if s.get("toi_id"):
        attrs += f' toiId="{s["toi_id"]}"'
    star = [
        _vu("decDegrees", s["dec"], 0, provenance="TIC8"),
        _vu("effectiveTemp", s["teff"], s["teff_e"], provenance="TIC8"),
        _vu("log10Metallicity", s["mh"], 0.1, provenance="TIC8"),
        _vu("log10SurfaceGravity", s["logg"], 0.08, provenance="TIC8"),
        _vu("pmDec", s["pmdec"], 0.0001, provenance="TIC8"),
        _vu("pmRa", s["pmra"], 0.0001, provenance="TIC8"),
        _vu("raDegrees", s["ra"], 0, provenance="TIC8"),
        _vu("radius", s["radius"], s["radius"] * 0.05, provenance="TIC8"),
        _vu("stellarDensity", s["density"], s["density"] * 0.2, provenance="TIC8"),
        _vu("tessMag", s["tmag"], 0.006, provenance="TIC8"),
        _el("limbDarkeningModel", modelName="claret2017", coefficient1=s["ld"][0], coefficient2=s["ld"][1],
            coefficient3=s["ld"][2], coefficient4=s["ld"][3]),
    ]
    star += [f"<dv:matchedToiId>{p['toi']:.2f}</dv:matchedToiId>" for p in planets
             if np.isfinite(p.get("toi", float("nan")))]
    body = "".join(star) + "".join(_planet_results(i + 1, p) for i, p in enumerate(planets))
    doc = f"<?xml version='1.0' encoding='utf-8'?>\n<dv:dvTargetResults {attrs}>{body}</dv:dvTargetResults>"
    return doc.encode("utf-8")
