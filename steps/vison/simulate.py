"""vison simulator: an ELVIS day folder of first-wave calibration tests, with truth (cook-book:
"data acquisition", the inputs of the first-wave Tasks).

``simulate_day(out, full_size=False, seed=0, faults=(), tests=FIRST_WAVE, max_frames=None)`` writes

* ``{out}/{DD_Mmm_YY}/EUC_{ObsID}_{DDMMYY}D{HHMMSS}T_ROE1_CCD{1..3}.fits``: an empty primary HDU
  and a ``ROE1_CCD{n}`` image, unsigned 16-bit (BZERO 32768), the header keys ELVIS 7.5.X writes;
  4238 x 4172 with ``full_size=True``; by default a reduced geometry, 128 image columns and 64
  image rows per quadrant with the real prescan (51), serial overscan (20) and parallel overscan
  (20): 398 x 168, described in the header by ``CCDCOLS`` and ``CCDROWS`` (which
  :func:`steps.vison.elvis.geometry_from_header` reads; a full-size frame has neither);
* ``EXP_LOG_{DDMMYY}.txt`` (tab-separated, CRLF, ELVIS 7.5.X columns, one row per CCD and ObsID),
  ``HK_{ObsID}_{DDMMYY}D{HHMMSS}T_ROE1.txt`` per frame (1 Hz over exposure and readout) and the
  day's ``HK_{DD-MM-YY}_ROE1_01.txt``;
* ``{out}/truth/`` (Parquet, columns in :data:`SCHEMAS`): ``quadrants`` (one row per CCD and
  quadrant: offset and drift, read noise, gain, full well, non-linearity, PRNU, dark current,
  injection threshold, slope and notch), ``defects`` (hot/cold pixels and columns), ``traps``,
  ``frames`` (one row per CCD and ObsID: test, exposure, fluence, IG1, pumping, the offset at
  that time, written or not) and ``faults``;

and returns a :class:`SimulatedDay`.  The tests (:data:`FIRST_WAVE`) have vison's default
structures as the issue lists them (see :func:`plan`); ``max_frames`` keeps the first frames of
each, as a test cut short; ``resubmitted`` (test -> n) acquires a test's first n frames, stops
(an aborted script), and after :data:`RESUBMIT_GAP_S` acquires it whole again, as an operator
resubmitting it; the day's ``tests`` spans are then the second sequence's.  Faults (:data:`FAULTS`), each a row of ``truth/faults`` with the flag
the pipeline must raise: ``missing_ccd`` (a CCD3 file not written, its EXP_LOG rows kept:
MISSDATA), ``corrupt_fits`` (a CCD2 file cut at 60 % of its bytes: BADDATA, an error naming the
file), ``explog_missing_rows`` (two ObsIDs' frames written, their EXP_LOG rows not: MISSDATA),
``hk_ool`` (one frame's HK: CCD2_TEMP_T at -117.5 C and CCD1_OD_T 0.5 V above its command:
CCDTEMP_OOL, HK_OOL), ``wrong_serials`` (CCD2's serial in every header and EXP_LOG row is not
the true one: WRONG_ROE_CONF), ``lost_pixels`` (a 10 x 10 block of zeros in one frame's quadrant
E: LOSTPIXELS).  The faults fall on the third to eighth ObsIDs of the first test.

Every frame is drawn from its own seed (seed, ObsID, CCD) and every quadrant from (seed, CCD,
quadrant): a frame is the same bytes whatever the other tests or faults.  The detector is in
:mod:`steps.vison.simulate_detector`, which says what it simplifies; here the lamp is a flux per
wavelength with a slow drift over the day (truth ``frames.fluence_e``), and the HK are nominal
readings with noise clipped at 3 sigma (following the commanded voltages).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pyarrow as pa
from astroflow.atomic import write_table

from steps.vison import simulate_detector as det
from steps.vison.elvis import (
    CCDS,
    DATA,
    IMAGE_COLS,
    IMAGE_ROWS,
    PARALLEL_OVERSCAN,
    PRESCAN,
    QUADRANTS,
    Geometry,
    explog_maps,
    format_elvis_date,
    frame_name,
    hk_data,
    hk_name,
)

FIRST_WAVE = ("BIAS01", "BIAS02", "DARK01", "PTC01", "PTC02WAVE", "NL02", "FLAT01", "CHINJ01", "TP01", "COSMETICS00")
FAULTS = ("missing_ccd", "corrupt_fits", "explog_missing_rows", "hk_ool", "wrong_serials", "lost_pixels")
ELVIS = "7.5.X"
DAY = dt.datetime(2019, 3, 12, 9, 0, 0)
FIRST_OBSID = 40000
SMALL = Geometry(PRESCAN, 128, 20, 64, PARALLEL_OVERSCAN)
FULL = Geometry(PRESCAN, IMAGE_COLS, 20, IMAGE_ROWS, PARALLEL_OVERSCAN)
READOUT_S = 72.0  # readout and overheads per frame (the sample's 75 s cadence of 0 s biases)
TEST_GAP_S = 60.0
RESUBMIT_GAP_S = 600.0  # an aborted script found, the session's sequence reloaded
FULL_WELL_E = 2.0e5  # nominal, for the fluences of the scripts (per quadrant truth differs)
FLUX_E_S = {590: 1500.0, 640: 1800.0, 730: 2000.0, 800: 2200.0, 880: 1200.0}
WAVE_INDEX = {590: 1, 640: 2, 730: 3, 800: 4, 880: 5}  # filter wheel position
ND_FACTOR = 0.1  # NL02's low-fluence source
TP_CYCLES = 5000
SERIALS = ("CCD273-14311-17-01", "CCD273-14461-11-02", "CCD273-14471-10-01")
WRONG_SERIAL = "CCD273-19999-99-99"
TRUNCATE_AT = 0.6
BLOCK = 2880  # FITS logical record

# one EXP_LOG row as ELVIS 7.5.X writes it for a 0 s bias (the independent sample's values)
BASE_ROW = {
    "ROE": "ROE1", "program": "CALCAMP", "sn_roe": "FM04", "sn_rpsu": "FM04", "BUNIT": "ADU", "operator": "sim",
    "con_file": "vis_roe_config_cotsqm_273_vn.txt", "exptime": 0.0, "fl_rdout": 0.0, "ci_rdout": 0.0, "IPHI": "I1I2I3",
    "vstart": 0, "rdmode": "fwd_bas", "flushes": 7, "siflsh": 1, "siflsh_p": 500.0, "swellw": 8.4, "swelldly": 5.625,
    "inisweep": 1, "cdpu_clk": 0, "chinj": 0, "chinj_on": 1, "chinj_of": 1, "id_wid": 100.0, "id_dly": 1500.0,
    "chin_dly": 0, "v_tpump": 0, "s_tpump": 0, "v_tp_mod": 123, "s_tp_mod": 23, "v_tp_cnt": 1000, "s_tp_cnt": 1000,
    "dwell_v": 0.0, "dwell_s": 0.0, "toi_fl": 143, "toi_tp": 1000, "toi_ro": 1000, "toi_ch": 1000,
    "fpga_ver": "2AC", "egse_ver": "7.5.2", "motr": 0, "motr_cnt": 2, "motr_siz": 50.0, "source": "flat", "wave": 4,
    "mirr_on": 0, "mirr_pos": 47.2, "IDL": 13.0, "IDH": 18.0, "IG2_T": 2.0, "IG2_B": 2.0, "RD_T": 16.0, "RD_B": 16.0,
    **{f"IG1_{c}_{s}": 6.0 for c in CCDS for s in "TB"}, **{f"OD_{c}_{s}": 26.0 for c in CCDS for s in "TB"},
}
# the frame header's keys after FULLPATH and LAB_VER, in ELVIS's order, and the EXP_LOG column each repeats
HEADER_KEYS = (
    ("CON_FILE", "con_file"), ("DATE", "date"), ("EXPTIME", "exptime"), ("FL_RDOUT", "fl_rdout"),
    ("CI_RDOUT", "ci_rdout"), ("IPHI", "IPHI"), ("CHINJ", "chinj"), ("CHINJ_ON", "chinj_on"), ("CHINJ_OF", "chinj_of"),
    ("ID_WID", "id_wid"), ("ID_DLY", "id_dly"), ("CHIN_DLY", "chin_dly"), ("V_TPUMP", "v_tpump"),
    ("S_TPUMP", "s_tpump"), ("V_TP_MOD", "v_tp_mod"), ("S_TP_MOD", "s_tp_mod"), ("V_TP_CNT", "v_tp_cnt"),
    ("S_TP_CNT", "s_tp_cnt"), ("DWELL_V", "dwell_v"), ("DWELL_S", "dwell_s"), ("TOI_FL", "toi_fl"),
    ("TOI_TP", "toi_tp"), ("TOI_RO", "toi_ro"), ("TOI_CH", "toi_ch"), ("SIFLSH", "siflsh"), ("SIFLSH_P", "siflsh_p"),
    ("FLUSHES", "flushes"), ("VSTART", "vstart"), ("VEND", "vend"), ("RDMODE", "rdmode"), ("SWELLW", "swellw"),
    ("SWELLDLY", "swelldly"), ("INISWEEP", "inisweep"), ("SPW_CLK", "cdpu_clk"), ("FPGA_VER", "fpga_ver"),
    ("EGSE_VER", "egse_ver"), ("MOTR", "motr"), ("MOTR_CNT", "motr_cnt"), ("MOTR_SIZ", "motr_siz"),
    ("SOURCE", "source"), ("WAVE", "wave"), ("POS_MIRR", "mirr_pos"), ("SN_CCD1", "sn_ccd1"), ("SN_CCD2", "sn_ccd2"),
    ("SN_CCD3", "sn_ccd3"), ("SN_ROE", "sn_roe"), ("SN_RPSU", "sn_rpsu"), ("CALSCRPT", "calscrpt"),
) + tuple((c.upper(), c) for c in ("R1C1_TT", "R1C1_TB", "R1C2_TT", "R1C2_TB", "R1C3_TT", "R1C3_TB", "IDL", "IDH",
                                   *(f"IG1_{n}_{s}" for s in "TB" for n in CCDS), "IG2_T", "IG2_B",
                                   *(f"OD_{n}_{s}" for s in "TB" for n in CCDS), "RD_T", "RD_B"))

SCHEMAS = {
    "quadrants": pa.schema([
        ("ccd", pa.int8()), ("quadrant", pa.string()), ("serial", pa.string()), ("offset_adu", pa.float64()),
        ("drift_adu_per_h", pa.float64()), ("ron_adu", pa.float64()), ("gain_e_per_adu", pa.float64()),
        ("fwc_e", pa.float64()), ("fwc_adu", pa.float64()), ("nl_coeffs", pa.list_(pa.float64())),
        ("max_nl_pct", pa.float64()), ("prnu_pct", pa.float64()), ("dark_e_per_s", pa.float64()),
        ("chinj_threshold_v", pa.float64()), ("chinj_slope_e_per_v", pa.float64()), ("chinj_notch_e", pa.float64()),
        ("n_hot", pa.int32()), ("n_cold", pa.int32()), ("n_traps", pa.int32())]),
    "defects": pa.schema([("ccd", pa.int8()), ("quadrant", pa.string()), ("x", pa.int32()), ("y", pa.int32()),
                          ("kind", pa.string()), ("value", pa.float64())]),
    "traps": pa.schema([("ccd", pa.int8()), ("quadrant", pa.string()), ("x", pa.int32()), ("y", pa.int32()),
                        ("tau", pa.float64()), ("pc", pa.float64())]),
    "frames": pa.schema([
        ("obsid", pa.int64()), ("ccd", pa.int8()), ("test", pa.string()), ("file", pa.string()),
        ("date", pa.string()), ("exptime", pa.float64()), ("wave_nm", pa.int32()), ("fluence_e", pa.float64()),
        ("ig1_v", pa.float64()), ("id_dly", pa.float64()), ("tp_mode", pa.int32()), ("toi_tp", pa.int32()),
        ("hours", pa.float64()), ("written", pa.bool_()), ("in_explog", pa.bool_()), ("fault", pa.string()),
        ("offsets_adu", pa.list_(pa.float64()))]),  # E, F, G, H at that time
    "faults": pa.schema([("fault", pa.string()), ("obsids", pa.list_(pa.int64())), ("ccd", pa.int8()),
                         ("file", pa.string()), ("expected", pa.string()), ("detail", pa.string())]),
}


@dataclass(frozen=True)
class Exposure:
    """One ObsID as the test script commands it."""

    test: str
    exptime: float = 0.0
    fluence_frac: float = 0.0  # of the nominal full well
    wave_nm: int = 800
    source: str = "flat"
    flux_factor: float = 1.0
    rdmode: str = "fwd_bas"
    ig1_v: float | None = None
    chinj_on: int = 0
    chinj_off: int = 0
    id_dly: float = 1500.0
    tp_mode: int | None = None
    toi_tp: int = 1000


def _flat(test: str, frac: float, wave: int = 800, flux_factor: float = 1.0, source: str = "flat") -> Exposure:
    flux = FLUX_E_S[wave] * flux_factor
    return Exposure(test, exptime=round(frac * FULL_WELL_E / flux, 2), fluence_frac=frac, wave_nm=wave,
                    source=source, flux_factor=flux_factor)


def plan(test: str) -> list[Exposure]:
    """vison's default structure of a first-wave test, as the issue lists it."""
    if test in ("BIAS01", "BIAS02"):
        return [Exposure(test, rdmode="fwd_bas" if test == "BIAS01" else "rwd_bas")] * 10
    if test == "DARK01":
        return [Exposure(test, exptime=565.0)] * 4
    if test == "PTC01":
        fracs = (0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2)
        return [_flat(test, f) for f in fracs for _ in range(4 if f >= 1.0 else 10)]
    if test == "PTC02WAVE":
        return [_flat(test, f, w) for w in (590, 640, 730, 880) for f in (0.1, 0.3, 0.5, 0.7, 0.8, 0.9)
                for _ in range(2)]
    if test == "NL02":
        fracs = (0.005, 0.007, 0.01, 0.02, 0.03, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95, 1.0, 1.1)
        out = []
        for i, f in enumerate(fracs):
            low = f < 0.2
            out.append(_flat(test, f, 880, ND_FACTOR if low else 1.0, "nd" if low else "flat"))
            if i % 4 == 3:
                out.append(_flat(test, 0.5, 880))  # stability frame
        return out
    if test == "FLAT01":
        return [_flat(test, f) for f, n in ((0.25, 80), (0.5, 60), (0.75, 30)) for _ in range(n)]
    if test == "CHINJ01":
        return [Exposure(test, ig1_v=float(v), chinj_on=30, chinj_off=100, id_dly=d)
                for d in (106.0, 212.0) for v in np.arange(2.0, 7.001, 0.25)]
    if test == "TP01":
        out = []
        for d in (106.0, 212.0):
            out.append(Exposure(test, ig1_v=7.0, id_dly=d))
            out += [Exposure(test, ig1_v=7.0, id_dly=d, tp_mode=m, toi_tp=t)
                    for m in (123, 234, 341, 412) for t in (200, 1000, 2000, 4000, 8000)]
        return out
    if test == "COSMETICS00":
        return [Exposure(test)] * 5 + [_flat(test, 0.5)] * 5
    raise ValueError(f"unknown test {test!r}; the first wave is {', '.join(FIRST_WAVE)}")


@dataclass(frozen=True)
class Scheduled:
    """An exposure with its ObsID and start time."""

    obsid: int
    start: dt.datetime
    exposure: Exposure
    aborted: bool = False  # of a submission aborted, then resubmitted

    @property
    def hours(self) -> float:
        return (self.start - DAY).total_seconds() / 3600.0

    @property
    def duration_s(self) -> float:
        return self.exposure.exptime + READOUT_S


def schedule(tests: Iterable[str], max_frames: int | None,
             resubmitted: Mapping[str, int] | None = None) -> list[Scheduled]:
    out, obsid, t = [], FIRST_OBSID, DAY
    for test in tests:
        aborted = (resubmitted or {}).get(test)
        runs = ([(plan(test)[:aborted], True, RESUBMIT_GAP_S)] if aborted else []) + [
            (plan(test)[:max_frames], False, TEST_GAP_S)]
        for exposures, was_aborted, gap in runs:
            for exposure in exposures:
                out.append(Scheduled(obsid, t, exposure, was_aborted))
                obsid += 1
                t += dt.timedelta(seconds=exposure.exptime + READOUT_S)
            t += dt.timedelta(seconds=gap)
    return out


@dataclass(frozen=True)
class SimulatedDay:
    """What :func:`simulate_day` wrote: the day folder, the truth tables, each test's ObsIDs."""

    root: Path
    day_folder: Path
    truth: Path
    tests: dict[str, tuple[int, int]]  # test -> first and last ObsID
    geometry: Geometry


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng([seed, *key])


def _lamp_drift(seed: int) -> float:
    """Relative lamp flux change per hour (NL02 corrects for it with its stability frames)."""
    return float(_rng(seed, 7).uniform(-0.004, 0.004))


def _row(s: Scheduled, ccd: int, serials: tuple[str, ...], geometry: Geometry, rng: np.random.Generator) -> dict:
    e = s.exposure
    date = format_elvis_date(s.start)
    row = dict(BASE_ROW)
    row.update(ObsID=s.obsid, File_name=frame_name(s.obsid, s.start, ccd)[:-5], CCD=f"CCD{ccd}", date=date,
               test=e.test, calscrpt=f"vis_CalCamp_{e.test}_{DAY:%d%b%y}_v{ELVIS}.xlsx", exptime=e.exptime,
               rdmode=e.rdmode, source=e.source, wave=WAVE_INDEX[e.wave_nm] if e.fluence_frac else 4,
               vend=geometry.height, id_dly=e.id_dly)
    row.update({f"sn_ccd{c}": serials[c - 1] for c in CCDS})
    row.update({f"R1C{c}_T{s_}": round(float(-120.0 + 0.03 * rng.standard_normal()), 2) for c in CCDS for s_ in "TB"})
    if e.ig1_v is not None:
        row.update(chinj=1, chinj_on=e.chinj_on or geometry.height, chinj_of=e.chinj_off, toi_ch=500)
        row.update({f"IG1_{c}_{s_}": e.ig1_v for c in CCDS for s_ in "TB"})
    if e.tp_mode is not None:
        row.update(v_tpump=1, v_tp_mod=e.tp_mode, v_tp_cnt=TP_CYCLES, toi_tp=e.toi_tp)
    return row


def _cell(column: str, value) -> str:
    """An EXP_LOG field as ELVIS prints it: temperatures to 0.01, other reals to 0.001."""
    if isinstance(value, float):
        return f"{value:.2f}" if column.startswith("R1C") else f"{value:.3f}"
    return str(value)


def _header(row: dict, geometry: Geometry, full_size: bool, day_folder: str) -> list[tuple[str, object, str]]:
    """The image extension's cards after its structural keys, as ELVIS 7.5.X writes them."""
    cards = [("EXTNAME", f"ROE1_{row['CCD']}", ""), ("BUNIT", row["BUNIT"], ""), ("PROGRAM", row["program"], ""),
             ("OBJECT", row["test"], ""), ("OBSID", row["ObsID"], ""), ("OPERATOR", row["operator"], ""),
             ("FULLPATH", f"C:\\ELVIS\\data\\{day_folder}\\{row['File_name']}.fits", ""), ("LAB_VER", "13.0.1f2", "")]
    for key, column in HEADER_KEYS:
        cards.append((key, row[column], ""))
        if key == "CALSCRPT":
            cards.append(("COMMENTS", "", ""))
    if not full_size:
        cards += [("CCDCOLS", geometry.image_cols, "image columns per quadrant (reduced geometry)"),
                  ("CCDROWS", geometry.image_rows, "image rows per quadrant (reduced geometry)")]
    return cards


def _card(key: str, value, comment: str = "") -> bytes:
    """One fixed-format FITS header card (FITS standard 4.0, section 4.2)."""
    if isinstance(value, bool):
        text = f"{'T' if value else 'F':>20}"
    elif isinstance(value, str):
        text = f"'{value.replace(chr(39), chr(39) * 2):<8}'".ljust(20)
    elif isinstance(value, float):
        text = f"{value!r:>20}".upper()
    else:
        text = f"{value:>20}"
    card = f"{key:<8}= {text}" + (f" / {comment}" if comment else "")
    return card[:80].ljust(80).encode("ascii")


def _block(cards: list[tuple[str, object, str]]) -> bytes:
    raw = b"".join(_card(*c) for c in cards) + b"END".ljust(80)
    return raw.ljust(-(-len(raw) // BLOCK) * BLOCK, b" ")


def _fits_bytes(data: np.ndarray, cards: list[tuple[str, object, str]]) -> bytes:
    """An empty primary HDU and a uint16 image extension (int16 with BZERO 32768), as ELVIS writes."""
    primary = _block([("SIMPLE", True, "conforms to FITS standard"), ("BITPIX", 8, "array data type"),
                      ("NAXIS", 0, "number of array dimensions"), ("EXTEND", True, "")])
    image = _block([("XTENSION", "IMAGE", "Image extension"), ("BITPIX", 16, "array data type"),
                    ("NAXIS", 2, "number of array dimensions"), ("NAXIS1", data.shape[1], ""),
                    ("NAXIS2", data.shape[0], ""), ("PCOUNT", 0, "number of parameters"),
                    ("GCOUNT", 1, "number of groups"), ("BSCALE", 1, ""), ("BZERO", 32768, ""), *cards])
    payload = (data ^ np.uint16(0x8000)).astype(">u2").tobytes()  # v - 32768 as big-endian int16
    return primary + image + payload.ljust(-(-len(payload) // BLOCK) * BLOCK, b"\0")


def _light(s: Scheduled, seed: int) -> det.Illumination:
    e = s.exposure
    fluence = e.fluence_frac * FULL_WELL_E * (1.0 + _lamp_drift(seed) * s.hours)
    return det.Illumination(dark_s=e.exptime + READOUT_S, fluence_e=fluence, ig1_v=e.ig1_v,
                            chinj_on=e.chinj_on, chinj_off=e.chinj_off, tp_mode=e.tp_mode, toi_tp_us=float(e.toi_tp),
                            tp_cycles=TP_CYCLES, hours=s.hours)


@cache
def _hk_nominal() -> dict[str, list[float]]:
    return json.loads((DATA / "hk_nominal.json").read_text())[ELVIS]


def _hk_lines(s: Scheduled, row: dict, rng: np.random.Generator, hot: bool) -> list[str]:
    """1 Hz HK readings over the frame; keys tied to a command follow it (``hot``: the hk_ool fault)."""
    nominal = _hk_nominal()
    keys = hk_data(ELVIS)["keys"]
    commanded = hk_data(ELVIS)["commanded"]
    n = max(1, int(s.duration_s) - 1)
    mean = np.array([float(row[commanded[k]]) if k in commanded else nominal[k][0] for k in keys])
    std = np.array([nominal[k][1] for k in keys])
    values = mean + std * np.clip(rng.standard_normal((n, len(keys))), -3.0, 3.0)
    if hot:
        values[:, keys.index("CCD2_TEMP_T")] = -117.5
        values[:, keys.index("CCD1_OD_T")] += 0.5
    integral = [std[i] == 0 and float(mean[i]).is_integer() for i in range(len(keys))]
    lines = []
    for i in range(n):
        stamp = (s.start + dt.timedelta(seconds=i)).strftime("%d-%m-%y_%H:%M:%S")
        cells = [str(int(v)) if integral[j] else f"{v:.3f}" for j, v in enumerate(values[i])]
        lines.append("\t".join([stamp, *cells]))
    return lines


def _truth_rows(ccd: int, truths: dict[str, det.QuadrantTruth], serials: tuple[str, ...]) -> dict[str, list]:
    quads, defects, traps = [], [], []
    for q, t in truths.items():
        kinds = [d[2] for d in t.defects]
        quads.append({"ccd": ccd, "quadrant": q, "serial": serials[ccd - 1], "offset_adu": t.offset_adu,
                          "drift_adu_per_h": t.drift_adu_per_h, "ron_adu": t.ron_adu, "gain_e_per_adu": t.gain, "fwc_e": t.fwc_e,
                          "fwc_adu": t.fwc_adu, "nl_coeffs": list(t.nl_coeffs), "max_nl_pct": t.max_nl_pct(),
                          "prnu_pct": t.prnu_pct, "dark_e_per_s": t.dark_e_s, "chinj_threshold_v": t.chinj_threshold_v,
                          "chinj_slope_e_per_v": t.chinj_slope_e_v, "chinj_notch_e": t.chinj_notch_e,
                          "n_hot": kinds.count("hot_pixel"), "n_cold": kinds.count("cold_pixel"), "n_traps": len(t.traps)})
        defects += [{"ccd": ccd, "quadrant": q, "x": x, "y": y, "kind": k, "value": v} for x, y, k, v in t.defects]
        traps += [{"ccd": ccd, "quadrant": q, "x": int(x), "y": int(y), "tau": float(tau), "pc": float(pc)}
                  for x, y, tau, pc in t.traps]
    return {"quadrants": quads, "defects": defects, "traps": traps}


@dataclass(frozen=True)
class _Faults:
    """Where each asked-for fault falls (the third to eighth ObsIDs of the first test)."""

    names: tuple[str, ...]
    at: dict[str, tuple[int, int | None]]  # fault -> ObsID, CCD (None: the ObsID's HK)
    dropped_rows: frozenset[int]  # ObsIDs whose EXP_LOG rows are not written

    @classmethod
    def place(cls, names: tuple[str, ...], first: list[int]) -> _Faults:
        at = {f: (first[i], ccd) for f, (i, ccd) in _PLACES.items() if f in names}
        dropped = frozenset(first[6:8]) if "explog_missing_rows" in names else frozenset()
        return cls(names, at, dropped)

    def of(self, obsid: int, ccd: int | None) -> str:
        if obsid in self.dropped_rows:
            return "explog_missing_rows"
        return next((f for f, where in self.at.items() if where == (obsid, ccd)), "")

    def rows(self, frames: list[Scheduled]) -> list[dict]:
        starts = {s.obsid: s.start for s in frames}
        out = []
        for f in self.names:
            row = {"fault": f, "expected": _EXPECTED[f], "detail": _DETAIL[f]}
            if f in self.at:
                obsid, ccd = self.at[f]
                file = hk_name(obsid, starts[obsid]) if ccd is None else frame_name(obsid, starts[obsid], ccd)
                out.append(row | {"obsids": [obsid], "ccd": ccd, "file": file})
            elif f == "explog_missing_rows":
                out.append(row | {"obsids": sorted(self.dropped_rows), "ccd": None, "file": f"EXP_LOG_{DAY:%d%m%y}.txt"})
            else:  # wrong_serials: every ObsID
                out.append(row | {"obsids": list(starts), "ccd": 2, "file": "",
                                      "detail": f"{_DETAIL[f]}: written {WRONG_SERIAL}, true {SERIALS[1]}"})
        return out


def _write_ccd(folder: Path, ccd: int, frames: list[Scheduled], rows: dict, faults: _Faults, geometry: Geometry,
               seed: int, full_size: bool) -> tuple[list[dict], dict[str, list]]:
    """Draw one CCD's quadrants, write its frames; return their truth rows and the quadrants'."""
    truths = {q: det.make_quadrant(ccd, q, geometry, _rng(seed, ccd, i)) for i, q in enumerate(QUADRANTS)}
    frame_rows = []
    for s in frames:
        row, name, fault = rows[s.obsid, ccd], frame_name(s.obsid, s.start, ccd), faults.of(s.obsid, ccd)
        light = _light(s, seed)
        if fault != "missing_ccd":
            rng = _rng(seed, s.obsid, ccd)
            quads = {q: det.render_quadrant(truths[q], geometry, light, rng) for q in QUADRANTS}
            if fault == "lost_pixels":
                image_rows, image_cols = geometry.region("image")
                quads["E"][image_rows, image_cols][:10, :10] = 0.0
            blob = _fits_bytes(det.assemble(quads, geometry), _header(row, geometry, full_size, folder.name))
            if fault == "corrupt_fits":
                blob = blob[: int(len(blob) * TRUNCATE_AT)]
            (folder / name).write_bytes(blob)
        e = s.exposure
        frame_rows.append({
            "obsid": s.obsid, "ccd": ccd, "test": e.test, "file": name, "date": row["date"], "exptime": e.exptime, "wave_nm": e.wave_nm,
            "fluence_e": light.fluence_e, "ig1_v": e.ig1_v, "id_dly": e.id_dly, "tp_mode": e.tp_mode,
            "toi_tp": e.toi_tp if e.tp_mode is not None else None, "hours": s.hours, "written": fault != "missing_ccd",
            "in_explog": s.obsid not in faults.dropped_rows, "fault": fault,
            "offsets_adu": [truths[q].offset_adu + truths[q].drift_adu_per_h * s.hours for q in QUADRANTS]})
    return frame_rows, _truth_rows(ccd, truths, SERIALS)


def _write_texts(folder: Path, frames: list[Scheduled], rows: dict, faults: _Faults, seed: int) -> None:
    """The EXP_LOG, each frame's HK file and the day's HK file (CRLF, as ELVIS on Windows)."""
    columns = explog_maps()["columns"][ELVIS]
    log = ["\t".join(columns)]
    day_hk = ["\t".join(["TimeStamp", *hk_data(ELVIS)["keys"]])]
    for s in frames:
        if s.obsid not in faults.dropped_rows:
            log += ["\t".join(_cell(k, rows[s.obsid, c][k]) for k in columns) for c in CCDS]
        lines = _hk_lines(s, rows[s.obsid, 1], _rng(seed, s.obsid, 9), faults.of(s.obsid, None) == "hk_ool")
        (folder / hk_name(s.obsid, s.start)).write_bytes(("\r\n".join([day_hk[0], *lines]) + "\r\n").encode())
        day_hk += lines
    (folder / f"EXP_LOG_{DAY:%d%m%y}.txt").write_bytes(("\r\n".join(log) + "\r\n").encode())
    (folder / f"HK_{DAY:%d-%m-%y}_ROE1_01.txt").write_bytes(("\r\n".join(day_hk) + "\r\n").encode())


def simulate_day(out: str | Path, *, full_size: bool = False, seed: int = 0, faults: Iterable[str] = (),
                 tests: Iterable[str] = FIRST_WAVE, max_frames: int | None = None,
                 image_size: tuple[int, int] | None = None,
                 resubmitted: Mapping[str, int] | None = None) -> SimulatedDay:
    """Write one simulated ELVIS day folder and its truth under ``out`` (see the module docstring).

    ``image_size`` (columns, rows of each quadrant's image area) sets another reduced geometry
    than the default 128 x 64, e.g. for a PTC whose gain must be known to a few 0.1 %: the pair
    variances' precision goes with the pixels per quadrant."""
    names, tests = tuple(faults), tuple(tests)
    unknown = [f for f in names if f not in FAULTS]
    if unknown:
        raise ValueError(f"unknown fault(s) {unknown}; known: {', '.join(FAULTS)}")
    if not tests:
        raise ValueError("no test to simulate")
    if max_frames is not None and max_frames < 1:
        raise ValueError("max_frames must be at least 1")
    unknown = set(resubmitted or {}) - set(tests)
    if unknown:
        raise ValueError(f"resubmitted test(s) {sorted(unknown)} are not among the tests {list(tests)}")
    frames = schedule(tests, max_frames, resubmitted)
    first = [s.obsid for s in frames if s.exposure.test == tests[0]]
    if names and len(first) < 8:
        raise ValueError(f"faults need at least 8 frames of the first test ({tests[0]})")
    placed = _Faults.place(names, first)
    geometry = FULL if full_size else SMALL
    if image_size is not None and not full_size:
        cols, rows_ = image_size
        if cols < 2 or rows_ < 2 or (cols, rows_) > (IMAGE_COLS, IMAGE_ROWS):
            raise ValueError(f"image_size {image_size} is not within 2 x 2 .. {IMAGE_COLS} x {IMAGE_ROWS}")
        geometry = Geometry(PRESCAN, cols, 20, rows_, PARALLEL_OVERSCAN)
    out = Path(out)
    folder = out / f"{DAY:%d_%b_%y}"
    folder.mkdir(parents=True, exist_ok=True)
    serials = (SERIALS[0], WRONG_SERIAL, SERIALS[2]) if "wrong_serials" in names else SERIALS
    rows = {(s.obsid, c): _row(s, c, serials, geometry, _rng(seed, s.obsid, c, 1)) for s in frames for c in CCDS}
    tables: dict[str, list] = {"quadrants": [], "defects": [], "traps": [], "frames": []}
    for ccd in CCDS:  # one CCD's maps in memory at a time (full size: 2 x 17 MB per quadrant)
        frame_rows, truth_rows = _write_ccd(folder, ccd, frames, rows, placed, geometry, seed, full_size)
        tables["frames"] += frame_rows
        for name, values in truth_rows.items():
            tables[name] += values
    _write_texts(folder, frames, rows, placed, seed)
    tables["faults"] = placed.rows(frames)
    for name, schema in SCHEMAS.items():
        write_table(out / "truth" / f"{name}.parquet", pa.Table.from_pylist(tables[name], schema=schema))
    spans = {t: (min(o), max(o)) for t in tests
             if (o := [s.obsid for s in frames if s.exposure.test == t and not s.aborted])}
    return SimulatedDay(out, folder, out / "truth", spans, geometry)


_PLACES = {"missing_ccd": (2, 3), "corrupt_fits": (3, 2), "hk_ool": (4, None), "lost_pixels": (5, 1)}  # index, CCD
_EXPECTED = {"missing_ccd": "MISSDATA", "corrupt_fits": "BADDATA", "explog_missing_rows": "MISSDATA",
             "hk_ool": "HK_OOL CCDTEMP_OOL", "wrong_serials": "WRONG_ROE_CONF", "lost_pixels": "LOSTPIXELS"}
_DETAIL = {"missing_ccd": "CCD file not written, its EXP_LOG rows kept",
           "corrupt_fits": f"file cut at {TRUNCATE_AT:.0%} of its bytes",
           "explog_missing_rows": "frames written, EXP_LOG rows missing",
           "hk_ool": "CCD2_TEMP_T at -117.5 C, CCD1_OD_T 0.5 V above its command",
           "wrong_serials": "CCD2 serial in headers and EXP_LOG is wrong",
           "lost_pixels": "10 x 10 pixels at 0 in quadrant E's image"}
