"""The run's static HTML report: status, counts, errors, and the pipeline's own section."""

from __future__ import annotations

import html
from pathlib import Path

from astroflow import config as run_config
from astroflow.atomic import write_text
from astroflow.registry import get_pipeline
from astroflow.status import collect

STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
td:first-child,th:first-child{text-align:left}.bad{background:#fdd}.ok{background:#dfd}
code{background:#f4f4f4;padding:1px 3px}
"""


def table_html(headers: list[str], rows: list[list], classes: list[str] | None = None) -> str:
    """A plain HTML table; cells are escaped unless they are already ``Markup``."""
    out = ["<table><tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in headers) + "</tr>"]
    for i, row in enumerate(rows):
        cls = f' class="{classes[i]}"' if classes and classes[i] else ""
        cells = "".join(f"<td>{c if isinstance(c, Markup) else html.escape(str(c))}</td>" for c in row)
        out.append(f"<tr{cls}>{cells}</tr>")
    return "\n".join(out + ["</table>"])


class Markup(str):
    """A string that is already HTML."""


def link(href: str, text: str) -> Markup:
    return Markup(f'<a href="{html.escape(href)}">{html.escape(text)}</a>')


def write_report(run_dir: str | Path) -> Path:
    run_dir = Path(run_dir)
    status = collect(run_dir)
    cfg = run_config.load(run_dir)
    pipeline = get_pipeline(cfg.pipeline)
    rows, classes = [], []
    for s in status["steps"]:
        rows.append([s["step"], s["doc"], s["state"], f"{s['shards_done']}/{s['shards_total']}",
                     s["items_ok"], s["items_failed"], s["items_skipped"], s["rows"], f"{s['wall_s']:.1f}",
                     f"{s['cpu_s']:.1f}", s["reason"]])
        classes.append("bad" if s["items_failed"] or s["state"] in ("partial", "planned", "failed", "stale") else
                       "ok" if s["state"] == "done" else "")
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>astroflow {cfg.pipeline} run</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>astroflow {html.escape(cfg.pipeline)} run</h1>",
        f"<p>Run directory <code>{html.escape(str(run_dir))}</code>, code {html.escape(cfg.code_version)}, "
        f"{'complete' if status['complete'] else 'incomplete'}.</p>",
        "<h2>Steps</h2>",
        table_html(["step", "runbook step", "state", "shards", "ok", "failed", "skipped", "rows", "unit wall s",
                    "CPU s", "stale or failed because"], rows, classes),
    ]
    errors = [[s["step"], e["item"], e["error_type"], e["message"], e["file"] or ""]
              for s in status["steps"] for e in s["errors"]]
    if errors:
        parts += ["<h2>First errors</h2>", table_html(["step", "item", "error", "message", "file"], errors)]
    if pipeline.report is not None:
        parts.append(pipeline.report(run_dir))
    parts.append("</body></html>")
    return write_text(run_dir / "report.html", "\n".join(parts))
