"""PTC02WAVE sub-task ``check`` (vison ``check_data`` of PTC02): offset, fluence and wavelength of every flat.

PTC0X's check (:func:`steps.vison.ptc_check.frame_fluences`: each quadrant's prescan offset and
std, the image's level above it, lost and saturated pixels) over the frames of a PTC02WAVE test
on one CCD (fan-out by test and CCD), each frame also with its wavelength: the filter-wheel
position its header's ``WAVE`` gives (the EXP_LOG's ``wave``) in nm, from vison's default filter
wheel (:data:`steps.vison.elvis.FILTER_WHEEL_NM`, ``vison/ogse/ogse.py``: F1 590, F2 640, F3 730, F4 800,
F5 880, F6 no filter); a specific
test name (``PTC02_730``) whose frames are all at one position names the wavelength itself.  One
test may hold several wavelengths (the simulator's ``PTC02WAVE``); extract and meta analyse each
apart.  Writes ``RUN/<session>/<TEST>/fluences/``.
"""

from __future__ import annotations

import re

import pyarrow as pa

from astroflow.step import FanOut, Resources
from steps.vison import elvis, tasks
from steps.vison.ptc_check import SCHEMA as PTC_SCHEMA
from steps.vison.ptc_check import frame_fluences
from steps.vison.subtasks import KEY, check_frames, task_items

NAME_WAVE = re.compile(r"_(\d{3,4})(?:_|$)")

SCHEMA = pa.schema([*PTC_SCHEMA, ("wave_pos", pa.int32()), ("wave_nm", pa.int32())])


def frame_position(frame: elvis.Frame) -> int | None:
    try:
        return int(frame.header.get("WAVE"))
    except (TypeError, ValueError):
        return None


def wave_nm(test: str, positions: set[int | None], position: int | None) -> int | None:
    """A frame's wavelength: the test name's where the test is at one position, else the filter wheel's."""
    m = NAME_WAVE.search(test)
    if m and len(positions) == 1:
        return int(m[1])
    return elvis.FILTER_WHEEL_NM.get(position) if position is not None else None


def check_ccd(ctx, item) -> list[dict]:
    trim = tuple(ctx.settings.preprocessing.trim_prescan)

    def measure(frame: elvis.Frame) -> list[dict]:
        pos = frame_position(frame)
        return [{**r, "wave_pos": pos} for r in frame_fluences(frame, trim)]

    rows = check_frames(ctx, item, measure, "fluences")
    positions = {r.get("wave_pos") for r in rows if r["problem"] is None}
    for r in rows:
        r.setdefault("wave_pos", None)
        r["wave_nm"] = wave_nm(item["test"], positions, r["wave_pos"]) if r["problem"] is None else None
    return rows


ptc02_check = FanOut("ptc02_check", inputs=("inventory",), items=task_items(tasks.PTC02WAVE), process=check_ccd,
                     key=KEY, schema=SCHEMA, shard_size=1, resources=Resources(cpu="1", memory="1Gi"), doc=__doc__)
