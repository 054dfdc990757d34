"""BIAS0X sub-task ``prep`` (vison ``prep_data``): the offset each frame's quadrants are corrected by.

BIAS0X subtracts one offset per quadrant, the median of the trimmed prescan (``offsetkwargs``:
``method='median'``, ``scan='pre'``, ``trimscan=[25, 5]``), taken here from the check's
prescan rows; ``preprocessing.offset_method = "row"`` subtracts one median per row instead
(vison's default for other Tasks; on a bias it adds each row median's noise and inflates the read
noise by 5-10 %), read from the frames.  vison stored the offset-subtracted frames as pickles
(1.2 GB for a BIAS01); here the subtraction is kept as the offsets to subtract, and the later
sub-tasks apply them to the raw counts as they read them (:func:`steps.vison.science.bias.prepared_image`),
the same numbers without the copy.
"""

from __future__ import annotations

import pyarrow as pa

from astroflow.step import FanOut
from steps.vison import elvis
from steps.vison.bias_items import KEY, bias_items
from steps.vison.science.bias import row_offsets

SCHEMA = pa.schema([
    ("test", pa.string()), ("obsid", pa.int64()), ("ccd", pa.int8()), ("quadrant", pa.string()),
    ("offset_adu", pa.float64()), ("method", pa.string()), ("row_offsets_adu", pa.list_(pa.float64())),
    ("file", pa.string()),
])


def prep_ccd(ctx, item) -> list[dict]:
    pre = ctx.settings.preprocessing
    checked = ctx.lookup("bias_check", test=item["test"], ccd=item["ccd"]).to_pylist()
    rows = []
    for r in sorted(checked, key=lambda r: (r["obsid"], r["quadrant"] or "")):
        if r["problem"] is not None or r["region"] != "prescan":
            continue
        row = {"test": item["test"], "obsid": r["obsid"], "ccd": item["ccd"], "quadrant": r["quadrant"],
               "offset_adu": r["offset_adu"], "method": pre.offset_method, "row_offsets_adu": None, "file": r["file"]}
        rows.append(row)
    if pre.offset_method == "row":
        for obsid in sorted({r["obsid"] for r in rows}):
            mine = [r for r in rows if r["obsid"] == obsid]
            frame = elvis.read_frame(ctx.uses(mine[0]["file"]))
            for r in mine:
                r["row_offsets_adu"] = row_offsets(frame.region(r["quadrant"], "prescan"),
                                                   tuple(pre.trim_prescan)).tolist()
    return rows


bias_prep = FanOut("bias_prep", inputs=("bias_check",), items=bias_items, process=prep_ccd, key=KEY, schema=SCHEMA,
                   shard_size=1, doc=__doc__)
