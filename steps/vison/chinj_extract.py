"""CHINJ01 sub-task ``extract`` (vison ``extract_data``/``basic_analysis``): the charge injected in every frame.

For each frame of the test on one CCD (fan-out by test and CCD; the frames the check read) and
each quadrant: the image area minus the check's prescan offset, its injected rows from the
commanded pattern (``CHINJ_ON`` rows on, ``CHINJ_OF`` off, from ``VSTART``), and the injection
(:func:`steps.vison.science.chinj.injection_level`: the injected rows' clipped mean minus the
non-injected rows', its standard error, the injection noise), under the frame's IG1 and drain
delay.  Each frame is read once.
"""

from __future__ import annotations

from collections import defaultdict

import pyarrow as pa

from astroflow.errors import ItemError
from astroflow.step import FanOut, Resources
from steps.vison import elvis, tasks
from steps.vison.science.bias import prepared_image
from steps.vison.science.chinj import injected_rows, injection_level
from steps.vison.subtasks import KEY, task_items


SCHEMA = pa.schema([
    ("test", pa.string()), ("obsid", pa.int64()), ("ccd", pa.int8()), ("quadrant", pa.string()),
    ("ig1_v", pa.float64()), ("id_dly", pa.float64()), ("chinj_on", pa.int32()), ("chinj_off", pa.int32()),
    ("injection_adu", pa.float64()), ("injection_err_adu", pa.float64()), ("noise_adu", pa.float64()),
    ("level_on_adu", pa.float64()), ("level_off_adu", pa.float64()), ("n_on", pa.int64()), ("n_off", pa.int64()),
])


def checked_frames(ctx, item, task: tasks.Task) -> dict[int, dict[str, dict]]:
    """ObsID -> quadrant -> the check's prescan row (offset and the frame's commands), of the
    frames the check read."""
    out: dict[int, dict[str, dict]] = defaultdict(dict)
    for r in ctx.lookup(task.step("check"), test=item["test"], ccd=item["ccd"]).to_pylist():
        if r["problem"] is None and r["region"] == "prescan":
            out[r["obsid"]][r["quadrant"]] = r
    return dict(sorted(out.items()))


def pattern(row: dict, n_rows: int) -> tuple[int, int]:
    """(rows on, rows off) of a frame's injection; all rows where the header gives no pattern."""
    on = n_rows if row["chinj_on"] is None else int(row["chinj_on"])
    off = 0 if row["chinj_off"] is None else int(row["chinj_off"])
    return on, off


def extract_ccd(ctx, item) -> list[dict]:
    rows = []
    for obsid, quads in checked_frames(ctx, item, tasks.CHINJ01).items():
        first = next(iter(quads.values()))
        frame = elvis.read_frame(ctx.uses(first["file"]))
        for q, r in quads.items():
            if r["ig1_v"] is None:
                raise ItemError(f"ObsID {obsid}: no IG1_{item['ccd']}_{'BT'[q in 'GH']} in the header", frame.path)
            image = prepared_image(frame.region(q, "image"), r["offset_adu"])
            on, off = pattern(r, image.shape[0])
            mask = injected_rows(image.shape[0], on, off, int(r["vstart"] or 0))
            rows.append({"test": item["test"], "obsid": obsid, "ccd": item["ccd"], "quadrant": q,
                         "ig1_v": r["ig1_v"], "id_dly": r["id_dly"], "chinj_on": on, "chinj_off": off,
                         **injection_level(image, mask)})
    return rows


chinj_extract = FanOut("chinj_extract", inputs=("inventory", "chinj_check"), items=task_items(tasks.CHINJ01),
                       process=extract_ccd, key=KEY, schema=SCHEMA, shard_size=1,
                       resources=Resources(cpu="1", memory="1Gi"), doc=__doc__)
