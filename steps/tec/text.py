"""Plain-text product tables in the original's style (space-separated, one header line)."""

from __future__ import annotations

import math
from pathlib import Path

from astroflow.atomic import write_text


def _fmt(v) -> str:
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.6g}"
    if isinstance(v, (list, tuple)):
        return ",".join(_fmt(x) for x in v) or "-"
    text = str(v)
    return text.replace(" ", "_") if text else "-"


def write_rows(path: Path, rows: list[dict], columns: list[str] | None = None, sep: str = " ") -> Path:
    columns = columns or (list(rows[0]) if rows else [])
    lines = [sep.join(columns)] + [sep.join(_fmt(r[c]) for c in columns) for r in rows]
    return write_text(path, "\n".join(lines) + "\n")
