"""The TEC section of the run report: the sector's TCEs by Tier, in figures and tables.

Two figures of the sector as the rank step (runbook step 19) left it: the period-depth plane of
every TCE (DV's TPS period and all-transit fit depth, from the gather step) and the histogram of
the TPS MES, both coloured by Tier (and "not ranked" for the TCEs the triage or a failed fit
left out); then one table per Tier, best RANK first, each TCE linked to its TEC report PDF
(step 20), its TIC's TEV bundle (step 21) and its ExoFOP-TESS page.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from astroflow import rundir
from astroflow.report import (EXOFOP_TESS, axis_label, figure, figures, link, new_figure,
                              table_html)

TIER_COLORS = {1: "#1f8a4c", 2: "#2f5bd3", 3: "#d97706", None: "#9aa4b2"}
TIER_NAMES = {1: "Tier 1", 2: "Tier 2", 3: "Tier 3", None: "not ranked"}
GATHERED = ["tic", "planet_number", "tce_period", "at_depth", "mes"]


def _read(run_dir: Path, step: str, columns: list[str]) -> pa.Table | None:
    ledger = rundir.Ledger(run_dir / step)
    return ledger.read(columns=columns) if ledger.parts else None


def period_depth_figure(run_dir: Path, tces: pa.Table, tier: dict) -> str:
    """Period against depth (log-log) of every TCE of the sector, coloured by Tier."""
    fig = new_figure(6.4, 4.4)
    ax = fig.add_subplot()
    keys = list(zip(tces["tic"].to_pylist(), tces["planet_number"].to_pylist()))
    period = tces["tce_period"].to_numpy(zero_copy_only=False).astype(float)
    depth = tces["at_depth"].to_numpy(zero_copy_only=False).astype(float)
    for t in (None, 3, 2, 1):  # the best on top
        sel = np.array([tier.get(k) == t for k in keys]) & (period > 0) & (depth > 0)
        if sel.any():
            ax.scatter(period[sel], depth[sel], s=22 if t else 12, c=TIER_COLORS[t], alpha=0.85 if t else 0.6,
                       edgecolors="white", linewidths=0.4, label=f"{TIER_NAMES[t]} ({int(sel.sum())})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(axis_label(tces, "tce_period", "period (TPS)"))
    ax.set_ylabel(axis_label(tces, "at_depth", "transit depth (DV fit)"))
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="best", fontsize=8, frameon=False)
    ax.set_title(f"{len(keys)} TCEs: period and depth", fontsize=10)
    return figure(run_dir, "tec_period_depth", fig, "Period-depth plane of the sector's TCEs, coloured by Tier "
                  "(grey: not ranked).")


def mes_figure(run_dir: Path, tces: pa.Table, tier: dict) -> str:
    """Histogram of the TPS MES (log bins), stacked by Tier."""
    keys = list(zip(tces["tic"].to_pylist(), tces["planet_number"].to_pylist()))
    mes = tces["mes"].to_numpy(zero_copy_only=False).astype(float)
    good = np.isfinite(mes) & (mes > 0)
    fig = new_figure(6.4, 4.4)
    ax = fig.add_subplot()
    if good.any():
        lo, hi = np.log10(mes[good].min()), np.log10(mes[good].max())
        bins = np.logspace(lo, hi if hi > lo else lo + 0.1, 25)
        order = (1, 2, 3, None)
        data = [mes[good & np.array([tier.get(k) == t for k in keys])] for t in order]
        ax.hist(data, bins=bins, stacked=True, color=[TIER_COLORS[t] for t in order],
                label=[f"{TIER_NAMES[t]} ({len(d)})" for t, d in zip(order, data)], edgecolor="white", linewidth=0.4)
        ax.set_xscale("log")
    ax.set_xlabel(axis_label(tces, "mes", "MES (TPS)"))
    ax.set_ylabel("TCEs")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(loc="best", fontsize=8, frameon=False)
    ax.set_title("Multiple-event statistic by Tier", fontsize=10)
    return figure(run_dir, "tec_mes_histogram", fig, "MES of the sector's TCEs, stacked by Tier.")


def section(run_dir) -> str:
    run_dir = Path(run_dir)
    ranking = run_dir / "ranking.parquet"
    if not ranking.is_file():
        return "<h2>TEC ranking</h2><p>Not ranked yet (step 19 has not run).</p>"
    import pyarrow.parquet as pq

    rows = pq.read_table(ranking).to_pylist()
    tier = {(r["tic"], r["planet_number"]): r["tier"] for r in rows}
    tces = _read(run_dir, "gather", GATHERED)
    facts = {}
    if tces is not None:
        facts = {(r["tic"], r["planet_number"]): r for r in tces.to_pylist()}
    reports = _read(run_dir, "reports", ["tic", "planet_number", "path"])
    pdfs = {(r["tic"], r["planet_number"]): r["path"] for r in reports.to_pylist()} if reports is not None else {}
    tev = _read(run_dir, "merge4tev", ["tic", "path"])
    tevs = {r["tic"]: r["path"] for r in tev.to_pylist()} if tev is not None else {}

    parts = ["<h2>TEC ranking</h2>",
             f"<p>{len(rows)} TCEs; {sum(r['tier'] is not None for r in rows)} ranked "
             f"(triage pass, valid DV and trapezoid fits, insolation &gt; 0). Each TIC links to its ExoFOP-TESS "
             f"page, each TCE to its TEC report.</p>"]
    if tces is not None and tces.num_rows:
        parts.append(figures(period_depth_figure(run_dir, tces, tier), mes_figure(run_dir, tces, tier)))
    for t in (1, 2, 3):
        these = sorted((r for r in rows if r["tier"] == t), key=lambda r: -r["rank"])
        table = []
        for r in these:
            key = (r["tic"], r["planet_number"])
            f = facts.get(key, {})
            table.append([
                link(EXOFOP_TESS.format(tic=r["tic"]), str(r["tic"]), title="ExoFOP-TESS"), r["planet_number"],
                f"{r['rank']:.4f}", r["known_flag"], " ".join(r["flags"]) or "-",
                _num(f.get("tce_period"), "{:.4f}"), _num(f.get("at_depth"), "{:.0f}"), _num(f.get("mes"), "{:.1f}"),
                link(pdfs[key], "PDF") if key in pdfs else "-",
                link(tevs[r["tic"]], "TEV") if r["tic"] in tevs else "-"])
        parts.append(f'<h3 id="tier-{t}">Tier {t} ({len(these)})</h3>')
        parts.append(table_html(["TIC", "PN", "RANK", "KNOWN", "flags", "period d", "depth ppm", "MES", "report",
                                 "TEV"], table) if table else "<p>none</p>")
    reasons: dict = {}
    for r in rows:
        if r["tier"] is None:
            reasons[r["triage_reason"]] = reasons.get(r["triage_reason"], 0) + 1
    if reasons:
        parts.append("<h3>Not ranked</h3>")
        parts.append(table_html(["reason", "TCEs"], sorted(reasons.items(), key=lambda kv: -kv[1])))
    return "\n".join(parts)


def _num(value, fmt: str) -> str:
    return "-" if value is None or not np.isfinite(value) else fmt.format(value)
