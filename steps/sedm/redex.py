"""``astroflow sedm redex HH_MM_SS [X Y] --run RUN [...]``: re-extract one object by hand.

Replaces the runbook's "Adjustment" (pysedm's ``redex`` on pharos): "re-extract at the centroid",
"use a hand-drawn region", "--recover" a quality-5 spectrum, then "generate new pysedm_report
plot, push this plot to the slack channel, update the marshal".  It is the core's item redo
(:mod:`astroflow.redo`) of the frame's ``extract`` item with overrides, then the run brought up
to date (quality, calibrate, classify, spectra, verify):

* ``X Y`` (arcsec east and north of the IFU centre, as the verification plot's axes): the
  extraction is centred there (``position_source = centroid``), which clears quality 5;
* ``--region SPEC|FILE``: the spaxels to fit (``12,13,40-47`` or a file with one index per line;
  ``--display`` draws them instead, in a window where a display exists),
  ``--exclude-spaxels`` those to leave out; ``--method aperture`` sums an aperture instead of the
  PSF fit (what the runbook leaves to "contact the team");
* ``--recover``: the brightest-spaxel extraction was the target after all: quality 5 -> 1, no
  prompt;
* the redo is tagged ``redoHHMMSS`` (UT now) and names ``--user`` (default ``SEDM_USER``); the
  spectrum, its ascii file and its verification plot carry the tag in their names.

Then the person looks at the new ``verify_*`` plot and ``--accept``s (the night report is
rewritten; the sinks send unless ``--local``) or ``--reject``s (only this tag's files are deleted
and the frame's earlier extraction is computed again, as it was).  Without either, the command
asks.  ``--json`` prints what was done.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from pathlib import Path

from astroflow.errors import AstroflowError, ConfigError


def parse_region(spec: str) -> list[int]:
    """``12,13,40-47`` (or a file of such lines) -> sorted spaxel indices."""
    text = Path(spec).read_text() if Path(spec).is_file() else spec
    out: set[int] = set()
    for part in text.replace("\n", ",").split(","):
        part = part.split("#", 1)[0].strip()
        if not part:
            continue
        lo, _, hi = part.partition("-")
        try:
            a, b = int(lo), int(hi or lo)
        except ValueError:
            raise ConfigError(f"region {spec!r}: {part!r} is not a spaxel index or range") from None
        out.update(range(min(a, b), max(a, b) + 1))
    if not out:
        raise ConfigError(f"region {spec!r} names no spaxel")
    return sorted(out)


def frame_of(run_dir: Path, hhmmss: str) -> str:
    """The IFU frame of the night taken at ``HH_MM_SS`` (the extract step's item)."""
    from astroflow import rundir

    rows = rundir.read_dataset(run_dir / "extract").to_pylist()
    hits = sorted({r["filename"] for r in rows if Path(r["filename"]).stem.endswith(hhmmss)})
    if len(hits) != 1:
        names = ", ".join(sorted(Path(r["filename"]).stem[-8:] for r in rows)) or "none"
        raise ConfigError(f"no single extracted frame at {hhmmss} (extracted: {names})" if not hits
                          else f"{hhmmss} matches {', '.join(hits)}")
    return hits[0]


def drawn_region(run_dir: Path, hhmmss: str) -> list[int]:
    """The region a person draws on the frame's cube (:mod:`steps.sedm.draw_region`)."""
    from astroflow import rundir
    from steps.sedm import draw_region

    draw_region.require_display()
    run_dir = Path(run_dir).absolute()
    filename = frame_of(run_dir, hhmmss)
    (cube,) = [r for r in rundir.read_dataset(run_dir / "cube").to_pylist() if r["filename"] == filename]
    (ex,) = [r for r in rundir.read_dataset(run_dir / "extract").to_pylist() if r["filename"] == filename]
    path = Path(cube["cube_path"]) if Path(cube["cube_path"]).is_absolute() else run_dir / cube["cube_path"]
    return draw_region.draw(path, f"{cube['object']} {hhmmss}", (ex["centroid_x"], ex["centroid_y"]))


def tagged_files(run_dir: Path, tag: str) -> list[Path]:
    """The files of one redo tag: spectra and their verification plots in the night directory,
    the tagged extraction in ``RUN/extracted``."""
    from astroflow import config as run_config
    from steps.sedm.writer import night_dir

    cfg = run_config.load(run_dir)
    from steps.sedm.settings import SedmSettings

    folder = run_dir / night_dir(SedmSettings.model_validate(cfg.settings))
    return sorted(p for d in (folder, run_dir / "extracted") if d.is_dir() for p in d.iterdir() if f"_{tag}." in p.name)


def redex(run_dir: Path, hhmmss: str, *, centroid=None, region=None, exclude=None, recover=False, method="psf",
          user=None, decision=None, local=False, ask=input, now=None) -> dict:
    """Redo one frame's extraction (the module docstring); returns what was done."""
    from astroflow import config as run_config
    from astroflow import redo, runner
    from astroflow.registry import get_pipeline

    run_dir = Path(run_dir).absolute()
    filename = frame_of(run_dir, hhmmss)
    tag = "redo" + (now or dt.datetime.now(dt.timezone.utc)).strftime("%H%M%S")
    params = {"redo_tag": tag, "redo_user": user or os.environ.get("SEDM_USER") or "", "method": method}
    if centroid is not None:
        params["centroid"] = [float(centroid[0]), float(centroid[1])]
    if region:
        params["region"] = region
    if exclude:
        params["exclude_spaxels"] = exclude
    redo.request(run_dir, "extract", [filename], params)
    if recover:
        redo.request(run_dir, "quality", [filename], {"recover": True})
    cfg = run_config.load(run_dir)
    pipeline = get_pipeline(cfg.pipeline)
    result = runner.run(pipeline, cfg, run_dir, start="extract", until="verify", progress=False)
    done = {"frame": filename, "tag": tag, "params": params, "recover": recover,
            "failed_items": result.failed_items,
            "files": [str(p.relative_to(run_dir)) if run_dir in p.parents else str(p) for p in tagged_files(run_dir, tag)]}
    if decision is None:
        plot = next((f for f in done["files"] if f.endswith(".png")), "the verify plot")
        answer = ask(f"redex {tag} of {filename}: look at {plot}; accept? [y/N] ").strip().lower()
        decision = "accept" if answer in ("y", "yes") else "reject"
    done["decision"] = decision
    if decision == "accept":
        until = "night_report" if local else None
        runner.run(pipeline, cfg, run_dir, start="spectra", until=until, progress=False)
    else:
        for path in tagged_files(run_dir, tag):
            path.unlink()
        redo.request(run_dir, "extract", [filename], clear=True)
        if recover:
            redo.request(run_dir, "quality", [filename], clear=True)
        runner.run(pipeline, cfg, run_dir, start="extract", progress=False)
        done["files"] = []
    return done


def main(argv: list[str] | None = None) -> int:
    """Re-extract one object at a centroid or region, then accept or reject (pysedm's redex)."""
    parser = argparse.ArgumentParser(prog="astroflow sedm redex", description=__doc__.splitlines()[0])
    parser.add_argument("hhmmss", metavar="HH_MM_SS", help="the frame's UT time, as in its file name")
    parser.add_argument("xy", nargs="*", type=float, metavar="X Y", help="centroid, arcsec east and north")
    parser.add_argument("--run", "--run-dir", dest="run_dir", type=Path, required=True, help="the night's run")
    parser.add_argument("--region", help="spaxels to fit: '12,13,40-47' or a file of them")
    parser.add_argument("--exclude-spaxels", help="spaxels to leave out: '12,40-47' or a file")
    parser.add_argument("--display", action="store_true", help="draw the region on the IFU in a window "
                        "(where a display exists)")
    parser.add_argument("--recover", action="store_true", help="quality 5 -> 1, no prompt")
    parser.add_argument("--method", choices=("psf", "aperture"), default="psf")
    parser.add_argument("--local", action="store_true", help="accept without sending to the sinks")
    parser.add_argument("--user", help="who redoes it (default SEDM_USER)")
    decide = parser.add_mutually_exclusive_group()
    decide.add_argument("--accept", dest="decision", action="store_const", const="accept")
    decide.add_argument("--reject", dest="decision", action="store_const", const="reject")
    parser.add_argument("--json", action="store_true", help="print what was done as JSON")
    args = parser.parse_args(argv)
    if len(args.xy) not in (0, 2):
        parser.error("give the centroid as two numbers, X Y")
    decision = "accept" if args.recover and args.decision is None else args.decision
    try:
        region = parse_region(args.region) if args.region else None
        if args.display:
            region = drawn_region(args.run_dir, args.hhmmss)
        done = redex(args.run_dir, args.hhmmss, centroid=args.xy or None, region=region,
                     exclude=parse_region(args.exclude_spaxels) if args.exclude_spaxels else None,
                     recover=args.recover, method=args.method, user=args.user, decision=decision, local=args.local)
    except (AstroflowError, OSError) as exc:
        print(f"astroflow sedm redex: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(done, indent=1))
    else:
        print(f"{done['frame']}: {done['tag']} {done['decision']}ed; {len(done['files'])} file(s)")
    return 0
