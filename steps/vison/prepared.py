"""The prepared (offset-subtracted) quadrants of a frame, from its raw counts and the prep rows."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from steps.vison import elvis
from steps.vison.science.bias import prepared_image


def prep_by_frame(ctx, item) -> dict[int, dict[str, dict]]:
    """ObsID -> quadrant -> prep row of one (test, CCD) item."""
    out: dict[int, dict[str, dict]] = {}
    for r in ctx.lookup("bias_prep", test=item["test"], ccd=item["ccd"]).to_pylist():
        out.setdefault(r["obsid"], {})[r["quadrant"]] = r
    return dict(sorted(out.items()))


def offset_of(row: dict) -> float | np.ndarray:
    return np.asarray(row["row_offsets_adu"]) if row["row_offsets_adu"] is not None else row["offset_adu"]


def prepared_frames(ctx, item, region: str = "image") -> Iterator[tuple[int, elvis.Frame, dict[str, np.ndarray]]]:
    """(ObsID, frame, quadrant -> prepared region) for each prepared frame of the item."""
    for obsid, quads in prep_by_frame(ctx, item).items():
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
