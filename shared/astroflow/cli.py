"""The ``astroflow`` command.

Heavy libraries are imported inside the commands, so that quick tools (``astroflow tec
modshift``) start in a fraction of a second.  Exit codes: 0 success, 1 the run finished with
failed or blocked steps, 2 usage or configuration error, 3 a unit failed (``astroflow step``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

TOOLS = {
    # pipeline-specific tools the runbooks name: "astroflow PIPELINE TOOL ..." -> module:function
    ("tec", "modshift"): "steps.tec.modshift_cli:main",
    **{("elixer", t): f"steps.elixer.cli:{t.replace('-', '_')}" for t in ("run", "merge", "merge-unique", "recover", "prep-recover", "report-db", "count")},
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) >= 2 and (argv[0], argv[1]) in TOOLS:
        import importlib

        module, func = TOOLS[(argv[0], argv[1])].split(":")
        return getattr(importlib.import_module(module), func)(argv[2:])
    from astroflow.errors import AstroflowError

    try:
        return _dispatch(argv)
    except AstroflowError as exc:
        print(f"astroflow: {exc}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="astroflow", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser("run", help="run a pipeline with the embedded runner", add_help=False)
    run.add_argument("pipeline")
    demo = sub.add_parser("demo", help="simulate a data set and run the pipeline on it", add_help=False)
    demo.add_argument("pipeline")
    sim = sub.add_parser("simulate", help="write a simulated data set in the real formats", add_help=False)
    sim.add_argument("pipeline")
    init = sub.add_parser("init", help="write a run directory's resolved configuration", add_help=False)
    init.add_argument("pipeline")
    st = sub.add_parser("status", help="expected vs produced for a run directory")
    st.add_argument("run_dir", type=Path)
    st.add_argument("--json", action="store_true", help="machine-readable output")
    rep = sub.add_parser("report", help="(re)write RUN/report.html")
    rep.add_argument("run_dir", type=Path)
    pl = sub.add_parser("plan", help="plan a step's shards; prints the shard ids as JSON")
    pl.add_argument("pipeline")
    pl.add_argument("step")
    pl.add_argument("--run-dir", type=Path, required=True)
    pl.add_argument("--force", action="store_true")
    sp = sub.add_parser("step", help="run one shard of a step (the container entry point)")
    sp.add_argument("pipeline")
    sp.add_argument("step")
    sp.add_argument("--run-dir", type=Path, required=True)
    sp.add_argument("--shard", type=int, required=True)
    sp.add_argument("--force", action="store_true")
    rd = sub.add_parser("render", help="write the Argo WorkflowTemplate(s) of pipelines")
    rd.add_argument("pipelines", nargs="*", help="default: all")
    rd.add_argument("--out", type=Path, default=Path("argo"))
    sb = sub.add_parser("submit", help="submit a pipeline to an Argo server")
    sb.add_argument("pipeline")
    sb.add_argument("--host", required=True)
    sb.add_argument("--token", default=None)
    sb.add_argument("--namespace", default="argo")
    sb.add_argument("-p", "--parameter", action="append", default=[], metavar="KEY=VALUE")
    for pipe in dict.fromkeys(p for p, _ in TOOLS):
        tools = ", ".join(t for p, t in TOOLS if p == pipe)
        sub.add_parser(pipe, help=f"{pipe} tools: {tools} (astroflow {pipe} TOOL --help)", add_help=False)
    return parser


def _dispatch(argv: list[str]) -> int:
    parser = _parser()
    args, rest = parser.parse_known_args(argv)
    if args.command in ("run", "demo", "simulate", "init"):
        return _pipeline_command(args.command, args.pipeline, rest)
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
    if args.command == "plan":
        from astroflow import config as run_config
        from astroflow.executor import plan
        from astroflow.registry import get_pipeline

        cfg = run_config.load(args.run_dir)
        if args.step not in cfg.enabled_steps(get_pipeline(cfg.pipeline)):
            print("[]")  # a disabled step fans out to nothing
            return 0
        p = plan(args.run_dir, args.step, force=args.force)
        print(json.dumps(list(range(p.n_shards)), separators=(",", ":")))
        return 0
    if args.command == "step":
        return _step(args)
    if args.command == "render":
        from astroflow import argo
        from astroflow.registry import PIPELINES

        for name in args.pipelines or list(PIPELINES):
            print(argo.render(name, args.out))
        argo.sync_chart(args.out, Path("helm/astroflow"))
        return 0
    if args.command == "submit":
        from astroflow import argo

        params = dict(p.split("=", 1) for p in args.parameter)
        print(json.dumps(argo.submit(args.pipeline, args.host, args.token, args.namespace, params), indent=1))
        return 0
    parser.error(f"{args.command}: use `astroflow {args.command} TOOL --help`")
    return 2


def _step(args) -> int:
    import logging

    from astroflow.executor import Unit, execute

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        m = execute(args.run_dir, Unit(args.step, args.shard), force=args.force)
    except Exception as exc:  # a unit failure: the pod fails and Argo retries it
        print(f"astroflow step {args.step} shard {args.shard}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 3
    if m.get("skipped_unit"):
        print(f"{args.step} shard {args.shard}: already committed", file=sys.stderr)
    else:
        print(f"{args.step} shard {args.shard}: {len(m['ok'])} ok, {len(m['failed'])} failed, "
              f"{len(m['skipped'])} skipped in {m['wall_s']} s", file=sys.stderr)
    return 0


def _model_flags(parser: argparse.ArgumentParser, model, title: str, skip: set[str] = frozenset()) -> list[str]:
    """Add one ``--kebab-name`` flag per field of a pydantic model (but ``skip``); returns the names."""
    group = parser.add_argument_group(title)
    names = [n for n in model.model_fields if n not in skip]
    for name in names:
        field = model.model_fields[name]
        kind = "list, comma-separated" if "list" in str(field.annotation) else ""
        help_text = " ".join(x for x in (field.description or "", kind) if x) or None
        group.add_argument("--" + name.replace("_", "-"), dest=f"f_{name}", default=None, metavar="VALUE", help=help_text)
    return names


def _collect(args, names: list[str], model) -> dict:
    out = {}
    for name in names:
        value = getattr(args, f"f_{name}")
        if value is None:
            continue
        if "list" in str(model.model_fields[name].annotation):
            value = [v for v in value.split(",") if v]
        out[name] = value
    return out


def _pipeline_command(command: str, name: str, rest: list[str]) -> int:
    from astroflow import config as run_config
    from astroflow.registry import get_pipeline

    pipeline = get_pipeline(name)
    parser = argparse.ArgumentParser(prog=f"astroflow {command} {name}", description=pipeline.doc or None)
    if command in ("run", "demo", "init"):
        parser.add_argument("--config", type=Path, help="run configuration file (TOML or YAML)")
        parser.add_argument("--out", "--run-dir", dest="out", type=Path, help="run directory")
        parser.add_argument("--workers", type=int, help="parallel processes (default: the core count)")
        parser.add_argument("--set", dest="sets", action="append", default=[], metavar="STEP.PARAM=VALUE",
                            help="a step parameter, e.g. --set ses_mes.shard_size=20")
    if command in ("run", "demo"):
        parser.add_argument("--force", action="store_true", help="redo the selected steps")
        parser.add_argument("--retry-failed", action="store_true", help="re-run only the failed items")
        parser.add_argument("--only", metavar="STEP")
        parser.add_argument("--from", dest="start", metavar="STEP")
        parser.add_argument("--until", metavar="STEP")
        parser.add_argument("--no-progress", action="store_true")
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
    steps: dict[str, dict] = {}
    for item in args.sets:
        key, _, value = item.partition("=")
        step, _, param = key.partition(".")
        if not param:
            parser.error(f"--set {item}: expected STEP.PARAM=VALUE")
        try:
            steps.setdefault(step, {})[param] = json.loads(value)
        except json.JSONDecodeError:
            steps.setdefault(step, {})[param] = value
    runner = {"workers": args.workers} if args.workers else {}
    if command == "run" and not args.config and (out / run_config.RUN_FILE).exists():
        # resume with the configuration the run was started with; flags still override it
        file_data = run_config.load(out).model_dump(exclude={"code_version"})
    cfg = run_config.resolve(pipeline, file_data, settings=settings, runner=runner, steps=steps)
    if command == "init":
        out.mkdir(parents=True, exist_ok=True)
        print(run_config.save(cfg, out))
        return 0

    from astroflow import runner as embedded
    from astroflow.report import write_report
    from astroflow.status import collect, render_text

    result = embedded.run(
        pipeline, cfg, out, force=args.force, retry_failed=args.retry_failed,
        only=args.only, start=args.start, until=args.until, progress=not args.no_progress,
    )
    print(render_text(collect(out)))
    report = write_report(out)
    for s in result.steps.values():
        if s.state != "done":
            print(f"step {s.name}: {s.state}: {s.message}", file=sys.stderr)
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
