"""FLAT01 sub-tasks ``indivflats``, ``masterflat`` and ``prmask`` (vison ``do_indiv_flats``,
``do_master_flat``, ``do_prdef_mask``), one step: individual flats, master flats, PRNU, response defects.

Per test and CCD (fan-out), each prepared flat is read once: per quadrant its image area over
its smooth 2-D model (bicubic spline through 50-px bin medians, vison's), added to its fluence
level's stack (the levels told apart by the exposure time; :mod:`steps.vison.science.flat`).
Per level and quadrant: the master flat (the mean of the individual flats, with its standard
error), the response defects (:func:`steps.vison.science.flat.response_defects`) and the PRNU
(% rms of the master, the defects left out, its own noise subtracted).  The levels are named by
the test's structure in exposure-time order (25, 50, 75 % of the full well: vison's labels
col1..col3); a test cut short is analysed as found (a missing middle level would shift the
names after it: the flags step reports fewer levels).  One step rather than vison's three: each
reads the same frames, and the individual flats (vison wrote one FITS per frame, 170 per CCD)
are not kept.

Writes one master flat per level,
``RUN/<session>/<TEST>/products/EUC_FF_{WAVE}nm_{TEST}_{label}_CCD{n}_SN_{serial}.fits``
(extensions ``FLAT``, float32, the normalised master in the frame's layout, NaN outside the image
area; ``EFLAT``, its standard error; ``FLAT_DEFECTS``, uint8, 1 a response-defect pixel, 2 a
column), registered as ``MASTER_FLAT`` (matched by CCD, serial and wavelength; ``level`` and
``fluence`` attributes) and stamped with its provenance, and the contract datasets ``prnu`` and
``defects`` (the defects of every level, once each: a pixel found at several levels is listed
once, with the kind of the first).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from astroflow.errors import ItemError, Skip
from astroflow.step import FanOut, Resources, StepParams
from pydantic import Field

from steps.vison import elvis, tasks
from steps.vison.masters import place, write_master
from steps.vison.prepared import prepared_frames
from steps.vison.products import product_path, write_part
from steps.vison.science.flat import (
    BINSIZE,
    DEFECT_SIGMA,
    FlatStack,
    indiv_flat,
    prnu,
    response_defects,
)
from steps.vison.subtasks import KEY, task_items


class MetaParams(StepParams):
    binsize: int = Field(BINSIZE, ge=2, description="pixels per side of the bins the flat's smooth model goes through")
    defect_sigma: float = Field(DEFECT_SIGMA, gt=0, description=(
        "a pixel this many robust standard deviations (PRNU and noise) off the master flat is a response defect"))


SCHEMA = pa.schema([
    ("test", pa.string()), ("ccd", pa.int8()), ("quadrant", pa.string()), ("level", pa.string()),
    ("fluence", pa.float64()), ("exptime", pa.float64()), ("fluence_adu", pa.float64()), ("wave_nm", pa.int32()),
    ("prnu_pct", pa.float64()), ("prnu_raw_pct", pa.float64()), ("noise_pct", pa.float64()),
    ("n_frames", pa.int32()), ("n_defect_pixels", pa.int32()), ("n_defect_columns", pa.int32()),
    ("serial", pa.string()), ("file", pa.string()),
])


class Level:
    """One fluence level's stacks, model levels, ObsIDs and dates."""

    def __init__(self):
        self.stacks: dict[str, FlatStack] = {}
        self.levels: dict[str, list[float]] = {q: [] for q in elvis.QUADRANTS}
        self.obsids: list[int] = []
        self.dates = []


def _when(dates):
    import datetime as dt

    stamps = [d.replace(tzinfo=dt.timezone.utc).timestamp() for d in dates]
    return dt.datetime.fromtimestamp(float(np.mean(stamps)), tz=dt.timezone.utc)


def meta_ccd(ctx, item) -> list[dict]:
    p, test, ccd = ctx.params, item["test"], item["ccd"]
    levels: dict[float, Level] = {}
    geometry = header = None
    for obsid, frame, quads in prepared_frames(ctx, item, tasks.FLAT01, "image"):
        if geometry is not None and frame.geometry != geometry:
            raise ItemError(f"ObsID {obsid} has another geometry ({frame.geometry}) than the first frame ({geometry})",
                            frame.path)
        geometry, header = frame.geometry, frame.header
        level = levels.setdefault(round(float(frame.header.get("EXPTIME", 0.0)), 3), Level())
        level.obsids.append(obsid)
        level.dates.append(frame.date)
        for q in elvis.QUADRANTS:
            flat, model_level = indiv_flat(quads[q], p.binsize)
            level.stacks.setdefault(q, FlatStack(flat.shape)).add(flat)
            level.levels[q].append(model_level)
    if not levels:
        raise Skip(f"no prepared frame of {test} CCD{ccd} to stack (MISSDATA)")
    serial = str(header.get(f"SN_CCD{ccd}", "unknown"))
    try:
        wave = elvis.FILTER_WHEEL_NM.get(int(header.get("WAVE")), 0)
    except (TypeError, ValueError):
        wave = 0
    nominal = [f for f, _ in tasks.structure(test).levels]
    rows, defects, seen = [], [], set()
    for i, (exptime, level) in enumerate(sorted(levels.items())):
        label, fluence = f"col{i + 1}", (nominal[i] if i < len(nominal) else None)  # None: beyond the structure
        masters, errors, masks = {}, {}, {}
        for q in elvis.QUADRANTS:
            masters[q], errors[q] = level.stacks[q].result()
            masks[q], found = response_defects(masters[q], p.defect_sigma)
            kinds = [k for _, _, k, _ in found]
            rows.append({"test": test, "ccd": ccd, "quadrant": q, "level": label,
                         "fluence": float("nan") if fluence is None else fluence, "exptime": exptime,
                         "fluence_adu": float(np.mean(level.levels[q])), "wave_nm": wave,
                         **prnu(masters[q], errors[q], masks[q]), "n_frames": level.stacks[q].frames,
                         "n_defect_pixels": sum(k.endswith("_pixel") for k in kinds),
                         "n_defect_columns": sum(k.endswith("_column") for k in kinds), "serial": serial})
            for x, y, k, _ in found:
                if (q, x, y) not in seen:
                    seen.add((q, x, y))
                    defects.append({"ccd": ccd, "quadrant": q, "x": x, "y": y, "kind": k})
        when = _when(level.dates)
        common = {"TEST": test, "CCD": ccd, "SERIAL": serial, "WAVEL": wave, "LEVEL": label,
                  "FLUENCE": -1.0 if fluence is None else fluence,
                  "NCOMBINE": len(level.obsids), "OBSID0": min(level.obsids), "OBSID1": max(level.obsids),
                  "DATE-OBS": when.isoformat(timespec="seconds"), "EXPTIME": exptime, "COMBINE": "mean"}
        name = f"EUC_FF_{wave}nm_{test}_{label}_CCD{ccd}_SN_{serial}.fits"
        path = write_master(ctx, "MASTER_FLAT", product_path(ctx, test, name), when,
                            {"ccd": ccd, "serial": serial, "wave_nm": wave, "level": label, "fluence": fluence},
                            level.obsids,
                            [(place(masters, geometry), {"EXTNAME": "FLAT", "BUNIT": "", **common}),
                             (place(errors, geometry), {"EXTNAME": "EFLAT", "BUNIT": "", **common}),
                             (place(masks, geometry, np.uint8, 0),
                              {"EXTNAME": "FLAT_DEFECTS", "DEFPIX": 1, "DEFCOL": 2, "NSIGMA": p.defect_sigma,
                               **common})])
        for r in rows[-len(elvis.QUADRANTS):]:
            r["file"] = str(path.relative_to(ctx.run_dir))
    write_part(ctx, "prnu", test, f"ccd{ccd}", rows)
    write_part(ctx, "defects", test, f"ccd{ccd}", defects)
    return rows


flat_meta = FanOut("flat_meta", inputs=("inventory", "flat_prep"), params=MetaParams, items=task_items(tasks.FLAT01),
                   process=meta_ccd, key=KEY, schema=SCHEMA, shard_size=1,
                   resources=Resources(cpu="1", memory="3Gi"), doc=__doc__)
