"""The ELiXer section of the run report: the classifications in figures, every report linked.

From the classify step's dataset (HETDEX runbook 18.1-18.2): how many detections got each label
and how sure the classifier was (P(LyA), stacked by label), and where they lie in observed
wavelength and rest-frame equivalent width (as LyA); then the reports expected against present
per type (18.4, the count step) and one row per detection linking each of its reports (PNG, PDF,
neighbourhood and mini images, as the run made them) beside the catalogue ``elixer_cat.h5``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from astroflow import config as run_config
from astroflow import rundir
from astroflow.report import Markup, figure, figures, link, new_figure, table_html
from steps.elixer.count import report_counts
from steps.elixer.settings import REPORT_TYPES, ElixerSettings, report_path

COLUMNS = ["detectid", "classification_labels", "plya_classification", "z_best", "wavelength_obs", "flux_line",
           "sn", "combined_eqw_rest_lya", "combined_plae", "flags"]
PALETTE = ["#2f5bd3", "#d97706", "#1f8a4c", "#b42318", "#7c3aed", "#0e7490", "#9aa4b2"]


def _label(r: dict) -> str:
    return r["classification_labels"] or "unclassified"


def _colors(labels: list[str]) -> dict[str, str]:
    return {lab: PALETTE[i % len(PALETTE)] for i, lab in enumerate(labels)}


def classification_figure(run_dir: Path, rows: list[dict], colors: dict[str, str]) -> str:
    """Detections per label, and the histogram of P(LyA) stacked by label."""
    labels = list(colors)
    fig = new_figure(6.4, 4.2)
    left, right = fig.subplots(1, 2, width_ratios=[1, 1.6])
    n = [sum(_label(r) == lab for r in rows) for lab in labels]
    left.bar(labels, n, color=[colors[lab] for lab in labels])
    for x, v in enumerate(n):
        left.annotate(str(v), (x, v), ha="center", va="bottom", fontsize=8)
    left.set_ylabel("detections")
    left.set_title("labels", fontsize=9)
    left.tick_params(axis="x", labelrotation=30, labelsize=8)
    p = [[r["plya_classification"] for r in rows if _label(r) == lab and r["plya_classification"] is not None]
         for lab in labels]
    right.hist(p, bins=np.linspace(0, 1, 21), stacked=True, color=[colors[lab] for lab in labels], label=labels,
               edgecolor="white", linewidth=0.4)
    right.set_xlabel("P(LyA)")
    right.set_title("how sure: P(LyA) by label", fontsize=9)
    right.legend(fontsize=7, frameon=False)
    for ax in (left, right):
        ax.grid(True, axis="y", alpha=0.3)
    return figure(run_dir, "elixer_classifications", fig,
                  f"{len(rows)} detections: how many got each label, and their P(LyA) stacked by label.")


def ew_figure(run_dir: Path, rows: list[dict], colors: dict[str, str]) -> str:
    """Rest-frame equivalent width as LyA against observed wavelength, coloured by label."""
    fig = new_figure(6.4, 4.2)
    ax = fig.add_subplot()
    for lab, c in colors.items():
        these = [r for r in rows if _label(r) == lab and r["combined_eqw_rest_lya"] is not None
                 and r["wavelength_obs"] is not None and r["combined_eqw_rest_lya"] > 0]
        if these:
            ax.scatter([r["wavelength_obs"] for r in these], [r["combined_eqw_rest_lya"] for r in these],
                       s=[12 + 3 * min(r["sn"] or 0, 20) for r in these], c=c, alpha=0.85, edgecolors="white",
                       linewidths=0.4, label=f"{lab} ({len(these)})")
    ax.set_yscale("log")
    ax.set_xlabel("observed wavelength [Å]")
    ax.set_ylabel("rest-frame EW as LyA [Å]")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, frameon=False)
    ax.set_title("equivalent width and wavelength (size: S/N)", fontsize=9)
    return figure(run_dir, "elixer_ew_wavelength", fig,
                  "Rest-frame equivalent width (as LyA) against observed wavelength, coloured by label.")


def _fmt(v, f: str) -> str:
    return "-" if v is None or not np.isfinite(v) else f.format(v)


def section(run_dir) -> str:
    """The run report's ELiXer section."""
    run_dir = Path(run_dir)
    settings = ElixerSettings.model_validate(run_config.load(run_dir).settings)
    kinds = settings.report_types()
    parts = ["<h2>ELiXer classifications</h2>"]
    ledger = rundir.Ledger(run_dir / "classify")
    rows = ledger.read(columns=COLUMNS).to_pylist() if ledger.parts else []
    if rows:
        labels = sorted({_label(r) for r in rows}, key=lambda lab: -sum(_label(r) == lab for r in rows))
        colors = _colors(labels)
        parts.append(figures(classification_figure(run_dir, rows, colors), ew_figure(run_dir, rows, colors)))
    else:
        parts.append("<p>No detection classified yet (runbook 18.1 has not run).</p>")
    counts = report_counts(run_dir, kinds)
    parts += ["<h3>Reports expected and present</h3>",
              table_html(["type", "expected", "present", "whole", "missing"],
                         [[r["type"], r["expected"], r["present"], r["whole"], r["missing"]] for r in counts],
                         ["bad" if r["missing"] else "" for r in counts])]
    catalogue = run_dir / "elixer_cat.h5"
    if catalogue.is_file():
        parts.append(f"<p>Catalogue: {link('elixer_cat.h5')}</p>")
    if rows:
        table = []
        for r in sorted(rows, key=lambda r: r["detectid"]):
            reports = [link(report_path(Path("."), r["detectid"], k).as_posix(), k) for k in REPORT_TYPES
                       if report_path(run_dir, r["detectid"], k).is_file()]
            table.append([r["detectid"], _label(r), _fmt(r["plya_classification"], "{:.3f}"),
                          _fmt(r["z_best"], "{:.4f}"), _fmt(r["wavelength_obs"], "{:.2f}"),
                          _fmt(r["flux_line"], "{:.2f}"), _fmt(r["sn"], "{:.2f}"),
                          _fmt(r["combined_eqw_rest_lya"], "{:.1f}"), _fmt(r["combined_plae"], "{:.3g}"), r["flags"],
                          Markup(" ".join(reports)) if reports else "-"])
        parts += [f"<h3>Detections and their reports ({len(rows)})</h3>",
                  table_html(["detectid", "label", "P(LyA)", "z", "wavelength A", "flux 1e-17 cgs", "S/N",
                              "EW rest A", "PLAE/POII", "flags", "reports"], table)]
    return "\n".join(parts)
