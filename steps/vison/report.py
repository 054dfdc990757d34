"""vison's section of the run's HTML report: per session and test, each CCD and quadrant's
offset, RON, gain, dark current and raised flags with their reasons (the compliance tables of vison's Task reports;
the per-Task PDF and HTML reports with figures are still to come)."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pyarrow.dataset as ds


def _rows(folder: Path) -> list[dict]:
    if not folder.is_dir() or not any(folder.glob("*.parquet")):
        return []
    return ds.dataset(folder, format="parquet").to_table().to_pylist()


def run_report_section(run_dir: str | Path) -> str:
    run_dir = Path(run_dir)
    parts = ["<h2>vison Tasks</h2>"]
    for flags_dir in sorted(run_dir.glob("*/*/flags")):
        task_dir = flags_dir.parent
        session, test = task_dir.parent.name, task_dir.name
        ron = {(r["ccd"], r["quadrant"]): r for r in _rows(task_dir / "ron")}
        gain = {(r["ccd"], r["quadrant"]): r["gain_e_per_adu"] for r in _rows(task_dir / "gain")}
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
        parts += lines
    return "\n".join(parts)
