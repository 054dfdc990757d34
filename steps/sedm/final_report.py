"""``astroflow sedm report --run RUN [--final [--comment TEXT]]``: the night's report.

Replaces the runbook's ``make report`` / ``make finalreport`` ("The last step at the end of the
night is to generate the final report which sends a night summary e-mail report out to the SEDM
team").  Without ``--final`` it brings ``report.txt`` and ``report_ztf.txt`` up to date (the
``night_report`` step), rewrites ``RUN/report.html`` and prints ``report.txt``.  With ``--final``
it also sends the summary through the ``email`` sink (to ``email_to``; the local stand-in writes
it to ``RUN/outbox/email/``): the night's counts (spectra, acceptable, classified, uploaded,
failed items), the comment, and ``report.txt`` attached.  The e-mail's key is
``night_{date}_final``, so a second ``--final`` replaces the stand-in's copy rather than adding
one; with the sink off, it says so and sends nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from astroflow.errors import AstroflowError


def summary(run_dir: Path, comment: str = "") -> tuple[dict, str]:
    """The night's counts and the e-mail body."""
    from astroflow import rundir

    def rows(step):
        done = (run_dir / step).is_dir() and rundir.Ledger(run_dir / step).parts
        return rundir.read_dataset(run_dir / step).to_pylist() if done else []

    spectra = rows("spectra")
    uploads = rows("upload")
    from steps.sedm.errors_table import collect_errors

    errors = collect_errors(run_dir)
    counts = {"spectra": len(spectra), "acceptable": sum(r["quality"] <= 2 for r in spectra),
              "classified": sum(bool(r["type"]) for r in spectra),
              "uploaded": sum(u["sink"] == "marshal" for u in uploads), "failed_items": len(errors)}
    body = [", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in counts.items())]
    if comment:
        body += ["", comment]
    if errors:
        body += ["", "failed:"] + [f"  {e['step']} {e['item']}: {e['message']}" for e in errors[:50]]
    return counts, "\n".join(body) + "\n"


def final_report(run_dir: Path, *, final: bool = False, comment: str = "") -> dict:
    from astroflow import config as run_config
    from astroflow import runner, sinks
    from astroflow.registry import get_pipeline
    from astroflow.report import write_report
    from steps.sedm.writer import night_dir

    run_dir = Path(run_dir).absolute()
    cfg = run_config.load(run_dir)
    pipeline = get_pipeline(cfg.pipeline)
    runner.run(pipeline, cfg, run_dir, only="night_report", progress=False)
    settings = pipeline.settings.model_validate(cfg.settings)
    report_txt = run_dir / night_dir(settings) / "report.txt"
    out = {"report_txt": str(report_txt), "report_html": str(write_report(run_dir)), "sent": None}
    out["counts"], body = summary(run_dir, comment)
    if final:
        sink = settings.sinks.email
        if not sink.enabled:
            out["sent"] = "the email sink is off: nothing sent"
        else:
            msg = sinks.Message("email", f"night_{settings.date}_final",
                                {"to": settings.email_to, "subject": f"SEDM night {settings.date}", "body": body},
                                (report_txt,))
            out["sent"] = sinks.send(sink, msg, run_dir)
    return out


def main(argv: list[str] | None = None) -> int:
    """The night's report.txt and HTML report; --final also sends the summary e-mail."""
    parser = argparse.ArgumentParser(prog="astroflow sedm report", description=__doc__.splitlines()[0])
    parser.add_argument("--run", "--run-dir", dest="run_dir", type=Path, required=True, help="the night's run")
    parser.add_argument("--final", action="store_true", help="also send the end-of-night e-mail")
    parser.add_argument("--comment", default="", help="a note for the e-mail")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    try:
        out = final_report(args.run_dir, final=args.final, comment=args.comment)
    except (AstroflowError, OSError) as exc:
        print(f"astroflow sedm report: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(out, indent=1, default=str))
    else:
        print(Path(out["report_txt"]).read_text(), end="")
        print(f"report: {out['report_html']}" + (f"\ne-mail: {out['sent']}" if args.final else ""))
    return 0
