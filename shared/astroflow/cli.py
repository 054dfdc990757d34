"""The ``astroflow`` command: observatory pipelines on one machine or on Argo Workflows.

    astroflow run PIPELINE --config FILE --out RUN     (or astroflow PIPELINE run ...)
    astroflow status RUN [--json]                      expected vs produced, what is stale and why
    astroflow redo RUN STEP --items KEY[,KEY] [--set STEP.PARAM=VALUE]
    astroflow PIPELINE --help                          the pipeline's settings, commands and tools

Heavy libraries are imported inside the commands, and a pipeline's own tools are found in its
light ``tools`` module, so that quick tools (``astroflow tec modshift``) start in a fraction of
a second.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
import typing
from pathlib import Path

EXIT_CODES = """exit codes:
  0  success: every selected step done and no item failed
  1  the run finished with failed items or failed or blocked steps (astroflow status says which);
     submit --watch: the workflow ended Failed or Error
  2  usage or configuration error, or a plan refused because an input step failed (not retried)
  3  a unit failed as a whole (astroflow step: the pod fails and Argo retries it)
  4  another process is writing the run directory (it is named)
  5  submit: the Argo Server could not be reached (connection refused, unknown host, TLS)
  6  submit: the Argo Server refused the request (token, namespace, template not installed)"""

SUBMIT_ENV = """environment (as for the argo CLI; the token has no flag, which would show in ps and shell history):
  ARGO_SERVER                host:port of the Argo Server (no scheme; https unless ARGO_SECURE=false)
  ARGO_TOKEN                 "Bearer <token>" or the bare token (empty: no Authorization header)
  ARGO_NAMESPACE             the namespace (default argo)
  ARGO_SECURE                false: plain http (default true)
  ARGO_INSECURE_SKIP_VERIFY  true: accept a self-signed certificate
  ARGO_BASE_HREF             a path prefix, when the server sits behind an ingress path"""

PIPELINE_COMMANDS = ("run", "demo", "simulate", "init", "watch")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    argv = _logging_flags(argv)
    from astroflow.errors import ArgoRequestFailed, ArgoUnreachable, AstroflowError, RunLocked

    try:
        if argv and argv[0] in _pipeline_names():
            rc = _pipeline_entry(argv[0], argv[1:])
        else:
            rc = _dispatch(argv)
        sys.stdout.flush()  # here, where a closed pipe is caught, not at the interpreter's exit
        return rc
    except RunLocked as exc:
        print(f"astroflow: {exc}", file=sys.stderr)
        return 4
    except ArgoUnreachable as exc:
        print(f"astroflow: {exc}", file=sys.stderr)
        return 5
    except ArgoRequestFailed as exc:
        print(f"astroflow: {exc}", file=sys.stderr)
        return 6
    except AstroflowError as exc:
        print(f"astroflow: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `astroflow status --json | head`
        _quiet_stdout()
        return 0


def _quiet_stdout() -> None:
    """The reader of stdout went away: point stdout at /dev/null so that the interpreter's last
    flush neither prints a BrokenPipeError nor turns the exit status into 120."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def _logging_flags(argv: list[str]) -> list[str]:
    """``-v``/``--verbose`` and ``--log-level LEVEL`` anywhere on the line set the log level."""
    level, out, i = None, [], 0
    while i < len(argv):
        a = argv[i]
        if a in ("-v", "--verbose"):
            level = logging.DEBUG if level == logging.INFO else logging.INFO
        elif a == "--log-level" and i + 1 < len(argv):
            level, i = getattr(logging, argv[i + 1].upper(), logging.INFO), i + 1
        elif a.startswith("--log-level="):
            level = getattr(logging, a.split("=", 1)[1].upper(), logging.INFO)
        else:
            out.append(a)
        i += 1
    if level is not None:
        logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        logging.getLogger("astroflow").setLevel(level)
    return out


def _pipeline_names() -> list[str]:
    from astroflow.registry import registered

    return list(registered())


def _tools(name: str) -> dict[str, str]:
    """A pipeline's tools: its light ``tools`` module (beside the pipeline module) if it has one,
    else the declaration itself."""
    from astroflow.registry import get_pipeline, registered

    package = registered()[name].split(":")[0].rsplit(".", 1)[0]
    try:
        return dict(importlib.import_module(f"{package}.tools").TOOLS)
    except ModuleNotFoundError as exc:
        if exc.name != f"{package}.tools":
            raise
    return dict(get_pipeline(name).tools)


def _call(target: str, argv: list[str]) -> int:
    module, func = target.split(":")
    return getattr(importlib.import_module(module), func)(argv)


def _pipeline_entry(name: str, rest: list[str]) -> int:
    """``astroflow PIPELINE COMMAND|TOOL ...``: the core's commands for this pipeline, or its tools."""
    tools = _tools(name)
    if rest and rest[0] in PIPELINE_COMMANDS:
        return _dispatch([rest[0], name, *rest[1:]])
    if rest and rest[0] in tools:
        return _call(tools[rest[0]], rest[1:])
    from astroflow.registry import get_pipeline

    pipeline = get_pipeline(name)
    lines = [f"usage: astroflow {name} COMMAND [options]", "", (pipeline.doc or "").strip(), "",
             "commands (astroflow {0} COMMAND --help):".format(name)]
    for c in PIPELINE_COMMANDS:
        lines.append(f"  {c:<14} astroflow {c} {name} ...")
    if tools:
        lines += ["", "tools:"]
        for t, target in tools.items():
            module = importlib.import_module(target.split(":")[0])
            doc = (getattr(module, target.split(":")[1]).__doc__ or module.__doc__ or "").strip().splitlines()
            lines.append(f"  {t:<14} {doc[0] if doc else ''}")
    print("\n".join(lines))
    if rest and rest[0] not in ("-h", "--help"):
        print(f"\nastroflow {name}: unknown command {rest[0]!r}", file=sys.stderr)
        return 2
    return 0


def _parser() -> argparse.ArgumentParser:
    from astroflow import __version__

    parser = argparse.ArgumentParser(prog="astroflow", description=__doc__.split("\n\n")[0],
                                     epilog=EXIT_CODES + "\n\n-v/--verbose or --log-level LEVEL set the log level.",
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"astroflow {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, text in (("run", "run a pipeline with the embedded runner"),
                       ("demo", "simulate a data set and run the pipeline on it"),
                       ("simulate", "write a simulated data set in the real formats"),
                       ("init", "write a run directory's resolved configuration"),
                       ("watch", "process files as they arrive in the data root")):
        sp = sub.add_parser(name, help=text, add_help=False)
        sp.add_argument("pipeline")
    st = sub.add_parser("status", help="expected vs produced for a run directory, and what is stale")
    st.add_argument("run_dir", type=Path)
    st.add_argument("--json", action="store_true", help="machine-readable output")
    rep = sub.add_parser("report", help="(re)write RUN/report.html")
    rep.add_argument("run_dir", type=Path)
    rd = sub.add_parser("redo", help="recompute some items of a step, optionally with other parameters",
                        epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    rd.add_argument("run_dir", type=Path)
    rd.add_argument("step")
    rd.add_argument("--items", default="", help="item keys, comma-separated (as status and the error table show them)")
    rd.add_argument("--items-file", type=Path, help="a file of item keys, one per line")
    rd.add_argument("--set", dest="sets", action="append", default=[], metavar="STEP.PARAM=VALUE",
                    help="a parameter override for these items")
    rd.add_argument("--clear", action="store_true", help="recompute without the items' earlier overrides")
    rd.add_argument("--no-downstream", action="store_true", help="recompute only the step, leave its readers stale")
    rd.add_argument("--dry-run", action="store_true", help="show what would be recomputed")
    rd.add_argument("--workers", type=int)
    rd.add_argument("--no-progress", action="store_true")
    cal = sub.add_parser("calib", help="the calibration library: list, show, explain, mark-bad, mark-good",
                         add_help=False)
    cal.add_argument("args", nargs=argparse.REMAINDER)
    pl = sub.add_parser("plan", help="plan a step; prints the units to run as JSON (an Argo plan task)")
    pl.add_argument("pipeline")
    pl.add_argument("step")
    pl.add_argument("--run-dir", type=Path, required=True)
    pl.add_argument("--force", action="store_true")
    sp = sub.add_parser("step", help="run one unit of a step (the container entry point)")
    sp.add_argument("pipeline")
    sp.add_argument("step")
    sp.add_argument("--run-dir", type=Path, required=True)
    sp.add_argument("--shard", "--unit", dest="unit", required=True, help="a unit name (shard-00003) or a shard number")
    sp.add_argument("--force", action="store_true")
    rn = sub.add_parser("render", help="write the Argo WorkflowTemplate(s) of pipelines")
    rn.add_argument("pipelines", nargs="*", help="default: all")
    rn.add_argument("--out", type=Path, default=Path("argo"), help="folder written (default: argo); nothing else is")
    rn.add_argument("--chart", type=Path, default=None,
                    help="also copy the rendered templates into this chart's files/workflowtemplates/ (make render)")
    sb = sub.add_parser("submit", help="submit a pipeline's installed WorkflowTemplate to an Argo Server",
                        description="Create a Workflow from the installed astroflow-PIPELINE WorkflowTemplate "
                        "(like `argo submit --from workflowtemplate/astroflow-PIPELINE`).",
                        epilog=SUBMIT_ENV + "\n\n" + EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    sb.add_argument("pipeline")
    sb.add_argument("-s", "--argo-server", "--host", dest="server", metavar="HOST:PORT",
                    help="the Argo Server (default: $ARGO_SERVER)")
    sb.add_argument("-n", "--namespace", help="the namespace (default: $ARGO_NAMESPACE, else argo)")
    sb.add_argument("-p", "--parameter", action="append", default=[], metavar="KEY=VALUE",
                    help="a workflow parameter (run-name, tag, partition...)")
    sb.add_argument("--parallelism", type=int, help="pods at once for this workflow (default: the template's)")
    sb.add_argument("-o", "--output", choices=("name", "json", "yaml"),
                    help="name: the workflow's name only; json or yaml: the workflow object (with --watch: "
                    "its final state); default: a short summary")
    sb.add_argument("--watch", action="store_true", help="follow the workflow until it ends (progress on stderr); "
                    "the exit status is 0 only if it succeeded")
    sb.add_argument("--poll", type=float, default=2.0, metavar="SECONDS", help="with --watch: seconds between polls")
    return parser


def _dispatch(argv: list[str]) -> int:
    parser = _parser()
    args, rest = parser.parse_known_args(argv)
    if args.command in PIPELINE_COMMANDS:
        if args.command == "watch":
            from astroflow import watch

            return watch.main([args.pipeline, *rest])
        return _pipeline_command(args.command, args.pipeline, rest)
    if args.command == "calib":
        from astroflow.calib.cli import main as calib_main

        return calib_main(args.args + rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command == "status":
        from astroflow import status

        s = status.collect(args.run_dir)
        print(status.render_json(s) if args.json else status.render_text(s))
        return 0 if s["complete"] else 1
    if args.command == "report":
        from astroflow.report import write_report

        print(write_report(args.run_dir))
        return 0
    if args.command == "redo":
        return _redo(args)
    if args.command == "plan":
        return _plan(args)
    if args.command == "step":
        return _step(args)
    if args.command == "render":
        from astroflow.registry import PIPELINES

        argo = _argo_or_none("render")
        if argo is None:
            return 2
        names = args.pipelines or list(PIPELINES)
        for name in names:
            print(argo.render(name, args.out))
        if args.chart:
            for path in argo.sync_chart(args.out, args.chart, names):
                print(path)
        return 0
    if args.command == "submit":
        return _submit(args)
    return 2


def _argo_or_none(command: str):
    """astroflow.argo, or None (with the one-line reason) where Hera is not installed: the step
    images do not carry it; `pip install 'astroflow[argo]'` does."""
    try:
        from astroflow import argo
    except ImportError as exc:
        print(f"astroflow {command}: needs Hera ({exc.name} is missing): pip install 'astroflow[argo]'", file=sys.stderr)
        return None
    return argo


def _submit(args) -> int:
    from astroflow.registry import registered

    argo = _argo_or_none("submit")
    if argo is None:
        return 2

    if args.pipeline not in registered():
        print(f"astroflow submit: unknown pipeline {args.pipeline!r}; known: {', '.join(registered())}", file=sys.stderr)
        return 2
    bad = [p for p in args.parameter if "=" not in p]
    if bad:
        print(f"astroflow submit: -p {bad[0]}: expected KEY=VALUE", file=sys.stderr)
        return 2
    params = dict(p.split("=", 1) for p in args.parameter)
    conn = argo.Connection.from_env(args.server, args.namespace)
    created = argo.submit(args.pipeline, conn, params=params, parallelism=args.parallelism)
    name = created["metadata"]["name"]
    if args.output == "name" or not (args.watch and args.output in ("json", "yaml")):
        _print_workflow(created, args.output)
    if not args.watch:
        return 0

    def progress(wf):
        status = wf.get("status") or {}
        print(f"{name}: {argo.phase(wf)}" + (f" {status['progress']}" if status.get("progress") else "")
              + (f": {status['message']}" if status.get("message") else ""), file=sys.stderr, flush=True)

    final = argo.watch(conn, name, interval_s=args.poll, on_change=progress)
    if args.output in ("json", "yaml"):
        _print_workflow(final, args.output)
    return 0 if argo.phase(final) == "Succeeded" else 1


def _print_workflow(wf: dict, output: str | None) -> None:
    meta = wf.get("metadata") or {}
    if output == "name":
        print(meta.get("name", ""), flush=True)
    elif output == "json":
        print(json.dumps(wf, indent=2), flush=True)
    elif output == "yaml":
        import yaml

        print(yaml.safe_dump(wf, sort_keys=False), end="", flush=True)
    else:
        from astroflow.argo import phase

        rows = [("Name", meta.get("name", "")), ("Namespace", meta.get("namespace", "")),
                ("Template", ((wf.get("spec") or {}).get("workflowTemplateRef") or {}).get("name", "")),
                ("Status", phase(wf)), ("Created", meta.get("creationTimestamp", ""))]
        params = ((wf.get("spec") or {}).get("arguments") or {}).get("parameters") or []
        if params:
            rows.append(("Parameters", ", ".join(f"{p['name']}={p.get('value', '')}" for p in params)))
        print("\n".join(f"{k + ':':<12}{v}" for k, v in rows if v != ""), flush=True)


def _plan(args) -> int:
    from astroflow import config as run_config
    from astroflow import rundir
    from astroflow.planner import failure_record, plan_step
    from astroflow.registry import get_pipeline

    cfg = run_config.load(args.run_dir)
    if args.step not in cfg.enabled_steps(get_pipeline(cfg.pipeline)):
        print("[]")  # a disabled step fans out to nothing
        return 0
    try:
        work = plan_step(args.run_dir, args.step, cfg, force=args.force)
    except Exception as exc:
        rundir.write_failure(args.run_dir / args.step, failure_record(exc))
        raise
    print(json.dumps(work.ids(), separators=(",", ":")))
    return 0


def _step(args) -> int:
    from astroflow import rundir
    from astroflow.executor import execute

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    unit = rundir.shard_unit(int(args.unit)) if args.unit.isdigit() else args.unit
    try:
        m = execute(args.run_dir, args.step, unit, force=args.force)
    except Exception as exc:  # a unit failure: the pod fails and Argo retries it
        print(f"astroflow step {args.step} {unit}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 3
    if m.get("skipped_unit"):
        print(f"{args.step} {unit}: already committed", file=sys.stderr)
    else:
        print(f"{args.step} {unit}: {len(m['ok'])} ok, {len(m['failed'])} failed, "
              f"{len(m['skipped'])} skipped in {m['wall_s']} s", file=sys.stderr)
        _write_unit_summary(m)
    return 0


UNIT_SUMMARY_ENV = "ASTROFLOW_UNIT_SUMMARY"


def _write_unit_summary(manifest: dict) -> None:
    """In a pod (``$ASTROFLOW_UNIT_SUMMARY`` set by the template): the unit's failed items and
    items per second, one number per file, which Argo reads as output parameters for the step's
    Prometheus metrics (:data:`astroflow.argo.UNIT_FIGURES`)."""
    folder = os.environ.get(UNIT_SUMMARY_ENV)
    if not folder:
        return
    n = len(manifest["ok"]) + len(manifest["failed"]) + len(manifest["skipped"])
    wall = float(manifest.get("wall_s") or 0.0)
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    (out / "items_failed").write_text(f"{len(manifest['failed'])}\n")
    (out / "items_per_second").write_text(f"{n / wall if wall > 0 else 0.0:.6g}\n")


def _redo(args) -> int:
    from astroflow import config as run_config
    from astroflow import redo
    from astroflow.registry import get_pipeline

    items = [i for i in args.items.split(",") if i]
    if args.items_file:
        items += [line.strip() for line in args.items_file.read_text().splitlines() if line.strip()]
    if not items:
        print("astroflow redo: give --items KEY[,KEY...] or --items-file FILE", file=sys.stderr)
        return 2
    steps = _parse_sets(args.sets, lambda m: print(f"astroflow redo: {m}", file=sys.stderr))
    if steps is None:
        return 2
    unknown = set(steps) - {args.step}
    if unknown:
        print(f"astroflow redo: --set names step(s) {sorted(unknown)}, not {args.step}", file=sys.stderr)
        return 2
    cfg = run_config.load(args.run_dir)
    pipeline = get_pipeline(cfg.pipeline)
    if args.dry_run:
        print(f"would recompute {len(items)} item(s) of {args.step}" + (f" with {steps[args.step]}" if steps else "")
              + ("" if args.no_downstream else f", then bring {', '.join(sorted(pipeline.downstream_closure(args.step) - {args.step})) or 'nothing else'} up to date"))
        return 0
    redo.request(args.run_dir, args.step, items, steps.get(args.step), clear=args.clear)
    if args.workers:
        cfg.run.workers = args.workers
    return _run_and_report(pipeline, cfg, args.run_dir, only=args.step if args.no_downstream else None,
                           start=None if args.no_downstream else args.step, progress=not args.no_progress)


def _parse_sets(sets: list[str], error) -> dict[str, dict] | None:
    steps: dict[str, dict] = {}
    for item in sets:
        key, _, value = item.partition("=")
        step, _, param = key.partition(".")
        if not param or not _:
            error(f"--set {item}: expected STEP.PARAM=VALUE")
            return None
        try:
            steps.setdefault(step, {})[param] = json.loads(value)
        except json.JSONDecodeError:
            steps.setdefault(step, {})[param] = value
    return steps


def _annotation_text(annotation) -> tuple[str, list | None]:
    """('int', None), ('one of', ['a', 'b']), ('list, comma-separated', None) for a field type."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return "one of", list(typing.get_args(annotation))
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)) and len(args) == 1:
        return _annotation_text(args[0])
    if origin is typing.Annotated:
        return _annotation_text(args[0])
    if origin is list:
        return "list, comma-separated", None
    if isinstance(annotation, type):
        from pydantic import BaseModel

        if issubclass(annotation, BaseModel):
            return "JSON", None
        return {"Path": "path", "str": "text"}.get(annotation.__name__, annotation.__name__), None
    return str(annotation).replace("typing.", ""), None


def _model_flags(parser: argparse.ArgumentParser, model, title: str, skip: set[str] = frozenset()) -> list[str]:
    """One ``--kebab-name`` flag per field of a pydantic model (but ``skip``), with its type,
    default and choices in the help; booleans get ``--x/--no-x``.  Returns the field names."""
    from pydantic_core import PydanticUndefined

    group = parser.add_argument_group(title)
    names = [n for n in model.model_fields if n not in skip]
    for name in names:
        f = model.model_fields[name]
        kind, choices = _annotation_text(f.annotation)
        default = "required" if f.is_required() else f"default {f.default!r}" if f.default is not PydanticUndefined else "default: computed"
        detail = f"({kind}{': ' + ', '.join(map(str, choices)) if choices else ''}; {default})"
        help_text = f"{f.description or ''} {detail}".strip().replace("%", "%%")
        flag = "--" + name.replace("_", "-")
        if f.annotation is bool:
            group.add_argument(flag, dest=f"f_{name}", default=None, action=argparse.BooleanOptionalAction, help=help_text)
        else:
            group.add_argument(flag, dest=f"f_{name}", default=None, metavar="VALUE",
                               choices=[str(c) for c in choices] if choices else None, help=help_text)
    return names


def _collect(args, names: list[str], model) -> dict:
    out = {}
    for name in names:
        value = getattr(args, f"f_{name}")
        if value is None:
            continue
        kind, _ = _annotation_text(model.model_fields[name].annotation)
        if kind.startswith("list"):
            value = [v for v in value.split(",") if v]
        elif kind == "JSON":
            value = json.loads(value)
        out[name] = value
    return out


def _pipeline_command(command: str, name: str, rest: list[str]) -> int:
    from astroflow import config as run_config
    from astroflow.registry import get_pipeline

    pipeline = get_pipeline(name)
    parser = argparse.ArgumentParser(prog=f"astroflow {command} {name}", description=pipeline.doc or None,
                                     epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    if command in ("run", "demo", "init"):
        parser.add_argument("--config", type=Path, help="run configuration file (TOML or YAML)")
        parser.add_argument("--out", "--run-dir", dest="out", type=Path, help="run directory")
        parser.add_argument("--workers", type=int, help="parallel processes (default: the core count)")
        parser.add_argument("--db-url", help="the calibration library's database ([run] db_url; default: "
                            "ASTROFLOW_DB_URL, else SQLite in the run directory)")
        parser.add_argument("--set", dest="sets", action="append", default=[], metavar="STEP.PARAM=VALUE",
                            help="a step parameter, e.g. --set ses_mes.shard_size=20")
    if command in ("run", "demo"):
        parser.add_argument("--force", action="store_true", help="redo the selected steps from scratch")
        parser.add_argument("--retry-failed", action="store_true", help="also redo the failed items")
        parser.add_argument("--dry-run", action="store_true", help="show what would be recomputed, and why")
        parser.add_argument("--only", metavar="STEP")
        parser.add_argument("--from", dest="start", metavar="STEP")
        parser.add_argument("--until", metavar="STEP")
        parser.add_argument("--no-progress", action="store_true")
    if command == "init":
        parser.add_argument("--partition", help="the run's partition value (a night...), last-night or tonight")
        parser.add_argument("--timezone", help="the site's time zone, for --partition last-night and tonight")
        parser.add_argument("--restart-hour", type=int, help="the site's restart hour (local), for last-night")
        parser.add_argument("--arrival", default="", help="a file that arrived (or a folder to sweep): admit it "
                            "into the run once complete; empty: none")
    sim_fields = []
    if command in ("simulate", "demo"):
        if pipeline.simulate is None:
            print(f"astroflow: pipeline {name} has no simulator yet", file=sys.stderr)
            return 2
        if command == "simulate":
            parser.add_argument("--out", type=Path, required=True, help="folder for the simulated data")
        sim_fields = _model_flags(parser, pipeline.simulate_options, "simulation")
    settings_fields = (
        _model_flags(parser, pipeline.settings, f"{name} settings", skip=set(sim_fields))
        if command != "simulate" else []
    )
    args = parser.parse_args(rest)

    if command == "simulate":
        opts = pipeline.simulate_options.model_validate(_collect(args, sim_fields, pipeline.simulate_options))
        settings = pipeline.simulate(args.out, opts)
        print(json.dumps({"data": str(args.out), "settings": settings}, indent=1, default=str))
        return 0

    file_data = run_config.read_config_file(args.config) if args.config else {}
    out = args.out or (Path(file_data["run"]["out"]) if "out" in file_data.get("run", {}) else None)
    file_data.get("run", {}).pop("out", None)
    if out is None:
        parser.error("--out RUNDIR is required (or [run] out = ... in the configuration)")
    settings = _collect(args, settings_fields, pipeline.settings)
    if command == "demo":
        opts = pipeline.simulate_options.model_validate(_collect(args, sim_fields, pipeline.simulate_options))
        settings = {**_simulate_once(pipeline, out / "input", opts), **settings}
    steps = _parse_sets(args.sets, parser.error)
    runner = {k: v for k, v in (("workers", args.workers), ("db_url", args.db_url)) if v}
    if command in ("run", "init") and not args.config and (out / run_config.RUN_FILE).exists():
        # resume with the configuration the run was started with; flags still override it
        file_data = run_config.load(out).model_dump(exclude={"code_version"})
    if command == "init" and args.partition:
        if pipeline.partition is None:
            parser.error(f"pipeline {name} is not partitioned (it declares no partition setting)")
        settings[pipeline.partition] = _partition_value(args)
    cfg = run_config.resolve(pipeline, file_data, settings=settings, runner=runner, steps=steps)
    if command == "init":
        from astroflow.runner import prepare, refuse_inside_raw

        refuse_inside_raw(pipeline, cfg, out.absolute())
        out.mkdir(parents=True, exist_ok=True)
        prepare(cfg, out)
        if args.arrival:
            if pipeline.arrivals is None:
                parser.error(f"pipeline {name} declares no arrivals (--arrival)")
            from astroflow.arrivals import receive

            receive(out, pipeline.arrivals, cfg.typed_settings(pipeline), args.arrival)
        print(out / run_config.RUN_FILE)
        return 0
    if args.dry_run:
        from astroflow.runner import preview

        for w in preview(pipeline, cfg, out, retry_failed=args.retry_failed, only=args.only, start=args.start,
                         until=args.until):
            print(w if isinstance(w, str) else w.summary())
        return 0
    return _run_and_report(pipeline, cfg, out, force=args.force, retry_failed=args.retry_failed, only=args.only,
                           start=args.start, until=args.until, progress=not args.no_progress)


def _partition_value(args) -> str:
    from astroflow.arrivals import resolve_partition

    return resolve_partition(args.partition, args.timezone or "UTC",
                             12 if args.restart_hour is None else args.restart_hour)


def _run_and_report(pipeline, cfg, out: Path, **kw) -> int:
    from astroflow import runner as embedded
    from astroflow.report import write_report
    from astroflow.status import collect, render_text, write_metrics

    result = embedded.run(pipeline, cfg, out, **kw)
    for change in result.changes:
        print(f"configuration changed: {change}", file=sys.stderr)
    status = collect(out)
    print(render_text(status))
    write_metrics(out, status)
    report = write_report(out)
    for s in result.steps.values():
        if s.state != "done":
            print(f"step {s.name}: {s.state}: {s.message}", file=sys.stderr)
    if result.failed_items:
        print(f"{result.failed_items} item(s) failed: astroflow status {out}; astroflow run ... --retry-failed "
              "redoes them", file=sys.stderr)
    print(f"\noutputs: {out}\nstatus:  astroflow status {out}\nreport:  {report}")
    return 0 if result.ok else 1


def _simulate_once(pipeline, data_dir: Path, opts) -> dict:
    """Simulate the demo data unless the same options already produced it (so a demo resumes)."""
    from astroflow.atomic import write_json

    marker = data_dir / ".simulated.json"
    wanted = opts.model_dump(mode="json")
    if marker.exists():
        done = json.loads(marker.read_text())
        if done["options"] == wanted:
            return done["settings"]
    print(f"simulating {pipeline.name} data into {data_dir} ...", file=sys.stderr)
    settings = pipeline.simulate(data_dir, opts)
    write_json(marker, {"options": wanted, "settings": settings})
    return settings


if __name__ == "__main__":
    sys.exit(main())
