"""Reader of SPOC DV results XML (`*_dvr.xml[.gz]`): runbook step 1.

Replaces TEC `gather_tce_fromdvxml.py` (the parsing part; the table writing is
the gather step's).  One record per TCE (planetResults element) with the
fields of spoc-formats.md section 1, in snake_case.

Differences from the original, on purpose:
- `logg` comes from `log10SurfaceGravity` (the original filled it from
  `log10Metallicity`).
- `at_depth_e` is filled from the transitDepthPpm uncertainty (never filled
  in the original).
- A missing optional element or attribute gives NaN (floats) or -1 (ints)
  instead of a crash; a file that is not well-formed XML (truncated, bad gzip)
  or has no `ticId` raises ProductError.
- Element names are matched by local name, so `dv:`-prefixed, default
  namespace and un-namespaced files all read; attribute order never matters.
- `all_sectors`/`all_cadstart`/`all_cadend` are plain lists (the original
  padded them to 100 slots with -1).
- DV's weak-secondary statistics are read (``ws_phase_d``, ``ws_mes``,
  ``ws_threshold``: planetCandidate/weakSecondary @maxMesPhaseInDays,
  @maxMes, @bootstrapThresholdForDesiredPfa); ses_mes keeps a significant
  secondary out of its noise estimate.
- The ephemeris of tec.md "Conventions" is added: all-transit fit if
  converged, else trapezoid epoch/duration/depth with the TPS period, else
  TPS epoch/period/pulse duration (`eph_source` = "at", "trp" or "tps").
"""
from __future__ import annotations

import gzip
import math
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path

from steps.tec.products import ProductError

__all__ = ["parse_dv_xml", "DV_NAMESPACE", "open_maybe_gzip"]

DV_NAMESPACE = "http://www.nasa.gov/2018/TESS/DV"
NAN = float("nan")


def open_maybe_gzip(path):
    """Open a file for binary reading, gunzipping when it starts with the gzip
    magic bytes (the name is not trusted: SPOC exports are gzipped, MAST
    copies are plain)."""
    p = Path(path)
    try:
        with open(p, "rb") as fh:
            magic = fh.read(2)
    except OSError as exc:
        raise ProductError(p, f"cannot open: {exc.strerror or exc}") from exc
    if magic == b"\x1f\x8b":
        return gzip.open(p, "rb")
    return open(p, "rb")


def _local(tag) -> str:
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1].split(":")[-1]


def _child(el, name):
    if el is None:
        return None
    for c in el:
        if _local(c.tag) == name:
            return c
    return None


def _children(el, name):
    if el is None:
        return []
    return [c for c in el if _local(c.tag) == name]


def _path(el, path: str):
    for part in path.split("/"):
        el = _child(el, part)
        if el is None:
            return None
    return el


class _Reader:
    """Attribute conversion with the file name in every error."""

    def __init__(self, path):
        self.path = path

    def f(self, el, attr="value") -> float:
        if el is None:
            return NAN
        v = el.get(attr)
        if v is None or v.strip() == "":
            return NAN
        try:
            return float(v)
        except ValueError:
            raise ProductError(self.path, f"element {_local(el.tag)} attribute {attr}={v!r} is not a number")

    def i(self, el, attr) -> int:
        x = self.f(el, attr)
        if not math.isfinite(x):
            return -1
        return int(round(x))

    @staticmethod
    def flag(el, attr) -> int:
        if el is None or el.get(attr) is None:
            return 0
        return int(el.get(attr).strip().lower() in ("true", "1", "t", "yes"))


def _model_params(fit) -> dict:
    out = {}
    params = _child(fit, "modelParameters")
    for mp in _children(params, "modelParameter"):
        name = mp.get("name")
        if name:
            out[name] = mp
    return out


def _parse_root(path):
    try:
        with open_maybe_gzip(path) as fh:
            return ET.parse(fh).getroot()
    except ProductError:
        raise
    except ET.ParseError as exc:
        raise ProductError(path, f"not well-formed DV XML (truncated or corrupt?): {exc}") from exc
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise ProductError(path, f"gzip stream is truncated or corrupt: {exc}") from exc
    except OSError as exc:
        raise ProductError(path, f"cannot read: {exc}") from exc


def _choose_ephemeris(r: dict) -> None:
    """tec.md Conventions: DV fit if at_valid; else trapezoid epoch/duration
    with the TPS period if trp_valid; else TPS epoch/period/pulse duration."""
    if r["at_valid"] == 1:
        r.update(eph_source="at", eph_period=r["at_period"], eph_epoch=r["at_epochbtjd"],
                 eph_duration_h=r["at_dur"], eph_depth_ppm=r["at_depth"])
    elif r["trp_valid"] == 1:
        r.update(eph_source="trp", eph_period=r["tce_period"], eph_epoch=r["trp_epochbtjd"],
                 eph_duration_h=r["trp_dur"], eph_depth_ppm=r["trp_depth"])
    else:
        # TPS gives no depth: use the (unconverged) DV fit depth when there is one.
        r.update(eph_source="tps", eph_period=r["tce_period"], eph_epoch=r["tce_epoch"],
                 eph_duration_h=r["pulsedur"], eph_depth_ppm=r["at_depth"])


def parse_dv_xml(path) -> list[dict]:
    """Parse one DV results XML file (gzip or plain) into one dict per TCE.

    Fields: tic, planet_number, n_planets, toi_id, source_file, ra, dec, teff,
    teff_e, ld1..ld4, feh, logg, rstar, rstar_e, tmag, pmra, pmdec, sector,
    camera, ccd, row, col, pix_pos_valid, data_start, data_end,
    sectors_observed (list), all_sectors, all_cadstart, all_cadend (lists),
    at_valid, at_snr, at_epochbtjd, at_epochbtjd_e, at_rp, at_rp_e, at_imp,
    at_dur, at_depth, at_depth_e, at_period, at_period_e, at_rpdrstar,
    at_rpdrstar_e, at_adrstar, at_eqtemp, at_effflux, ghostcoreval,
    ghostcoresig, ghosthaloval, ghosthalosig, modchi2, chi2, ntran, tce_epoch,
    mes, maxsesinmes, tce_period, robstat, pulsedur, trp_valid, trp_snr,
    trp_epochbtjd, trp_dur, trp_depth, cent_oot_offset, cent_oot_offset_e,
    cent_tic_offset, cent_tic_offset_e, oe_signif, ws_phase_d, ws_mes,
    ws_threshold, eph_source, eph_period, eph_epoch, eph_duration_h,
    eph_depth_ppm.

    Units: degrees, K, dex, log10(cgs), R_sun, mag, proper motion as in the
    XML (arcsec/yr in the FITS headers), BTJD days, hours, ppm, R_earth,
    arcsec for the centroid offsets.  Missing values: NaN / -1.
    """
    path = Path(path)
    root = _parse_root(path)
    rd = _Reader(path)
    if _local(root.tag) != "dvTargetResults":
        # TEC never checks the root name; a different root is a wrong file.
        raise ProductError(path, f"root element is {_local(root.tag)!r}, expected dvTargetResults")
    tic = rd.i(root, "ticId")
    if tic < 0:
        raise ProductError(path, "root element dvTargetResults has no ticId attribute")
    planets = sorted(_children(root, "planetResults"), key=lambda e: rd.i(e, "planetNumber"))
    n_planets = rd.i(root, "planetCandidateCount")
    if n_planets < 0:
        n_planets = len(planets)

    ld = _child(root, "limbDarkeningModel")
    secobs = (root.get("sectorsObserved") or "").strip()
    target = dict(
        tic=tic,
        n_planets=n_planets,
        source_file=path.name,
        ra=rd.f(_child(root, "raDegrees")),
        dec=rd.f(_child(root, "decDegrees")),
        teff=rd.f(_child(root, "effectiveTemp")),
        teff_e=rd.f(_child(root, "effectiveTemp"), "uncertainty"),
        ld1=rd.f(ld, "coefficient1"),
        ld2=rd.f(ld, "coefficient2"),
        ld3=rd.f(ld, "coefficient3"),
        ld4=rd.f(ld, "coefficient4"),
        feh=rd.f(_child(root, "log10Metallicity")),
        logg=rd.f(_child(root, "log10SurfaceGravity")),
        rstar=rd.f(_child(root, "radius")),
        rstar_e=rd.f(_child(root, "radius"), "uncertainty"),
        tmag=rd.f(_child(root, "tessMag")),
        pmra=rd.f(_child(root, "pmRa")),
        pmdec=rd.f(_child(root, "pmDec")),
        data_start=rd.i(root, "startCadence"),
        data_end=rd.i(root, "endCadence"),
        sectors_observed=[i for i, ch in enumerate(secobs) if ch == "1"],
    )
    if not math.isfinite(target["ra"]):
        target["ra"] = rd.f(_child(root, "raHours")) * 15.0

    # Position and cadence ranges come from planet 1's difference images.
    first = planets[0] if planets else None
    dirs = _children(first, "differenceImageResults")
    target.update(sector=-1, camera=-1, ccd=-1, row=NAN, col=NAN)
    if dirs:
        d0 = dirs[0]
        loc = _child(d0, "ccdLocation")
        if loc is None and len(d0):
            loc = d0[0]  # the original reads the first child by position
        ref = _child(d0, "ticReferenceCentroid")
        row_el = _child(ref, "row") if ref is not None else None
        col_el = _child(ref, "column") if ref is not None else None
        if ref is not None and row_el is None and len(ref) >= 2:
            row_el, col_el = ref[0], ref[1]
        target.update(sector=rd.i(d0, "sector"), camera=rd.i(loc, "cameraNumber"),
                      ccd=rd.i(loc, "ccdNumber"), row=rd.f(row_el), col=rd.f(col_el))
    elif len(target["sectors_observed"]) == 1:
        target["sector"] = target["sectors_observed"][0]
    target["pix_pos_valid"] = int(
        math.isfinite(target["row"]) and math.isfinite(target["col"]) and target["row"] > 0 and target["col"] > 0
    )
    target["all_sectors"] = [rd.i(d, "sector") for d in dirs]
    target["all_cadstart"] = [rd.i(d, "startCadence") for d in dirs]
    target["all_cadend"] = [rd.i(d, "endCadence") for d in dirs]

    records = []
    for pres in planets:
        r = dict(target)
        r["planet_number"] = rd.i(pres, "planetNumber")
        r["toi_id"] = rd.f(pres, "toiId")

        at = _child(pres, "allTransitsFit")
        mp = _model_params(at)
        r["at_valid"] = rd.flag(at, "fullConvergence")
        r["at_snr"] = rd.f(at, "modelFitSnr")
        for field, name in (("at_epochbtjd", "transitEpochBtjd"), ("at_rp", "planetRadiusEarthRadii"),
                            ("at_depth", "transitDepthPpm"), ("at_period", "orbitalPeriodDays"),
                            ("at_rpdrstar", "ratioPlanetRadiusToStarRadius")):
            r[field] = rd.f(mp.get(name))
            r[field + "_e"] = rd.f(mp.get(name), "uncertainty")
        r["at_imp"] = rd.f(mp.get("minImpactParameter"))
        r["at_dur"] = rd.f(mp.get("transitDurationHours"))
        r["at_adrstar"] = rd.f(mp.get("ratioSemiMajorAxisToStarRadius"))
        r["at_eqtemp"] = rd.f(mp.get("equilibriumTempKelvin"))
        r["at_effflux"] = rd.f(mp.get("effectiveStellarFlux"))

        ghost = _child(pres, "ghostDiagnosticResults")
        core = _child(ghost, "coreApertureCorrelationStatistic")
        halo = _child(ghost, "haloApertureCorrelationStatistic")
        r["ghostcoreval"] = rd.f(core)
        r["ghostcoresig"] = rd.f(core, "significance")
        r["ghosthaloval"] = rd.f(halo)
        r["ghosthalosig"] = rd.f(halo, "significance")

        pc = _child(pres, "planetCandidate")
        r["modchi2"] = rd.f(pc, "modelChiSquare2") / math.sqrt(rd.f(pc, "modelChiSquareDof2")) \
            if rd.f(pc, "modelChiSquareDof2") > 0 else NAN
        r["chi2"] = rd.f(pc, "chiSquare2") / math.sqrt(rd.f(pc, "chiSquareDof2")) \
            if rd.f(pc, "chiSquareDof2") > 0 else NAN
        r["ntran"] = rd.i(pc, "observedTransitCount")
        r["tce_epoch"] = rd.f(pc, "epochTjd")
        r["mes"] = rd.f(pc, "maxMultipleEventSigma")
        r["maxsesinmes"] = rd.f(pc, "maxSesInMes")
        r["tce_period"] = rd.f(pc, "orbitalPeriodInDays")
        r["robstat"] = rd.f(pc, "robustStatistic")
        r["pulsedur"] = rd.f(pc, "trialTransitPulseDurationInHours")
        # DV's weak-secondary search (not read by the original): the strongest other dimming at
        # the TCE's period, its phase after the transit (days), its MES, and DV's own detection
        # threshold for it (bootstrapThresholdForDesiredPfa)
        ws = _child(pc, "weakSecondary")
        r["ws_phase_d"] = rd.f(ws, "maxMesPhaseInDays")
        r["ws_mes"] = rd.f(ws, "maxMes")
        r["ws_threshold"] = rd.f(ws, "bootstrapThresholdForDesiredPfa")

        trp = _child(pres, "trapezoidalFit")
        r["trp_valid"] = rd.flag(trp, "fullConvergence")
        r["trp_snr"] = rd.f(trp, "modelFitSnr")
        tmp = _model_params(trp) if r["trp_valid"] else {}  # read only when converged
        r["trp_epochbtjd"] = rd.f(tmp.get("transitEpochBtjd"))
        r["trp_dur"] = rd.f(tmp.get("transitDurationHours"))
        r["trp_depth"] = rd.f(tmp.get("transitDepthPpm"))

        motion = _path(pres, "centroidResults/differenceImageMotionResults")
        tic_off = _path(motion, "msTicCentroidOffsets/meanSkyOffset")
        oot_off = _path(motion, "msControlCentroidOffsets/meanSkyOffset")
        r["cent_tic_offset"] = rd.f(tic_off)
        r["cent_tic_offset_e"] = rd.f(tic_off, "uncertainty")
        r["cent_oot_offset"] = rd.f(oot_off)
        r["cent_oot_offset_e"] = rd.f(oot_off, "uncertainty")

        oe = _path(pres, "binaryDiscriminationResults/oddEvenTransitDepthComparisonStatistic")
        r["oe_signif"] = rd.f(oe, "significance")
        _choose_ephemeris(r)
        records.append(r)
    return records
