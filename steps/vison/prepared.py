"""vison's ``prep_data`` for every Task, and the prepared (offset-subtracted) frames it stands for.

A Task's ``prep`` (:func:`prep_step`) keeps the offset each frame's quadrants are corrected by:
the check's trimmed prescan median per quadrant (``offsetkwargs``: ``method='median'``,
``scan='pre'``, ``trimscan=[25, 5]``), or one median per row (``preprocessing.offset_method =
"row"``, read from the frames).  vison stored the offset-subtracted frames as pickles (1.2 GB
for a BIAS01); here the later sub-tasks apply the offsets to the raw counts as they read them
(:func:`prepared_frames`, :func:`stack_quadrants`): the same numbers without the copy.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import numpy as np
import pyarrow as pa

from astroflow.errors import ItemError
from astroflow.step import FanOut
from steps.vison import elvis, tasks
from steps.vison.science.bias import prepared_image, row_offsets
from steps.vison.subtasks import KEY, task_items

SCHEMA = pa.schema([
    ("test", pa.string()), ("obsid", pa.int64()), ("ccd", pa.int8()), ("quadrant", pa.string()),
    ("offset_adu", pa.float64()), ("method", pa.string()), ("row_offsets_adu", pa.list_(pa.float64())),
    ("file", pa.string()),
])


def prep_rows(ctx, item, task: tasks.Task) -> list[dict]:
    """The prep rows of one (test, CCD) item from the Task's check rows (prescan per frame and quadrant)."""
    pre = ctx.settings.preprocessing
    checked = ctx.lookup(task.step("check"), test=item["test"], ccd=item["ccd"]).to_pylist()
    rows = []
    for r in sorted(checked, key=lambda r: (r["obsid"], r["quadrant"] or "")):
        if r["problem"] is not None or r["region"] != "prescan":
            continue
        rows.append({"test": item["test"], "obsid": r["obsid"], "ccd": item["ccd"], "quadrant": r["quadrant"],
                     "offset_adu": r["offset_adu"], "method": pre.offset_method, "row_offsets_adu": None,
                     "file": r["file"]})
    if pre.offset_method == "row":
        for obsid in sorted({r["obsid"] for r in rows}):
            mine = [r for r in rows if r["obsid"] == obsid]
            frame = elvis.read_frame(ctx.uses(mine[0]["file"]))
            for r in mine:
                r["row_offsets_adu"] = row_offsets(frame.region(r["quadrant"], "prescan"),
                                                   tuple(pre.trim_prescan)).tolist()
    return rows


def prep_step(task: tasks.Task, doc: str) -> FanOut:
    """The Task's ``{prefix}_prep`` step (fan-out by test and CCD) over its check's offsets."""
    return FanOut(task.step("prep"), inputs=("inventory", task.step("check")), items=task_items(task),
                  process=lambda ctx, item: prep_rows(ctx, item, task), key=KEY, schema=SCHEMA, shard_size=1,
                  doc=doc)


def prep_by_frame(ctx, item, task: tasks.Task) -> dict[int, dict[str, dict]]:
    """ObsID -> quadrant -> prep row of one (test, CCD) item."""
    out: dict[int, dict[str, dict]] = {}
    for r in ctx.lookup(task.step("prep"), test=item["test"], ccd=item["ccd"]).to_pylist():
        out.setdefault(r["obsid"], {})[r["quadrant"]] = r
    return dict(sorted(out.items()))


def offset_of(row: dict) -> float | np.ndarray:
    return np.asarray(row["row_offsets_adu"]) if row["row_offsets_adu"] is not None else row["offset_adu"]


def prepared_frames(ctx, item, task: tasks.Task,
                    region: str = "image") -> Iterator[tuple[int, elvis.Frame, dict[str, np.ndarray]]]:
    """(ObsID, frame, quadrant -> prepared region) for each prepared frame of the item."""
    for obsid, quads in prep_by_frame(ctx, item, task).items():
        frame = elvis.read_frame(ctx.uses(next(iter(quads.values()))["file"]))
        out = {}
        for q, row in quads.items():
            if region == "quadrant":
                raw = frame.quadrant(q)
                off = offset_of(row)
                if np.ndim(off):  # per-row offsets span the image rows; the parallel overscan takes the last
                    off = np.concatenate([off, np.full(raw.shape[0] - off.size, off[-1] if off.size else 0.0)])
                out[q] = prepared_image(raw, off)
            else:
                out[q] = prepared_image(frame.region(q, region), offset_of(row))
        yield obsid, frame, out


class Stack:
    """The prepared whole quadrants of an item's frames, one (frames, rows, columns) float32 array
    per quadrant (filled in place), with the frames' ObsIDs, dates, exposure times, geometry and
    the last header."""

    def __init__(self, ctx, item, task: tasks.Task):
        n = len(prep_by_frame(ctx, item, task))
        self.quadrants: dict[str, np.ndarray] = {}
        self.obsids: list[int] = []
        self.dates: list[dt.datetime] = []
        self.exptimes: list[float] = []
        self.geometry: elvis.Geometry | None = None
        self.header = None
        for i, (obsid, frame, quads) in enumerate(prepared_frames(ctx, item, task, "quadrant")):
            if self.geometry is not None and frame.geometry != self.geometry:
                raise ItemError(f"ObsID {obsid} has another geometry ({frame.geometry}) than the first frame "
                                f"({self.geometry})", frame.path)
            self.geometry, self.header = frame.geometry, frame.header
            self.obsids.append(obsid)
            self.dates.append(frame.date)
            self.exptimes.append(float(frame.header.get("EXPTIME", 0.0)))
            for q in elvis.QUADRANTS:
                if q not in self.quadrants:
                    self.quadrants[q] = np.empty((n, *quads[q].shape), dtype=np.float32)
                self.quadrants[q][i] = quads[q]

    @property
    def when(self) -> dt.datetime:
        """The mean time of the frames (UTC), the product's observation date."""
        stamps = [d.replace(tzinfo=dt.timezone.utc).timestamp() for d in self.dates]
        return dt.datetime.fromtimestamp(float(np.mean(stamps)), tz=dt.timezone.utc)
