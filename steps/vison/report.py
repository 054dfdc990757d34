"""vison's section of the run's HTML report: per session and test, each CCD and quadrant's
offset, RON, gain, dark current and raised flags with their reasons (the compliance tables of vison's Task reports),
then the Task's own compact tables where it wrote them: gain per wavelength (PTC02WAVE), maximum non-linearity
(NL02), PRNU per fluence (FLAT01), injection threshold and notch (CHINJ01), traps (TP01), defects per CCD and kind
(DARK01, FLAT01, COSMETICS00).  The per-Task PDF and HTML reports with figures are still to come."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pyarrow.dataset as ds

from astroflow.report import table_html


def _rows(folder: Path) -> list[dict]:
    if not folder.is_dir() or not any(folder.glob("*.parquet")):
        return []
    return ds.dataset(folder, format="parquet").to_table().to_pylist()


def _fmt(value, spec: str) -> str:
    return "-" if value is None or not np.isfinite(value) else format(value, spec)


def _median(rows: list[dict], column: str) -> float:
    values = [r[column] for r in rows if r[column] is not None and np.isfinite(r[column])]
    return float(np.median(values)) if values else float("nan")


def _pivot(rows: list[dict], column: str, value: str, spec: str, unit: str, caption: str) -> list[str]:
    """One row per CCD and quadrant, one column per value of ``column`` (a wavelength, a fluence)."""
    keys = sorted({r[column] for r in rows}, key=lambda v: (v is None, v))
    cells: dict[tuple, dict] = {}
    for r in rows:
        cells.setdefault((r["ccd"], r["quadrant"]), {})[r[column]] = r[value]
    return [table_html(["CCD", "Q", *(f"{k:g} {unit}" if k is not None else "?" for k in keys)],
                       [[c, q, *(_fmt(v.get(k), spec) for k in keys)] for (c, q), v in sorted(cells.items())],
                       caption=caption)]


def task_tables(task_dir: Path) -> list[str]:
    """The compact tables of the Tasks' own products in ``task_dir`` (those it holds)."""
    out = []
    gain = [r for r in _rows(task_dir / "gain") if "wave_nm" in r]
    if gain:
        out += _pivot(gain, "wave_nm", "gain_e_per_adu", ".4f", "nm", "gain per wavelength [e-/ADU] (PTC02WAVE)")
    nl = _rows(task_dir / "nonlinearity")
    if nl:
        out.append(table_html(["CCD", "Q", "max NL [%]"], [[r["ccd"], r["quadrant"], _fmt(r["max_nl_pct"], ".3f")]
                              for r in sorted(nl, key=lambda r: (r["ccd"], r["quadrant"]))],
                              caption="maximum non-linearity (NL02)"))
    prnu = _rows(task_dir / "prnu")
    if prnu:
        out += _pivot(prnu, "fluence", "prnu_pct", ".3f", "%", "PRNU [%] per fluence (% of the full well; FLAT01)")
    chinj = _rows(task_dir / "chinj")
    if chinj:
        out.append(table_html(
            ["CCD", "Q", "drain delay", "threshold [V]", "± [V]", "slope [ADU/V]", "notch [ADU]"],
            [[r["ccd"], r["quadrant"], _fmt(r["id_dly"], "g"), _fmt(r["threshold_v"], ".3f"),
              _fmt(r["threshold_err_v"], ".3f"), _fmt(r["slope_adu_per_v"], ".1f"), _fmt(r["notch_adu"], ".1f")]
             for r in sorted(chinj, key=lambda r: (r["ccd"], r["quadrant"], r["id_dly"]))],
            caption="charge injection: threshold and notch (CHINJ01)"))
    traps = _rows(task_dir / "traps")
    if traps:
        by: dict[tuple, list[dict]] = {}
        for r in traps:
            by.setdefault((r["ccd"], r["quadrant"]), []).append(r)
        out.append(table_html(["CCD", "Q", "traps", "median tau", "median Pc"],
                              [[c, q, len(rs), _fmt(_median(rs, "tau"), ".4g"),
                                _fmt(_median(rs, "pc"), ".3g")]
                               for (c, q), rs in sorted(by.items())], caption="traps (TP01)"))
    defects = _rows(task_dir / "defects")
    if defects:
        kinds = sorted({r["kind"] for r in defects})
        counts: dict[int, dict[str, int]] = {}
        for r in defects:
            counts.setdefault(r["ccd"], {}).setdefault(r["kind"], 0)
            counts[r["ccd"]][r["kind"]] += 1
        out.append(table_html(["CCD", *kinds], [[c, *(n.get(k, 0) for k in kinds)] for c, n in sorted(counts.items())],
                              caption="defects per CCD and kind"))
    return out


def run_report_section(run_dir: str | Path) -> str:
    run_dir = Path(run_dir)
    parts = ["<h2>vison Tasks</h2>"]
    for flags_dir in sorted(run_dir.glob("*/*/flags")):
        task_dir = flags_dir.parent
        session, test = task_dir.parent.name, task_dir.name
        ron = {(r["ccd"], r["quadrant"]): r for r in _rows(task_dir / "ron")}
        gain = {(r["ccd"], r["quadrant"]): r["gain_e_per_adu"] for r in _rows(task_dir / "gain")
                if "wave_nm" not in r}  # PTC02WAVE's gains are per wavelength: task_tables
        dark = {(r["ccd"], r["quadrant"]): r["dark_adu_per_s"] for r in _rows(task_dir / "dark")}
        offsets: dict[tuple, list[float]] = {}
        for r in _rows(task_dir / "offsets"):
            if r["region"] == "prescan":
                offsets.setdefault((r["ccd"], r["quadrant"]), []).append(r["offset_adu"])
        lines = [f"<h3>{html.escape(session)} / {html.escape(test)}</h3>", "<table border=1 cellpadding=3>",
                 "<tr><th>CCD</th><th>Q</th><th>prescan offset [ADU]</th><th>RON [ADU]</th><th>frames</th>"
                 "<th>gain [e-/ADU]</th><th>dark [ADU/s]</th>"
                 "<th>flags</th><th>reasons</th></tr>"]
        for f in sorted(_rows(flags_dir), key=lambda r: (r["ccd"], r["quadrant"])):
            k = (f["ccd"], f["quadrant"])
            off = f"{np.mean(offsets[k]):.2f}" if k in offsets else "-"
            r = ron.get(k)
            rn = f"{r['ron_adu']:.3f} ± {r['ron_err_adu']:.3f}" if r else "-"
            g, d = gain.get(k), dark.get(k)
            lines.append(f"<tr><td>{f['ccd']}</td><td>{f['quadrant']}</td><td>{off}</td><td>{rn}</td>"
                         f"<td>{r['n_frames'] if r else 0}</td><td>{'-' if g is None else f'{g:.4f}'}</td>"
                         f"<td>{'-' if d is None else f'{d:.3g}'}</td>"
                         f"<td>{html.escape(', '.join(f['flag_names']) or 'none')}"
                         f"</td><td>{'<br>'.join(html.escape(x) for x in f['reasons'])}</td></tr>")
        lines.append("</table>")
        parts += lines + task_tables(task_dir)
    return "\n".join(parts)
