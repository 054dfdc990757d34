"""PTC0X sub-task ``extract_PTC`` (vison ``extract_PTC``): the variance of flat pairs against their signal.

The test's frames on one CCD (fan-out by test and CCD) are grouped by exposure time (one
fluence level each) and paired in ObsID order, (1st, 2nd), (3rd, 4th)... (vison's
``ObsID_pair``); a pair whose fluences differ by more than 10 % is skipped and recorded (vison:
"pairs with unequal fluence skipped").  For each pair and quadrant, both frames minus their
prescan offsets (from check), per 300 x 300-pixel tile of the image area: the first frame's
median and ``std(difference)^2 / 2`` (:func:`steps.vison.science.ptc.pair_points`); and the
read-noise variance the pair shows in its serial prescan (the same estimator), which meta takes
as the PTC's constant.  Each frame is read once.  The same loop serves PTC02WAVE per
wavelength (:func:`extract_item`'s ``group``; PTC0X is the one-group case).
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pyarrow as pa
from pydantic import Field

from astroflow.step import FanOut, Resources, StepParams
from steps.vison import elvis, tasks
from steps.vison.subtasks import KEY, task_items
from steps.vison.science.bias import prepared_image, trim_columns
from steps.vison.science.ptc import TILE, pair_points, prescan_variance

MAX_FLUENCE_MISMATCH = 0.1


class ExtractParams(StepParams):
    tile: int = Field(TILE, ge=8, description="pixels per side of the tiles (vison's 300 x 300 windows)")


SCHEMA = pa.schema([
    ("test", pa.string()), ("ccd", pa.int8()), ("quadrant", pa.string()), ("obsid", pa.int64()),
    ("obsid_pair", pa.int64()), ("exptime", pa.float64()), ("tile", pa.int32()), ("signal_adu", pa.float64()),
    ("variance_adu2", pa.float64()), ("n_pixels", pa.int64()), ("ron2_adu2", pa.float64()),
    ("skipped", pa.string()),
])


def pairs(checked: list[dict]) -> list[tuple[int, int, float]]:
    """(ObsID, its pair's ObsID, exposure time) of each pair of frames at one exposure time."""
    levels: dict[float, set[int]] = defaultdict(set)
    for r in checked:
        levels[round(r["exptime"], 3)].add(r["obsid"])
    out = []
    for exptime, obsids in sorted(levels.items()):
        ordered = sorted(obsids)
        out += [(a, b, exptime) for a, b in zip(ordered[0::2], ordered[1::2])]
    return out


def grouped(rows: list[dict], key: str | None) -> dict:
    """The rows by ``key``'s value (PTC02WAVE: ``wave_nm``, None first); all in one group where ``key`` is None."""
    if key is None:
        return {None: rows}
    out: dict = defaultdict(list)
    for r in rows:
        out[r[key]].append(r)
    return dict(sorted(out.items(), key=lambda kv: -1 if kv[0] is None else kv[0]))


def extract_pairs(ctx, base: dict, checked: list[dict]) -> list[dict]:
    """The pair points of the frames ``checked`` (one group, e.g. one wavelength), each row under ``base``."""
    trim = tuple(ctx.settings.preprocessing.trim_prescan)
    by_frame: dict[int, dict[str, dict]] = defaultdict(dict)
    for r in checked:
        by_frame[r["obsid"]][r["quadrant"]] = r
    rows = []
    for a, b, exptime in pairs(checked):
        fa, fb = (np.mean([r["fluence_adu"] for r in by_frame[o].values()]) for o in (a, b))
        mismatch = abs(fa - fb) / max(abs(fa + fb) / 2, 1e-9)
        if mismatch > MAX_FLUENCE_MISMATCH:
            rows += [{**base, "quadrant": q, "obsid": a, "obsid_pair": b, "exptime": exptime,
                      "skipped": f"fluences {fa:.0f} and {fb:.0f} ADU differ by {mismatch:.0%}"} for q in by_frame[a]]
            continue
        first, second = (elvis.read_frame(ctx.uses(next(iter(by_frame[o].values()))["file"])) for o in (a, b))
        for q in elvis.QUADRANTS:
            if q not in by_frame[a] or q not in by_frame[b]:
                continue
            oa, ob = by_frame[a][q]["offset_adu"], by_frame[b][q]["offset_adu"]
            ron2 = prescan_variance(prepared_image(trim_columns(first.region(q, "prescan"), trim), oa),
                                    prepared_image(trim_columns(second.region(q, "prescan"), trim), ob))
            points = pair_points(prepared_image(first.region(q, "image"), oa),
                                 prepared_image(second.region(q, "image"), ob), ctx.params.tile)
            rows += [{**base, "quadrant": q, "obsid": a, "obsid_pair": b, "exptime": exptime, **p,
                      "ron2_adu2": ron2, "skipped": None} for p in points]
    return rows


def extract_item(ctx, item, task: tasks.Task, group: str | None = None) -> list[dict]:
    """A PTC Task's extraction on one (test, CCD) item: its check's readable frames, per ``group``
    value apart (PTC0X: one group; PTC02WAVE: per ``wave_nm``), paired and measured."""
    checked = [r for r in ctx.lookup(task.step("check"), test=item["test"], ccd=item["ccd"]).to_pylist()
               if r["problem"] is None]
    rows = []
    for value, frames in grouped(checked, group).items():
        base = {"test": item["test"], "ccd": item["ccd"], **({group: value} if group else {})}
        rows += extract_pairs(ctx, base, frames)
    return rows


def extract_ccd(ctx, item) -> list[dict]:
    return extract_item(ctx, item, tasks.PTC0X)


ptc_extract = FanOut("ptc_extract", inputs=("inventory", "ptc_check"), params=ExtractParams, items=task_items(tasks.PTC0X),
                     process=extract_ccd, key=KEY, schema=SCHEMA, shard_size=1,
                     resources=Resources(cpu="1", memory="1Gi"), doc=__doc__)
