"""VIRUS simulator: one month of HETDEX raw data in the observatory's formats, with truth.

``simulate_month(out, n_ifus=1, n_shots=1, ...)`` writes

* ``{date}/virus/virus{obs:07d}_exp{NN}.tar``: one tar per exposure, members
  ``virus{obs:07d}/exp{NN}/virus/{stamp}_{ifuslot}{amp}_{zro|flt|twi|cmp|sci}.fits``, one FITS per
  amplifier (1064 x 1032 uint16 with overscan, per-amp and per-shot header keys);
* ``fplane.txt`` (the fplane server's table) and ``star_catalog.csv`` (ugriz of field stars);
* ``truth/``: ``amps.parquet`` (gain, read noise, bias level, traps, bad boxes, wavelength
  and trace polynomials per amp), ``lines.parquet`` (injected emission lines with their ideal
  S/N), ``sources.parquet`` (stars and continuum galaxies), ``cosmics.parquet`` (the cosmic-ray
  hits of the science frames, 0-based pixel row and column) and ``shots.json`` (pointing errors,
  FWHM, throughput normalisation and slope, transparencies);
* ``settings.json``: the settings that reduce it (also returned).

Every frame is rendered from a seed derived from (seed, ifuslot, amp, exposure), so the output
does not depend on how many processes render it.  The ideal S/N of a line is
sqrt(sum s^2 / var) over fibers, exposures and pixels, with var = sky + source + the read noise of
an optimal extraction (2 sqrt(pi) sigma_profile pixels).
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from astropy.io import fits
from astropy.time import Time

from steps.hetdex.science import sources as src
from steps.hetdex.science.coords import focal_to_sky
from steps.hetdex.science.instrument import (
    AMPS, DITHERS, EXPTIME, FIBER_AREA, N_FIBERS_AMP, NX_ACTIVE, NX_RAW, NY, amp_fibers,
    electrons_per_flux, ifuslot_position, ifuslots, nominal_throughput,
)
from steps.hetdex.science.psf import fiber_fraction

LYA, OII = 1215.67, 3727.42
CR_RATE = 1.5  # cosmic-ray events per cm^2 per minute (muons and secondaries at 2 km altitude)
PIXEL_CM = 15e-4  # VIRUS CCD pixel, cm
READOUT_S = 20.0  # s of readout during which hits still land
X = np.arange(NX_ACTIVE)


def _rng(*keys) -> np.random.Generator:
    return np.random.default_rng([int(k) if str(k).isdigit() else sum(map(ord, str(k))) for k in keys])


# ---------------------------------------------------------------- instrument truth per amplifier
def amp_truth(seed: int, ifuslot: str, amp: str, specid: str) -> dict:
    r = _rng(seed, 1, ifuslot, amp)
    f = np.arange(N_FIBERS_AMP)
    xn = X / NX_ACTIVE
    t = {
        "ifuslot": ifuslot, "amp": amp, "specid": specid,
        "gain": float(r.uniform(0.55, 0.75)),
        "read_noise": float(r.uniform(3.2, 4.6)),  # ADU
        "overscan": float(r.uniform(950, 1050)),
        "bias_level": float(r.uniform(6.0, 18.0)),  # active minus overscan, ADU
        "bias_gx": float(r.uniform(-1.5, 1.5)), "bias_gy": float(r.uniform(-1.0, 1.0)),
        "trace_y0": 16.0 + 9.0 * f + r.normal(0, 0.15, f.size),
        "trace_c": [float(r.uniform(-2, 2)), float(r.uniform(-3, 3)), float(r.uniform(-0.5, 0.5))],
        "sigma": r.uniform(1.2, 1.45, f.size),
        "wave_c": [3461.0 + 1.2 * np.sin(f / 25.0 + r.uniform(0, 6)) + r.normal(0, 0.1, f.size),
                   2092.0 + r.uniform(-2, 2), float(r.uniform(-5, 5)), float(r.uniform(-2, 2))],
        "fiber_tp": r.normal(1.0, 0.05, f.size) * r.normal(1.0, 0.03),
        "fiber_slope": r.normal(0.0, 0.02, f.size),
        "scatter": float(r.uniform(0.002, 0.006)),
    }
    del xn
    return t


def trace_of(t: dict) -> np.ndarray:
    xn = (X - NX_ACTIVE / 2) / (NX_ACTIVE / 2)
    c1, c2, c3 = t["trace_c"]
    return t["trace_y0"][:, None] + c1 * xn + c2 * xn**2 + c3 * xn**3


def wave_of(t: dict) -> np.ndarray:
    xn = X / NX_ACTIVE
    c0, c1, c2, c3 = t["wave_c"]
    return np.asarray(c0)[:, None] + c1 * xn + c2 * xn**2 + c3 * xn**3


def bias_structure(t: dict, contid: str) -> np.ndarray:
    """Per-controller bias structure (ADU, active area, over the overscan level)."""
    r = _rng(contid, t["amp"], 7)
    yy, xx = np.mgrid[0:NY, 0:NX_ACTIVE] / NY - 0.5
    cols = r.normal(0, 0.6, NX_ACTIVE)
    rows = 0.5 * np.sin(np.arange(NY) / 37.0 + r.uniform(0, 6))
    return (t["bias_level"] + t["bias_gx"] * xx + t["bias_gy"] * yy + cols[None, :] + rows[:, None]).astype(np.float32)


def trap_image(t: dict) -> np.ndarray:
    img = np.zeros((NY, NX_ACTIVE), np.float32)
    for c, y0, amp in t["traps"]:
        img[y0:, c] += amp
    return img


def pixel_response(t: dict) -> np.ndarray:
    r = _rng(t["ifuslot"], t["amp"], 3)
    pr = (1.0 + r.normal(0, 0.01, (NY, NX_ACTIVE))).astype(np.float32)
    for x1, x2, y1, y2 in t["bad_boxes"]:
        pr[y1 - 1:y2, x1 - 1:x2] = 0.3
    return pr


def cosmic_rays(rng: np.random.Generator, seconds: float) -> dict[str, np.ndarray]:
    """Cosmic-ray hits on one amplifier during ``seconds`` (exposure plus readout).

    Events arrive at ``CR_RATE`` per cm^2 per minute on the 15 um pixels; each is a straight track
    of 1-5 pixels in a random direction with a log-normal deposit (median 800 e-) per pixel.
    Returns pixel rows ``y``, columns ``x``, ``electrons`` and the ``event`` number of each hit.
    """
    area = NY * NX_ACTIVE * PIXEL_CM**2
    ys, xs, es, ev = [], [], [], []
    for k in range(rng.poisson(CR_RATE * area * seconds / 60.0)):
        n = int(rng.integers(1, 6))
        angle = rng.uniform(0, np.pi)
        y0, x0 = rng.uniform(0, NY), rng.uniform(0, NX_ACTIVE)
        step = np.arange(n)
        y = np.clip(np.rint(y0 + step * np.sin(angle)), 0, NY - 1).astype(int)
        x = np.clip(np.rint(x0 + step * np.cos(angle)), 0, NX_ACTIVE - 1).astype(int)
        ys.append(y)
        xs.append(x)
        es.append(rng.lognormal(np.log(800.0), 0.6, n))
        ev.append(np.full(n, k))
    cat = (lambda a, dt: np.concatenate(a).astype(dt) if a else np.zeros(0, dt))  # noqa: E731
    return {"y": cat(ys, int), "x": cat(xs, int), "electrons": cat(es, float), "event": cat(ev, int)}


def render(t: dict, contid: str, electrons: np.ndarray | None, rng: np.random.Generator,
           extra_noise: float = 0.0, cosmics: dict | None = None) -> np.ndarray:
    """Raw uint16 frame (1032 x 1064) from fiber spectra in electrons per pixel (nfib, nx), plus
    cosmic-ray hits (after the Poisson draw: their deposits are their own)."""
    e = np.zeros((NY, NX_ACTIVE), np.float64)
    if electrons is not None:
        trace, sig = trace_of(t), t["sigma"]
        base = np.rint(trace).astype(int)
        for k in range(-6, 7):
            rows = base + k
            prof = np.exp(-0.5 * ((rows - trace) / sig[:, None]) ** 2) / (np.sqrt(2 * np.pi) * sig[:, None])
            ok = (rows >= 0) & (rows < NY)
            np.add.at(e, (rows[ok], np.broadcast_to(X, rows.shape)[ok]), (prof * electrons)[ok])
        e += t["scatter"] * electrons.mean() * _scatter_shape()
        e = rng.poisson(np.maximum(e * pixel_response(t), 0)).astype(np.float64)
    if cosmics is not None:
        np.add.at(e, (cosmics["y"], cosmics["x"]), cosmics["electrons"])
    adu = e / t["gain"] + bias_structure(t, contid) + trap_image(t)
    raw = np.empty((NY, NX_RAW), np.float64)
    raw[:, :NX_ACTIVE] = adu
    raw[:, NX_ACTIVE:] = 0.0
    raw += t["overscan"] + rng.normal(0, 3.0) + rng.normal(0, t["read_noise"] + extra_noise, raw.shape)
    return np.clip(np.rint(raw), 0, 65535).astype(np.uint16)


def _scatter_shape() -> np.ndarray:
    yy, xx = np.mgrid[0:NY, 0:NX_ACTIVE] / NY
    return (1.0 + 0.5 * xx - 0.3 * yy).astype(np.float32)


# ---------------------------------------------------------------- sources and the sky
@dataclass
class Shot:
    date: str
    obs: int
    ra: float
    dec: float
    pa: float
    dra: float  # true pointing error, arcsec (focal plane)
    ddec: float
    fwhm: float
    tp_norm: float
    tp_slope: float
    transparency: list

    @property
    def datevobs(self) -> str:
        return f"{self.date}v{self.obs:03d}"

    @property
    def shotid(self) -> int:
        return int(self.date) * 1000 + self.obs


def true_throughput(shot: Shot, wave):
    return nominal_throughput(wave) * shot.tp_norm * (1.0 + shot.tp_slope * (np.asarray(wave) - 4540.0) / 1000.0)


def make_sources(seed: int, shot: Shot, slots: list[str], n_lae: int, n_oii: int, n_cont: int, n_stars: int):
    """Emission-line galaxies, continuum galaxies and stars placed in the IFUs of ``slots``."""
    r = _rng(seed, 5, shot.obs)
    lines, objs, stars = [], [], []
    for slot in slots:
        cx, cy = ifuslot_position(slot)
        placed: list[tuple[float, float]] = []

        def place(min_sep=5.0):
            for _ in range(200):
                x, y = cx + r.uniform(-21, 21), cy + r.uniform(-21, 21)
                if all(np.hypot(x - a, y - b) > min_sep for a, b in placed):
                    placed.append((x, y))
                    return x, y
            return cx + r.uniform(-21, 21), cy + r.uniform(-21, 21)

        for k in range(n_stars):
            x, y = place(9.0)
            stars.append({"fx": x, "fy": y, "temp": float(r.uniform(4500, 7500)), "gmag": float(r.uniform(17.0, 19.5)),
                          "ifuslot": slot})
        for k in range(n_cont):
            x, y = place(6.0)
            objs.append({"kind": "galaxy", "fx": x, "fy": y, "gmag": float(r.uniform(20.0, 21.5)), "ifuslot": slot,
                         "wave": np.nan, "flux": np.nan, "z": np.nan, "sigma": np.nan, "ew_rest": np.nan})
        for kind, n in (("lae", n_lae), ("oii", n_oii)):
            for k in range(n):
                x, y = place(4.0)
                if kind == "lae":
                    z = r.uniform(3560 / LYA - 1, 5480 / LYA - 1)
                    wave, ew = LYA * (1 + z), r.uniform(20, 150)
                else:
                    z = r.uniform(3560 / OII - 1, 0.47)
                    wave, ew = OII * (1 + z), r.uniform(8, 50)
                flux = float(np.exp(r.uniform(np.log(3.0e-17), np.log(3.0e-16))))
                lines.append({"kind": kind, "fx": x, "fy": y, "z": float(z), "wave": float(wave), "flux": flux,
                              "sigma": float(np.hypot(src.LSF_SIGMA, r.uniform(0.5, 2.5))), "ew_rest": float(ew),
                              "ifuslot": slot, "gmag": np.nan})
    return lines, objs, stars


def _source_flambda(s: dict, wave: np.ndarray) -> np.ndarray:
    """F_lambda of a source at the given wavelengths (line + continuum, or star)."""
    if "temp" in s:
        return src.star_spectrum(wave, s["temp"], s["gmag"])
    if s["kind"] == "galaxy":
        return src.ab_to_flambda(s["gmag"], wave)
    cont = s["flux"] / (s["ew_rest"] * (1 + s["z"]))
    return cont + src.gaussian(wave, s["wave"], s["sigma"], s["flux"])


def fiber_positions(shot: Shot, slot: str, amp: str, exp: int) -> tuple[np.ndarray, np.ndarray]:
    """True focal-plane positions of an amp's fibers in one exposure (pointing error included)."""
    cx, cy = ifuslot_position(slot)
    f = amp_fibers(amp)
    return cx + f[:, 0] + DITHERS[exp, 0] - shot.dra, cy + f[:, 1] + DITHERS[exp, 1] - shot.ddec


def science_electrons(t: dict, shot: Shot, exp: int, everything: list[dict]) -> np.ndarray:
    """Electrons per pixel (112, 1032) of one amp in one science exposure."""
    wave = wave_of(t)
    dl = np.gradient(wave, axis=1)
    conv = electrons_per_flux(wave, dl, EXPTIME) * true_throughput(shot, wave) * shot.transparency[exp]
    conv *= (t["fiber_tp"][:, None] * (1 + t["fiber_slope"][:, None] * (wave - 4540) / 1000))
    flam = FIBER_AREA * src.sky_spectrum(wave)
    fx, fy = fiber_positions(shot, t["ifuslot"], t["amp"], exp)
    for s in everything:
        frac = fiber_fraction(fx - s["fx"], fy - s["fy"], shot.fwhm)
        near = frac > 1e-5
        if near.any():
            flam[near] += frac[near, None] * _source_flambda(s, wave[near])
    return flam * conv


def line_snr(line: dict, shot: Shot, truths: dict[tuple[str, str], dict]) -> float:
    """Ideal S/N of an injected line over all fibers, exposures and pixels (see module doc)."""
    s2 = 0.0
    for amp in AMPS:
        t = truths[(line["ifuslot"], amp)]
        wave = wave_of(t)
        dl = np.gradient(wave, axis=1)
        rn_e2 = (t["read_noise"] * t["gain"]) ** 2 * 2 * np.sqrt(np.pi) * t["sigma"][:, None]
        for exp in range(len(DITHERS)):
            fx, fy = fiber_positions(shot, line["ifuslot"], amp, exp)
            frac = fiber_fraction(fx - line["fx"], fy - line["fy"], shot.fwhm)
            near = frac > 1e-4
            if not near.any():
                continue
            w, d = wave[near], dl[near]
            conv = electrons_per_flux(w, d, EXPTIME) * true_throughput(shot, w) * shot.transparency[exp]
            conv *= t["fiber_tp"][near, None]
            sig = frac[near, None] * src.gaussian(w, line["wave"], line["sigma"], line["flux"]) * conv
            cont = frac[near, None] * line["flux"] / (line["ew_rest"] * (1 + line["z"])) * conv
            sky = FIBER_AREA * src.sky_spectrum(w) * conv
            var = sky + cont + sig + rn_e2[near]
            s2 += float(np.sum(sig**2 / var))
    return float(np.sqrt(s2))


# ---------------------------------------------------------------- FITS and tar writing
def _header(t: dict, ifu: dict, kind: str, meta: dict) -> fits.Header:
    h = fits.Header()
    h["IMAGETYP"] = {"zro": "zero", "flt": "flat", "twi": "twilight", "cmp": "comp", "sci": "object"}[kind]
    h["IFUSLOT"] = ifu["ifuslot"]
    h["IFUID"] = ifu["ifuid"]
    h["SPECID"] = ifu["specid"]
    h["CONTID"] = ifu["contid"]
    h["CCDPOS"] = t["amp"][0]
    h["CCDHALF"] = t["amp"][1]
    h["AMPNAME"] = t["amp"]
    h["GAIN"] = (round(t["gain"], 4), "e-/ADU")
    h["RDNOISE"] = (round(t["read_noise"] * t["gain"], 3), "e-, nominal")
    h["BIASSEC"] = "[1035:1060,10:1032]"
    h["TRIMSEC"] = "[1:1032,1:1032]"
    for k, v in meta.items():
        h[k] = v
    return h


def _fits_bytes(data: np.ndarray, header: fits.Header) -> bytes:
    buf = io.BytesIO()
    fits.PrimaryHDU(data=data, header=header).writeto(buf)
    return buf.getvalue()


@dataclass
class Exposure:
    kind: str
    date: str
    obs: int
    exp: int
    stamp: str
    mjd: float
    exptime: float
    shot: Shot | None = None
    extra_noise: float = 0.0


def frame_cosmics(seed: int, ex: "Exposure", ifuslot: str, amp: str) -> dict[str, np.ndarray]:
    """The cosmic rays of one amp in one exposure (its own random stream: the truth can redo it)."""
    return cosmic_rays(_rng(seed, 13, ex.obs, ex.exp, ifuslot, amp, ex.date), ex.exptime + READOUT_S)


def _render_ifu_exposure(args) -> list[tuple[str, bytes]]:
    seed, ex, ifu, truths, everything = args
    out = []
    for amp in AMPS:
        t = truths[(ifu["ifuslot"], amp)]
        r = _rng(seed, 9, ex.obs, ex.exp, ifu["ifuslot"], amp, ex.date)
        wave = wave_of(t)
        dl = np.gradient(wave, axis=1)
        tp = t["fiber_tp"][:, None] * (1 + t["fiber_slope"][:, None] * (wave - 4540) / 1000)
        if ex.kind == "zro":
            electrons = None
        elif ex.kind == "flt":
            electrons = 25000.0 * src.ldls_spectrum(wave) * tp * dl / 2.0
        elif ex.kind == "twi":
            electrons = 20000.0 * src.twilight_spectrum(wave) * nominal_throughput(wave) / 0.2 * tp * dl / 2.0
        elif ex.kind == "cmp":
            electrons = 60000.0 * src.arc_spectrum(wave) * tp * dl
        else:
            electrons = science_electrons(t, ex.shot, ex.exp - 1, everything)
        raw = render(t, ifu["contid"], electrons, r, ex.extra_noise, frame_cosmics(seed, ex, ifu["ifuslot"], amp))
        meta = {
            "DATE-OBS": f"{ex.date[:4]}-{ex.date[4:6]}-{ex.date[6:]}", "UT": ex.stamp.split("T")[1][:8],
            "OBSID": ex.obs, "EXPN": ex.exp, "EXPTIME": ex.exptime, "DARKTIME": ex.exptime + 1.5, "MJD": ex.mjd,
            "OBJECT": "DEX_SIM" if ex.kind == "sci" else ex.kind,
        }
        if ex.shot is not None:
            meta.update({"TRAJCRA": ex.shot.ra, "TRAJCDEC": ex.shot.dec, "PARANGLE": ex.shot.pa, "STRUCTAZ": 180.0,
                         "AMBTEMP": 10.5, "HUMIDITY": 30.0, "DEWPT": -5.0, "BAROMPRE": 795.0})
        name = f"{ex.stamp}_{ifu['ifuslot']}{amp}_{ex.kind}.fits"
        out.append((name, _fits_bytes(raw, _header(t, ifu, ex.kind, meta))))
    return out


def _write_tar(path: Path, members: list[tuple[str, bytes]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name("." + path.name + ".tmp")
    with tarfile.open(tmp, "w") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1700000000
            tar.addfile(info, io.BytesIO(data))
    os.replace(tmp, path)


# ---------------------------------------------------------------- the whole month
def simulate_month(out: Path, n_ifus: int = 1, n_shots: int = 1, seed: int = 0, month: str = "202401",
                   n_zero: int = 8, n_flat: int = 2, n_twi: int = 2, n_arc: int = 2, n_lae: int = 30,
                   n_oii: int = 10, n_cont: int = 2, n_stars: int = 3, n_traps: int = 2, workers: int | None = None) -> dict:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    r = _rng(seed, 0)
    slots = ifuslots(n_ifus)
    ifus = [{"ifuslot": s, "specid": f"{(int(s) * 7 + 11) % 900 + 10:03d}", "ifuid": f"{(int(s) * 13 + 5) % 600 + 17:03d}",
             "contid": f"cont{(int(s) * 3) % 97:03d}"} for s in slots]
    truths = {}
    for ifu in ifus:
        for amp in AMPS:
            truths[(ifu["ifuslot"], amp)] = dict(amp_truth(seed, ifu["ifuslot"], amp, ifu["specid"]), traps=[], bad_boxes=[])
    keys = list(truths)
    for k in range(n_traps):  # charge traps on random amps
        t = truths[keys[r.integers(len(keys))]]
        t["traps"].append((int(r.integers(60, 980)), int(r.integers(150, 800)), float(r.uniform(15, 40))))
    for ifu in ifus:  # one low-response box per IFU
        t = truths[(ifu["ifuslot"], AMPS[r.integers(4)])]
        x1, y1 = int(r.integers(100, 900)), int(r.integers(100, 850))
        t["bad_boxes"].append((x1, x1 + int(r.integers(3, 15)), y1, y1 + int(r.integers(20, 80))))

    d0 = f"{month}03"
    exposures: list[Exposure] = []
    obs = 1

    def add(kind, n, date, hour, exptime, shot=None, per_obs=False, extra=None):
        nonlocal obs
        for i in range(n):
            stamp = f"{date}T{hour + i // 6:02d}{(i * 7) % 60:02d}00.0"
            mjd = Time(f"{date[:4]}-{date[4:6]}-{date[6:]}T{hour:02d}:00:00").mjd + i * 0.005
            exposures.append(Exposure(kind, date, obs, (i + 1) if per_obs else 1, stamp, mjd, exptime, shot,
                                      extra(i) if extra else 0.0))
            if not per_obs:
                obs += 1
        if per_obs:
            obs += 1

    add("zro", n_zero, d0, 1, 0.0, extra=lambda i: 25.0 if i == n_zero - 1 and n_zero >= 4 else 0.0)
    add("flt", n_flat, d0, 2, 30.0)
    add("cmp", n_arc, d0, 3, 60.0)
    add("twi", n_twi, d0, 0, 10.0)
    shots, all_lines, all_objs, all_stars = [], [], [], []
    for s in range(n_shots):
        date = f"{month}{5 + 2 * s:02d}"
        shot = Shot(date, 11, 150.1 + 0.5 * s, 2.2, 0.0, float(r.uniform(-1.5, 1.5)), float(r.uniform(-1.5, 1.5)),
                    float(r.uniform(1.5, 1.9)), float(r.uniform(0.85, 1.1)), float(r.uniform(-0.05, 0.05)),
                    [1.0, float(r.uniform(0.93, 1.0)), float(r.uniform(0.95, 1.05))])
        shots.append(shot)
        lines, objs, stars = make_sources(seed, shot, slots, n_lae, n_oii, n_cont, n_stars)
        everything = lines + objs + stars
        for row in everything:
            row["ra"], row["dec"] = (float(v) for v in focal_to_sky(row["fx"], row["fy"], shot.ra, shot.dec, shot.pa))
            row["shotid"] = shot.shotid
        for line in lines:
            line["sn_true"] = line_snr(line, shot, truths)
        all_lines += lines
        all_objs += objs
        all_stars += stars
        saved_obs = obs
        obs = shot.obs
        add("sci", 3, date, 4, 360.0, shot=shot, per_obs=True)
        obs = saved_obs
        shot.everything = everything  # type: ignore[attr-defined]

    jobs = []
    for ex in exposures:
        everything = getattr(ex.shot, "everything", []) if ex.shot else []
        for ifu in ifus:
            jobs.append((ex, (seed, ex, ifu, {(ifu["ifuslot"], a): truths[(ifu["ifuslot"], a)] for a in AMPS}, everything)))
    # jobs come back in exposure order: each exposure's tar is written as soon as it is complete
    left = {id(ex): len(ifus) for ex in exposures}
    members: list[tuple[str, bytes]] = []
    workers = workers or min(os.cpu_count() or 1, 8)
    with ProcessPoolExecutor(workers) as pool:
        for (ex, _), files in zip(jobs, pool.map(_render_ifu_exposure, [j[1] for j in jobs], chunksize=1)):
            prefix = f"virus{ex.obs:07d}/exp{ex.exp:02d}/virus/"
            members.extend((prefix + n, b) for n, b in files)
            left[id(ex)] -= 1
            if not left[id(ex)]:
                _write_tar(out / ex.date / "virus" / f"virus{ex.obs:07d}_exp{ex.exp:02d}.tar", members)
                members = []

    # fplane, star catalogue, truth
    lines_ = ["# ifuslot fpx fpy specid specslot ifuid ifurot platesc"]
    for ifu in ifus:
        fx, fy = ifuslot_position(ifu["ifuslot"])
        lines_.append(f"{ifu['ifuslot']} {fx:.3f} {fy:.3f} {ifu['specid']} {ifu['specid']} {ifu['ifuid']} 0.0 1.0")
    (out / "fplane.txt").write_text("\n".join(lines_) + "\n")
    cat = ["star_ID,ra,dec,u,g,r,i,z"]
    for k, s in enumerate(all_stars):
        m = src.star_mags(s["temp"], s["gmag"])
        cat.append(f"SIM{k:06d},{s['ra']:.7f},{s['dec']:.7f}," + ",".join(f"{m[b]:.3f}" for b in "ugriz"))
    (out / "star_catalog.csv").write_text("\n".join(cat) + "\n")
    tdir = out / "truth"
    tdir.mkdir(exist_ok=True)
    amp_rows = []
    for (slot, amp), t in truths.items():
        ifu = next(i for i in ifus if i["ifuslot"] == slot)
        sb = bias_structure(t, ifu["contid"])
        from astropy.stats import biweight_location
        amp_rows.append({
            "ifuslot": slot, "amp": amp, "specid": ifu["specid"], "ifuid": ifu["ifuid"], "contid": ifu["contid"],
            "gain": t["gain"], "read_noise": t["read_noise"],
            "bias_level": float(biweight_location(sb[300:700, 300:700])),
            "traps": [{"column": c, "first_row": y0, "amplitude": a} for c, y0, a in t["traps"]],
            "bad_boxes": [list(b) for b in t["bad_boxes"]],
            "wave_c0": list(map(float, t["wave_c"][0])), "wave_c": [float(v) for v in t["wave_c"][1:]],
            "trace_y0": list(map(float, t["trace_y0"])), "trace_c": t["trace_c"], "sigma": list(map(float, t["sigma"])),
            "fiber_tp": list(map(float, t["fiber_tp"])),
        })
    pq.write_table(pa.Table.from_pylist(amp_rows), tdir / "amps.parquet")
    cols = ["shotid", "kind", "ifuslot", "ra", "dec", "fx", "fy", "wave", "flux", "z", "sigma", "ew_rest", "sn_true"]
    pq.write_table(pa.Table.from_pylist([{k: ln[k] for k in cols} for ln in all_lines]), tdir / "lines.parquet")
    srcs = [{"shotid": s["shotid"], "kind": "star", "ifuslot": s["ifuslot"], "ra": s["ra"], "dec": s["dec"],
             "gmag": s["gmag"], "temp": s["temp"]} for s in all_stars]
    srcs += [{"shotid": s["shotid"], "kind": "galaxy", "ifuslot": s["ifuslot"], "ra": s["ra"], "dec": s["dec"],
              "gmag": s["gmag"], "temp": np.nan} for s in all_objs]
    pq.write_table(pa.Table.from_pylist(srcs), tdir / "sources.parquet")
    hits = []
    for ex in exposures:
        if ex.kind == "sci":
            for slot, amp in truths:
                c = frame_cosmics(seed, ex, slot, amp)
                hits += [{"datevobs": f"{ex.date}v{ex.obs:03d}", "expnum": ex.exp, "ifuslot": slot, "amp": amp,
                          "event": int(k), "y": int(y), "x": int(x), "electrons": float(e)}
                         for k, y, x, e in zip(c["event"], c["y"], c["x"], c["electrons"])]
    pq.write_table(pa.Table.from_pylist(hits), tdir / "cosmics.parquet")
    shot_truth = [{"datevobs": s.datevobs, "shotid": s.shotid, "ra": s.ra, "dec": s.dec, "pa": s.pa, "dra": s.dra,
                   "ddec": s.ddec, "fwhm": s.fwhm, "tp_norm": s.tp_norm, "tp_slope": s.tp_slope,
                   "response_4540": float(true_throughput(s, 4540.0)), "transparency": s.transparency} for s in shots]
    (tdir / "shots.json").write_text(json.dumps(shot_truth, indent=1) + "\n")
    settings = {
        "data_root": str(out),
        "months": [month],
        "shots": [s.datevobs for s in shots],
        "star_catalog": str(out / "star_catalog.csv"),
        "fplane": str(out / "fplane.txt"),
    }
    (out / "settings.json").write_text(json.dumps(settings, indent=1) + "\n")
    return settings
