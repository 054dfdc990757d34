"""Runbook: "Once all the bias files are acquired ..." / "Once all the calibration files are
acquired ...": the night's afternoon sets against what was announced and what is configured.

One item per set the night should have (a bias set at each ADC speed the IFU frames were read
at, the dome flats, the Hg, Cd and Xe arcs), from the frames ``night`` classified: how many are
present, how many ``Calib: KIND n of N`` announced, the configured ideal and minimum, and its
state (complete; waiting: incomplete before the night's deadline; partial: fewer than
announced after it, the present ones used; too few).  A set below
its minimum fails here with the named error :class:`~steps.sedm.sets.TooFewFrames`, which
``astroflow status`` shows, while the rest of the night goes on: the step is a leaf, so no step
waits on it (the master bias skips such a set, and its frames take an earlier night's master).
"""

from __future__ import annotations

import pyarrow as pa

from astroflow.step import FanOut
from steps.sedm import sets

SCHEMA = pa.schema([
    ("set", pa.string()), ("present", pa.int32()), ("announced", pa.int32()), ("target", pa.int32()),
    ("minimum", pa.int32()), ("status", pa.string()), ("frames", pa.list_(pa.string())),
])
COLUMNS = ["filename", "camera", "kind", "set", "adcspeed", "set_size"]


def night_sets(ctx) -> list[dict]:
    rows = ctx.table("night", columns=COLUMNS).to_pylist()
    return [{"set": name, "frames": sorted(r["filename"] for r in frames)}
            for name, frames in sets.night_sets(rows).items()]


def check_set(ctx, item: dict) -> dict:
    rows = ctx.rows("night", columns=COLUMNS, where={"filename": item["frames"]}) if item["frames"] else []
    st = sets.night_state(ctx, item["set"], rows)
    if st.status == "too_few":
        raise sets.TooFewFrames(f"{st.message()}: the set is not used tonight")
    return {"set": st.set, "present": st.present, "announced": st.announced, "target": st.target,
            "minimum": st.minimum, "status": st.status, "frames": item["frames"]}


calibration_sets = FanOut("calibration_sets", inputs=("night",), items=night_sets, process=check_set, key=("set",),
                          schema=SCHEMA, shard_size=10, doc=__doc__)
