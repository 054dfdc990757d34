"""``astroflow vison config-check FILE``: the run configuration checked against the data before any
work (the runbook's "check the configuration file" before ``vison_run``; issue item 9).

The file is validated as ``astroflow run vison --config FILE`` validates it (unknown tests,
serial keys, offset keys...), then held against the data: the data root and each day folder must
exist and hold an EXP_LOG that reads (a missing day folder fails here, not hours into a
session).  What may still come is reported, not failed: a test not (yet) in the EXP_LOG, ObsID
limits with no row, serials in the EXP_LOG other than the configured ones (the flags step raises
WRONG_ROE_CONF for them).  Exit status 0 when the configuration can run, 2 when it cannot.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from astroflow import config
from astroflow.errors import ConfigError


def check(settings) -> tuple[list[str], list[str]]:
    """(problems that stop a run, warnings) of validated :class:`VisonSettings` against the data."""
    from steps.vison import elvis, tasks

    problems: list[str] = []
    warnings: list[str] = []
    root = Path(settings.data_root)
    if not root.is_dir():
        return [f"data_root {root} is not a folder"], warnings
    folders = settings.folders()
    if not folders:
        return [f"data_root {root} holds no day folder with an EXP_LOG_*.txt"], warnings
    readable = []
    for folder in folders:
        if not folder.is_dir():
            problems.append(f"day folder {folder} does not exist")
        elif not elvis.find_explogs(folder):
            problems.append(f"day folder {folder} holds no EXP_LOG_*.txt")
        else:
            readable.append(folder)
    try:
        log = elvis.read_explogs(readable, settings.elvis).to_pylist() if readable else []
    except elvis.ElvisFormatError as exc:
        return [*problems, str(exc)], warnings
    for test in settings.tests:
        if test in settings.obsid_limits:
            lo, hi = settings.obsid_limits[test]
            if not any(lo <= r["ObsID"] <= hi for r in log):
                warnings.append(f"{test}: no EXP_LOG row within its ObsID limits {lo}..{hi} (yet)")
        elif not any(r["test"] == test for r in log):
            warnings.append(f"{test}: not in the EXP_LOG(s) (yet)")
    for key, column in (("CCD1", "sn_ccd1"), ("CCD2", "sn_ccd2"), ("CCD3", "sn_ccd3"), ("ROE", "sn_roe"),
                        ("RPSU", "sn_rpsu")):
        seen = sorted({str(r[column]) for r in log if r.get(column) is not None})
        if key in settings.serials and any(s != settings.serials[key] for s in seen):
            warnings.append(f"{key} serial in the EXP_LOG ({', '.join(seen)}) is not the configured "
                            f"{settings.serials[key]} (WRONG_ROE_CONF)")
    block_default = type(settings).model_fields["block"].default
    if settings.block == block_default and any(tasks.resolve(t) is tasks.COSMETICS00 for t in settings.tests):
        warnings.append(f"block not set: the cosmetics masks will be EUC_MASK_{block_default}_CCD<n>_SN_<serial>.fits "
                        "(set block, vison's BLOCKID)")
    return problems, warnings


def config_check(argv: list[str]) -> int:
    """Check a vison configuration against the data before any work."""
    parser = argparse.ArgumentParser(prog="astroflow vison config-check", description=__doc__.split("\n\n")[0])
    parser.add_argument("file", type=Path, help="the run configuration (TOML or YAML)")
    parser.add_argument("--json", action="store_true", help="print the outcome as JSON")
    args = parser.parse_args(argv)
    from steps.vison.pipeline import VISON
    from steps.vison.settings import VisonSettings

    try:
        cfg = config.resolve(VISON, config.read_config_file(args.file))
        problems, warnings = check(VisonSettings(**cfg.settings))
    except ConfigError as exc:
        problems, warnings = [str(exc)], []
    if args.json:
        print(json.dumps({"file": str(args.file), "ok": not problems, "problems": problems, "warnings": warnings}))
    else:
        for text in problems:
            print(f"astroflow vison config-check: {args.file}: {text}", file=sys.stderr)
        for text in warnings:
            print(f"warning: {text}")
        if not problems:
            print(f"{args.file}: the configuration can run")
    return 2 if problems else 0
