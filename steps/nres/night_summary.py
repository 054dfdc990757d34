"""Runbook: "write the night summary" of the nightly job, and the checks the runbook does by hand
(``ls`` of the reduced folders, a look at the RV plots).

Per night (site, instrument, DAY-OBS): one page listing every science frame the index holds
(object, time, S/N, RV +- RVERR, template) and, for the frames that have no velocity, the step
that stopped them and why (``errors/``); the masters the run made that night (type, file, frames
stacked); and the velocities of each object against its nightly median over time.  Written as
``reduced/{site}/{instrument}/plot/{day_obs}/night-summary.pdf``; the table's row counts the
frames, the velocities and the failures.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pyarrow as pa

from astroflow.atomic import atomic_path
from astroflow.step import FanOut, Resources

SCHEMA = pa.schema([
    ("site", pa.string()), ("instrument", pa.string()), ("day_obs", pa.string()), ("n_science", pa.int32()),
    ("n_rv", pa.int32()), ("n_failed", pa.int32()), ("n_masters", pa.int32()), ("path", pa.string()),
])
SCIENCE_STEPS = ("index", "reduce_target", "extract", "classify", "rv")


def nights(ctx) -> list[dict]:
    rows = ctx.table("index", columns=["site", "instrument", "day_obs"]).to_pylist()
    return [dict(zip(("site", "instrument", "day_obs"), k)) for k in sorted({tuple(r.values()) for r in rows})]


def failures(ctx, filenames: set[str]) -> dict[str, str]:
    """The first failure (step: message) of each of ``filenames`` in the science steps."""
    out: dict[str, str] = {}
    for step in SCIENCE_STEPS:
        for e in ctx.errors(step):
            name = e["item"]  # the item id of these steps: the frame's file name
            if name in filenames and name not in out:
                out[name] = f"{step}: {e.get('message', '')}"
    return out


def night_rows(ctx, item) -> tuple[list[dict], list[dict]]:
    """The night's science frames (index rows joined with their velocities) and masters."""
    where = {k: item[k] for k in ("site", "instrument", "day_obs")}
    science = [r for r in ctx.rows("index", where=where) if r["obstype"] == "TARGET"]
    rvs = {r["filename"]: r for r in ctx.rows("rv", where={k: item[k] for k in ("site", "instrument")})}
    failed = failures(ctx, {r["filename"] for r in science} - set(rvs))
    frames = []
    for r in sorted(science, key=lambda r: r["dateobs"]):
        v = rvs.get(r["filename"], {})
        frames.append({"filename": r["filename"], "object": r["object"], "dateobs": r["dateobs"],
                       "snr": v.get("snr"), "rv": v.get("rv"), "rv_err": v.get("rv_err"),
                       "template": v.get("template"), "failure": failed.get(r["filename"], "" if v else "not reached")})
    prefix = f"reduced/{item['site']}/{item['instrument']}/"
    masters = [m for m in ctx.rows("calibrations", where={"day_obs": item["day_obs"]}) if m["path"].startswith(prefix)]
    return frames, masters


def _fmt(v, spec: str) -> str:
    return "-" if v is None or not np.isfinite(v) else format(v, spec)


def draw(path, item: dict, frames: list[dict], masters: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(8.5, 11))
    n_rv = sum(1 for f in frames if f["rv"] is not None and np.isfinite(f["rv"]))
    fig.suptitle(f"NRES {item['site']} {item['instrument']} night {item['day_obs']}: {len(frames)} science "
                 f"frames, {n_rv} velocities, {len(masters)} masters", fontsize=11)
    head = f"{'frame':<34} {'object':<12} {'time':<8} {'S/N':>6} {'RV m/s':>11} {'err':>6}  template / failure"
    lines = [head] + [
        f"{f['filename'].removesuffix('.fits.fz')[:34]:<34} {f['object'][:12]:<12} {f['dateobs'][11:19]:<8} {_fmt(f['snr'], '6.1f'):>6} "
        f"{_fmt(f['rv'], '11.1f'):>11} {_fmt(f['rv_err'], '6.1f'):>6}  {f['failure'][:60] or f['template']}"
        for f in frames[:40]]
    if len(frames) > 40:
        lines.append(f"... and {len(frames) - 40} more (RUNDIR/rv/)")
    lines += ["", "masters made this night:"] + [
        f"  {m['type']:<10} {m['filename'][:60]:<60} {m['n_frames'] or '':>3}" for m in masters[:20]]
    fig.text(0.04, 0.95, "\n".join(lines), fontsize=5.5, family="monospace", va="top")
    ax = fig.add_axes([0.1, 0.06, 0.85, 0.22])
    for obj in sorted({f["object"] for f in frames}):
        pts = [f for f in frames if f["object"] == obj and f["rv"] is not None and np.isfinite(f["rv"])]
        if not pts:
            continue
        t = [datetime.fromisoformat(f["dateobs"]) for f in pts]
        v = np.array([f["rv"] for f in pts])
        ax.errorbar(t, v - np.median(v), yerr=[f["rv_err"] for f in pts], fmt="o", ms=3, label=obj)
    ax.set_ylabel("RV - nightly median [m/s]", fontsize=8)
    ax.tick_params(labelsize=7)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=6, loc="best")
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="pdf")
    plt.close(fig)


def summarize_night(ctx, item) -> dict:
    frames, masters = night_rows(ctx, item)
    rel = f"reduced/{item['site']}/{item['instrument']}/plot/{item['day_obs']}/night-summary.pdf"
    draw(ctx.product(rel), item, frames, masters)
    n_rv = sum(1 for f in frames if f["rv"] is not None and np.isfinite(f["rv"]))
    return {**item, "n_science": len(frames), "n_rv": n_rv, "n_failed": sum(1 for f in frames if f["failure"]),
            "n_masters": len(masters), "path": rel}


night_summary = FanOut("night_summary", inputs=(*SCIENCE_STEPS, "calibrations"), items=nights,
                       process=summarize_night, key=("site", "instrument", "day_obs"), schema=SCHEMA, shard_size=1,
                       resources=Resources(cpu="1", memory="1Gi"), doc=__doc__)
