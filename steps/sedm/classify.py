"""Runbook, science steps 5f-g: "the resulting spectrum is classified using SNID" and "the SNID
results are put in the ascii spectrum header".

SNID is a Fortran program no registry here carries, so one adapter has two engines:

* where the ``snid`` setting names an executable and ``snid_templates`` its template folder, the
  real SNID is run on the spectrum (``rlapmin``, ``wmin``/``wmax``, ``zmin``/``zmax`` from this
  step's parameters, no plots, no interaction) and its ``_snid.output`` template listing is read;
  the classifier is then ``SNID``;
* otherwise the project's own ``astroflow-xcor (SNID-like, not SNID)``
  (:mod:`steps.sedm.science.classify`: Tonry-Davis correlation on SNID's log-wavelength axis,
  spline continuum removed, apodised, SNID's bandpass, rlap = r x lap) against the template bank
  of the ``templates`` setting (default ``steps/sedm/data/templates``, whose README says what
  each template is and how it was made).

Either way the same rules make the answer from the template matches: good matches have
``rlap >= rlap_min`` (4, the runbook's) over ``wmin``-``wmax`` (4000-9500 A); the type and
subtype with the largest share of them, the redshift (with its error) and age from that
subtype's good matches; the type fractions.  One item per calibrated science spectrum
(``calibrate`` rows of kind ``science``; standards are not classified); a spectrum of quality > 2 is not classified (the item is skipped with its
quality as the reason, as the runbook says).  An uncalibrated spectrum is classified all the
same (the continuum is divided out) and the row says so.  The row keeps SNID's names for the
``spectrum`` step's header keys (SNIDTYPE, SNIDSUBT, SNIDZMAT, SNIDRLAP; ascii SNIDMATCHTYPE ...)
and ``classifier`` for the CLASSIFIER key.
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
from pydantic import Field

from astroflow.errors import ItemError, Skip
from astroflow.step import FanOut, StepParams
from steps.sedm.extract import read_spectrum
from steps.sedm.science import classify as science

TEMPLATES = Path(__file__).resolve().parent / "data" / "templates"
SNID_CLASSIFIER = "SNID"
SCHEMA = pa.schema([
    ("filename", pa.string()), ("object", pa.string()), ("status", pa.string()), ("classifier", pa.string()),
    ("type", pa.string()), ("subtype", pa.string()), ("z", pa.float64()), ("zerr", pa.float64()),
    ("age", pa.float64()), ("rlap", pa.float64()), ("best_template", pa.string()), ("n_good", pa.int32()),
    ("fractions", pa.string()), ("quality", pa.int32()), ("calibrated", pa.bool_()), ("snr", pa.float64()),
])


class ClassifyParams(StepParams):
    rlap_min: float = Field(science.RLAP_MIN, gt=0, description="a template match is good at or above this rlap")
    lap_min: float = Field(science.LAP_MIN, gt=0, description="and at or above this overlap in ln(lambda)")
    wmin: float = Field(science.WMIN, gt=0, description="A (observed): the spectrum is used from here")
    wmax: float = Field(science.WMAX, gt=0, description="A (observed): to here")
    zmin: float = Field(science.ZMIN, ge=-0.1, description="lowest redshift searched")
    zmax: float = Field(science.ZMAX, gt=0, le=1.5, description="highest redshift searched")
    snid_timeout_s: float = Field(120.0, gt=0, description="seconds a real SNID run may take")


def read_bank(folder: Path) -> list[science.Template]:
    """The templates listed in ``{folder}/bank.csv`` (name, type, subtype, age_days), each
    ``{folder}/{name}.csv`` (wavelength rest A, flux)."""
    index = folder / "bank.csv"
    try:
        rows = list(csv.DictReader(index.open()))
    except OSError as exc:
        raise ItemError(f"cannot read the template bank: {exc}", path=index) from None
    out = []
    for r in rows:
        path = folder / f"{r['name']}.csv"
        try:
            t = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
        except (OSError, ValueError) as exc:
            raise ItemError(f"cannot read template {r['name']}: {exc}", path=path) from None
        out.append(science.Template(r["name"], r["type"], r["subtype"], float(r["age_days"]), t[:, 0], t[:, 1]))
    return out


def snid_configured(settings) -> bool:
    exe = settings.snid
    return bool(exe and settings.snid_templates and Path(exe).is_file() and os.access(exe, os.X_OK))


def load_engine(ctx, items) -> dict:
    s = ctx.settings
    if snid_configured(s):
        return {"engine": "snid"}
    folder = Path(s.templates or TEMPLATES)
    ctx.lists(folder)
    return {"engine": "xcor", "bank": read_bank(folder)}


def calibrated_spectra(ctx) -> list[dict]:
    return [{"filename": r["filename"]} for r in ctx.rows("calibrate", columns=["filename", "kind"])
            if r["kind"] == "science"]


def classify_one(ctx, item: dict) -> dict:
    p: ClassifyParams = ctx.params
    c = ctx.row("calibrate", filename=item["filename"])
    q = ctx.row("quality", filename=item["filename"])
    if not q["acceptable"]:
        raise Skip(f"quality {q['quality']} ({q['reason']}): not classified")
    sp = read_spectrum(ctx.run_dir / c["calibrated_path"])
    if ctx.state["engine"] == "snid":
        result = run_snid(ctx.settings.snid, ctx.settings.snid_templates, sp["wavelength"], sp["flux"], p)
    else:
        result = science.classify(sp["wavelength"], sp["flux"], ctx.state["bank"], rlap_min=p.rlap_min,
                                  lap_min=p.lap_min, zmin=p.zmin, zmax=p.zmax, wmin=p.wmin, wmax=p.wmax)
    good = [m for m in result.matches if m.rlap >= p.rlap_min and m.lap >= p.lap_min]
    return {"filename": c["filename"], "object": c["object"], "status": "classified" if result.type else "no match",
            "classifier": result.classifier, "type": result.type, "subtype": result.subtype, "z": result.z,
            "zerr": result.zerr, "age": result.age, "rlap": result.rlap,
            "best_template": result.best.template if result.best else "", "n_good": len(good),
            "fractions": json.dumps({k: round(v, 4) for k, v in result.fractions.items()}),
            "quality": int(q["quality"]), "calibrated": bool(c["calibrated"]), "snr": float(c["snr"])}


# --- the real SNID ---------------------------------------------------------------------------

def main_type(subtype: str) -> str:
    """SNID's type of a subtype: ``Ia-norm`` -> ``Ia``, ``IIP``/``IIb``/``IIn`` -> ``II``."""
    if subtype.startswith("II"):
        return "II"
    return subtype.split("-")[0]


def parse_snid_output(text: str) -> list[science.Match]:
    """The ``rlap-ordered template listings`` of a ``_snid.output`` file (columns no., sn, type,
    lap, rlap, z, zerr, age, age_flag, grade); only the templates graded ``good``."""
    out, inside = [], False
    for line in text.splitlines():
        if line.startswith("###"):
            inside = "rlap-ordered template listings" in line
            continue
        if not inside or line.startswith("#") or not line.strip():
            continue
        f = line.split()
        if len(f) < 10 or not re.fullmatch(r"\d+", f[0]):
            continue
        if f[9] != "good":
            continue
        out.append(science.Match(f[1], main_type(f[2]), f[2], float(f[7]), float(f[5]), float(f[6]),
                                 float(f[4]) / max(float(f[3]), 1e-9), float(f[3]), float(f[4])))
    return out


def run_snid(exe, tempdir, lam, flux, p: ClassifyParams) -> science.Result:
    """Run SNID on the spectrum; its good template matches through the same rules."""
    with tempfile.TemporaryDirectory(prefix="snid_") as work:
        spec = Path(work) / "spectrum.txt"
        ok = np.isfinite(lam) & np.isfinite(flux)
        np.savetxt(spec, np.column_stack([lam[ok], flux[ok]]), fmt="%.3f %.6e")
        args = [str(exe), "inter=0", "plot=0", "verbose=0", f"rlapmin={p.rlap_min:g}", f"lapmin={p.lap_min:g}",
                f"wmin={p.wmin:g}", f"wmax={p.wmax:g}", f"zmin={p.zmin:g}", f"zmax={p.zmax:g}",
                f"tempdir={Path(tempdir)}/", spec.name]
        try:
            done = subprocess.run(args, cwd=work, capture_output=True, text=True, timeout=p.snid_timeout_s)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ItemError(f"snid did not run: {exc}", path=exe) from None
        output = Path(work) / "spectrum_snid.output"
        if not output.is_file():
            return science.Result("", "", float("nan"), float("nan"), float("nan"), 0.0, None, {}, [],
                                  SNID_CLASSIFIER) if done.returncode == 0 else _snid_failed(exe, done)
        matches = parse_snid_output(output.read_text(errors="replace"))
    return science.aggregate(matches, p.rlap_min, p.lap_min, classifier=SNID_CLASSIFIER)


def _snid_failed(exe, done):
    tail = (done.stderr or done.stdout or "").strip().splitlines()[-1:] or [""]
    raise ItemError(f"snid exited with {done.returncode}: {tail[0]}", path=exe)


classify = FanOut("classify", inputs=("calibrate", "quality"), items=calibrated_spectra, process=classify_one,
                  setup=load_engine, key=("filename",), params=ClassifyParams, schema=SCHEMA, shard_size=10,
                  doc=__doc__)
