"""The HETDEX section of the run report: each shot's detections on the sky, its line-flux limits,
and the calibration of every amplifier.

Read from the steps' datasets only: detections (runbook 14) and continuum sources (15) over the
shot's fibers (astrometry, runbook 8); the line fluxes and their 1-sigma errors against
wavelength beside the shot's biweight 1-sigma flux limit at 4600 A (``flim4600_averages.txt``,
the survey step, 17) times the catalogue's S/N threshold (``detect_sn_min``); and per amplifier
the master bias level and read noise (runbook 4), the trace and wavelength-solution RMS of the
twilight calibration (6), the amp-to-amp normalisation (6.4-6), and the full-field sky factor of
each exposure (20).  Fluxes are HETDEX's 1e-17 erg/s/cm^2.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from astroflow import config as run_config
from astroflow import rundir
from astroflow.report import figure, figures, link, new_figure, table_html

FLUX = "line flux [1e-17 erg s$^{-1}$ cm$^{-2}$]"


def _rows(run_dir: Path, step: str, columns: list[str] | None = None) -> list[dict]:
    ledger = rundir.Ledger(run_dir / step)
    return ledger.read(columns=columns).to_pylist() if ledger.parts else []


def _amp_label(r: dict) -> str:
    return f"{r['ifuslot']} {r['amp']}"


def sky_figure(run_dir: Path, shot: dict, detections: list[dict], continuum: list[dict]) -> str:
    """The shot's fibers (grey), line detections coloured by S/N and continuum sources, on the sky."""
    fig = new_figure(6.0, 5.2)
    ax = fig.add_subplot()
    fibers_path = run_dir / shot["fibers_path"] if shot.get("fibers_path") else None
    if fibers_path is not None and fibers_path.is_file():
        import pyarrow.parquet as pq

        fib = pq.read_table(fibers_path, columns=["ra", "dec"])
        ax.scatter(fib["ra"].to_numpy(), fib["dec"].to_numpy(), s=3, c="#c9d0db", label="fibers", rasterized=True)
    if detections:
        ra, dec = np.array([d["ra"] for d in detections]), np.array([d["dec"] for d in detections])
        sn = np.array([d["sn"] for d in detections])
        pts = ax.scatter(ra, dec, c=sn, s=36, cmap="viridis", edgecolors="black", linewidths=0.4,
                         label=f"line detections ({len(detections)})")
        fig.colorbar(pts, ax=ax, label="S/N of the line")
    if continuum:
        ax.scatter([c["ra"] for c in continuum], [c["dec"] for c in continuum], s=70, marker="*", c="#d97706",
                   edgecolors="black", linewidths=0.4, label=f"continuum sources ({len(continuum)})")
    ax.set_aspect(1.0 / np.cos(np.radians(shot["dec"])), adjustable="datalim")
    ax.invert_xaxis()  # east to the left
    ax.ticklabel_format(useOffset=False)
    ax.set_xlabel("RA [deg]")
    ax.set_ylabel("Dec [deg]")
    ax.legend(loc="upper right", fontsize=8, framealpha=0.8)
    ax.set_title(f"shot {shot['datevobs']}: detections on the sky", fontsize=10)
    return figure(run_dir, f"hetdex_sky_{shot['datevobs']}", fig,
                  f"Shot {shot['datevobs']}: fibers, line detections (colour: S/N) and continuum sources; east left.")


def flux_limit_figure(run_dir: Path, shot: dict, detections: list[dict], f1sigma: float | None, sn_min: float) -> str:
    """Line flux and its 1-sigma error against wavelength, with the shot's 4600 A flux limit."""
    fig = new_figure(6.4, 5.2)
    top, bottom = fig.subplots(2, 1, sharex=True)
    if detections:
        wave = np.array([d["wave"] for d in detections])
        flux = np.array([d["flux"] for d in detections])
        err = np.array([d["flux_err"] for d in detections])
        top.errorbar(wave, flux, yerr=err, fmt="o", ms=4, color="#2f5bd3", ecolor="#9db2ea", label="detections")
        bottom.scatter(wave, err, s=16, color="#2f5bd3", label="1-sigma error of each line flux")
    if f1sigma is not None:
        top.axhline(sn_min * f1sigma, color="#b42318", ls="--", lw=1,
                    label=f"S/N {sn_min:g} x 1-sigma limit at 4600 A ({sn_min * f1sigma:.2f})")
        bottom.scatter([4600.0], [f1sigma], marker="*", s=140, color="#b42318", zorder=3,
                       label=f"shot's 1-sigma limit at 4600 A ({f1sigma:.3f})")
    top.set_yscale("log")
    top.set_ylabel(FLUX)
    bottom.set_ylabel("1-sigma [1e-17 cgs]")
    bottom.set_xlabel("wavelength [Å]")
    for ax in (top, bottom):
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="upper right", frameon=False)
    top.set_title(f"shot {shot['datevobs']}: line fluxes and flux limits", fontsize=10)
    return figure(run_dir, f"hetdex_flux_limits_{shot['datevobs']}", fig,
                  f"Shot {shot['datevobs']}: line fluxes of the detections (top) and their 1-sigma errors (bottom) "
                  "against wavelength, with the shot's biweight 1-sigma flux limit at 4600 A.")


AMP_PANELS = [  # (step, column, axis label)
    ("master_bias", "level", "bias level [ADU]"),
    ("master_bias", "read_noise", "read noise [ADU]"),
    ("twilight_cal", "trace_rms", "trace fit RMS [pix]"),
    ("twilight_cal", "wave_rms", "wavelength RMS [Å]"),
    ("amp_to_amp", "a2a", "amp-to-amp factor"),
    ("full_sky", "factor", "full-field sky factor"),
]


def amplifier_figure(run_dir: Path, per_step: dict[str, list[dict]]) -> str | None:
    """One panel per calibration figure of merit, one bar (or, for several exposures, one dot per
    exposure) per amplifier."""
    amps = sorted({_amp_label(r) for rows in per_step.values() for r in rows})
    if not amps:
        return None
    fig = new_figure(9.6, 5.6)
    axes = fig.subplots(2, 3).ravel()
    x = {a: i for i, a in enumerate(amps)}
    for ax, (step, col, label) in zip(axes, AMP_PANELS):
        rows = [r for r in per_step.get(step, []) if r.get(col) is not None]
        if step == "full_sky":
            for r in rows:
                ax.plot(x[_amp_label(r)], r[col], "o", ms=5, color="#2f5bd3", alpha=0.8)
        else:
            ax.bar([x[_amp_label(r)] for r in rows], [r[col] for r in rows], color="#2f5bd3", width=0.6)
        ax.set_title(label, fontsize=9)
        ax.set_xticks(range(len(amps)), amps, rotation=90 if len(amps) > 8 else 0, fontsize=7)
        ax.grid(True, axis="y", alpha=0.3)
    fig.suptitle("Calibration per amplifier (IFU slot, amp)", fontsize=10)
    return figure(run_dir, "hetdex_amplifiers", fig,
                  "Per amplifier: master bias level and read noise, twilight trace and wavelength-solution RMS, "
                  "amp-to-amp normalisation, and the full-field sky factor of each exposure.", wide=True)


def _flux_limits(run_dir: Path) -> dict[int, float]:
    return {r["shotid"]: r["f1sigma_biweight"] for r in _rows(run_dir, "survey_h5", ["shotid", "f1sigma_biweight"])}


def section(run_dir) -> str:
    """The run report's HETDEX section."""
    run_dir = Path(run_dir)
    sn_min = run_config.load(run_dir).settings.get("detect_sn_min", 5.0)
    det_cols = ["detectid", "shotid", "datevobs", "ifuslot", "ra", "dec", "wave", "flux", "flux_err", "sn",
                "linewidth", "amp"]
    detections = _rows(run_dir, "detections", det_cols)
    continuum = _rows(run_dir, "continuum", ["detectid", "shotid", "ra", "dec", "continuum"])
    shots = _rows(run_dir, "astrometry", ["datevobs", "shotid", "ra", "dec", "pa", "nstars", "rms", "fibers_path"])
    limits = _flux_limits(run_dir)
    parts = ["<h2>HETDEX shots</h2>"]
    if not shots:
        return "\n".join(parts + ["<p>No shot has its astrometry yet (runbook 8 has not run).</p>"])
    parts.append(table_html(
        ["shot", "RA deg", "Dec deg", "PA deg", "astrometry stars", "astrometry RMS", "detections",
         "continuum sources", "1-sigma flux limit at 4600 A"],
        [[s["datevobs"], f"{s['ra']:.5f}", f"{s['dec']:.5f}", f"{s['pa']:.2f}", s["nstars"], f"{s['rms']:.3f}",
          sum(d["shotid"] == s["shotid"] for d in detections), sum(c["shotid"] == s["shotid"] for c in continuum),
          f"{limits[s['shotid']]:.4f}" if s["shotid"] in limits else "-"] for s in shots]))
    for s in shots:
        det = [d for d in detections if d["shotid"] == s["shotid"]]
        cont = [c for c in continuum if c["shotid"] == s["shotid"]]
        parts.append(f"<h3>Shot {s['datevobs']}</h3>")
        parts.append(figures(sky_figure(run_dir, s, det, cont),
                             flux_limit_figure(run_dir, s, det, limits.get(s["shotid"]), sn_min)))
    per_step = {step: _rows(run_dir, step) for step in {p[0] for p in AMP_PANELS}}
    amp_fig = amplifier_figure(run_dir, per_step)
    if amp_fig:
        parts += ["<h3>Amplifiers</h3>", figures(amp_fig)]
    if detections:
        parts.append(f"<h3>Line detections ({len(detections)})</h3>")
        parts.append(table_html(["detectid", "shot", "IFU", "amp", "RA deg", "Dec deg", "wavelength A", "flux",
                                 "flux error", "S/N", "line width"],
                                [[d["detectid"], d["datevobs"], d["ifuslot"], d["amp"], f"{d['ra']:.5f}",
                                  f"{d['dec']:.5f}", f"{d['wave']:.2f}", f"{d['flux']:.2f}", f"{d['flux_err']:.2f}",
                                  f"{d['sn']:.2f}", f"{d['linewidth']:.2f}"]
                                 for d in sorted(detections, key=lambda d: -d["sn"])]))
    release = sorted(p.relative_to(run_dir).as_posix() for p in (run_dir / "release").rglob("*") if p.is_file()) \
        if (run_dir / "release").is_dir() else []
    if release:
        parts.append("<h3>Release files</h3><p>" + " · ".join(link(p, p.removeprefix("release/")) for p in release)
                     + "</p>")
    return "\n".join(parts)
