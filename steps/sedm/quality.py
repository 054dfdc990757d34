"""Runbook, section "Quality": "A quality value is assigned to each spectrum based on several
criteria ... Any value above 2 indicates a major problem and the spectrum will neither be
classified nor uploaded to the marshal."

One item per extracted spectrum (the ``extract`` step's rows): the grade of
:func:`steps.sedm.science.quality.grade` from what the extraction recorded -- 3 when the guider
astrometry places the target outside the IFU, 5 when it failed for a science target (the
brightest spaxel stood in; never for a standard, which always uses it), 4 when more than
``negative_limit`` (20 %) of the spectrum's wavelengths have negative flux, else 0.  ``recover``
(``redex --recover``, an item redo with that override) turns a 5 into 1.  ``acceptable`` (0-2)
is what ``classify`` and the sinks read.
"""

from __future__ import annotations

import pyarrow as pa
from pydantic import Field

from astroflow.step import FanOut, StepParams
from steps.sedm.science import quality as science

SCHEMA = pa.schema([
    ("filename", pa.string()), ("object", pa.string()), ("kind", pa.string()), ("quality", pa.int32()),
    ("reason", pa.string()), ("acceptable", pa.bool_()), ("position_source", pa.string()),
    ("guider_ok", pa.bool_()), ("in_ifu", pa.bool_()), ("negative_fraction", pa.float64()),
    ("spectrum_path", pa.string()),
])


class QualityParams(StepParams):
    negative_limit: float = Field(science.NEGATIVE_LIMIT, gt=0, lt=1, description="quality 4 above this fraction "
                                  "of the spectrum's wavelengths with negative flux (the runbook's 20 %)")
    recover: bool = Field(False, description="redex --recover: the extraction at the brightest spaxel is the "
                          "target's, so quality 5 becomes 1")


def extracted(ctx) -> list[dict]:
    return [{"filename": r["filename"]} for r in ctx.rows("extract", columns=["filename"])]


def grade_one(ctx, item: dict) -> dict:
    p: QualityParams = ctx.params
    r = ctx.row("extract", filename=item["filename"])
    q, why = science.grade(kind=r["kind"], position_source=r["position_source"], guider_ok=r["guider_ok"],
                           in_ifu=r["in_ifu"], negative_fraction=r["negative_fraction"],
                           negative_limit=p.negative_limit, recovered=p.recover)
    return {"filename": r["filename"], "object": r["object"], "kind": r["kind"], "quality": q, "reason": why,
            "acceptable": science.acceptable(q), "position_source": r["position_source"],
            "guider_ok": r["guider_ok"], "in_ifu": r["in_ifu"], "negative_fraction": r["negative_fraction"],
            "spectrum_path": r["spectrum_path"]}


quality = FanOut("quality", inputs=("extract",), items=extracted, process=grade_one, key=("filename",),
                 params=QualityParams, schema=SCHEMA, shard_size=20, doc=__doc__)
