"""``astroflow vison mksession --inputs FILE [--publish DIR]``: session folders for ELVIS.

Replaces the cook-book's "Making Sessions" (``vis_mksession.py -j sessions_builder_*.json``) and
its step 5, copying the sessions to the operators' share (MSSL3M/D5).  The inputs (JSON with
``#`` comments, TOML or YAML, as for mkscripts) name ``inpath`` (the scripts' folder),
``outpath`` and ``sessions`` {session: [test, ...] in acquisition order}.

Each session folder gets its scripts (copies), ``TEST_SEQUENCE_{session}.txt`` (one script file
name per line, the order ELVIS runs them) and ``CHECK_SUMS_{session}.txt`` (md5sum's format:
``md5sum -c`` on the share verifies the copy).  Every session is checked before anything is
written: a test with no script in ``inpath``, or with more than one (scripts of two dates or ELVIS
versions), is a named error listing the session, the test and the files, and nothing is
written; so is a script whose md5 differs from the CHECK_SUMS file that lists it (edited after
mkscripts wrote it).  A session folder is built beside its final place and swapped in whole, so
that a reader (or ELVIS) never sees half a session; ``--publish DIR`` copies the sessions the
same way into DIR (which must exist: the mounted share) and verifies the copies.

Deviations from vison: tests are matched by the exact test name parsed from the script name
(vison globbed ``*TEST*xlsx``, so ``PTC02`` matched every PTC02_* script), and vison printed the
duplicate case but went on with the first file; here both cases stop.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import uuid
from pathlib import Path

from pydantic import BaseModel, ConfigDict, field_validator

from astroflow.errors import ConfigError
from steps.vison.mkscripts import find_scripts, md5, read_inputs, validated
from steps.vison.science import scripts as sc

_MD5 = re.compile(r"[0-9a-f]{32}")


class SessionError(ConfigError):
    """Scripts missing or duplicated for the sessions asked (the message lists each case)."""


class SessionInputs(BaseModel):
    """``astroflow vison mksession`` inputs (the cook-book's ``sessions_builder_*.json``)."""

    model_config = ConfigDict(extra="forbid")

    inpath: Path
    outpath: Path
    sessions: dict[str, list[str]]

    @field_validator("sessions")
    @classmethod
    def _sessions(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        if not value:
            raise ValueError("no session given")
        for session, tests in value.items():
            if not session or any(c in session for c in "/\\ .") or session.startswith("-"):
                raise ValueError(f"session name {session!r} cannot name a folder")
            if not tests:
                raise ValueError(f"session {session} has no test")
            twice = sorted({t for t in tests if tests.count(t) > 1})
            if twice:
                raise ValueError(f"session {session} names {', '.join(twice)} twice (a repeat needs its own "
                                 "script, e.g. BIAS02.2)")
        return {s: [t.strip() for t in tests] for s, tests in value.items()}


def recorded_sums(folder: Path) -> dict[str, set[str]]:
    """Script name -> the md5s the folder's CHECK_SUMS files give it."""
    sums: dict[str, set[str]] = {}
    for path in folder.glob("CHECK_SUMS_*.txt"):
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) == 2:
                digest, name = parts if _MD5.fullmatch(parts[0]) else parts[::-1]  # vison wrote NAME<tab>HASH
                if _MD5.fullmatch(digest):
                    sums.setdefault(name.lstrip("*"), set()).add(digest)
    return sums


def plan(inputs: SessionInputs) -> dict[str, list[Path]]:
    """Session -> its scripts in order; raises :class:`SessionError` naming every missing,
    duplicated or altered script."""
    inpath = inputs.inpath
    if not inpath.is_dir():
        raise SessionError(f"inpath {inpath} is not a folder (where mkscripts wrote the scripts)")
    found = find_scripts(inpath)
    sums = recorded_sums(inpath)
    problems: list[str] = []
    out: dict[str, list[Path]] = {}
    for session, tests in inputs.sessions.items():
        out[session] = []
        for test in tests:
            paths = found.get(test, [])
            if not paths:
                problems.append(f"session {session}: no script for test {test} in {inpath} "
                                f"(looked for vis_CalCamp_{test}_DDMmmYY_vELVIS.xlsx)")
            elif len(paths) > 1:
                problems.append(f"session {session}: {len(paths)} scripts for test {test} in {inpath}: "
                                f"{', '.join(p.name for p in paths)} (keep one)")
            else:
                path = paths[0]
                if path.name in sums and md5(path) not in sums[path.name]:
                    problems.append(f"session {session}: script {path} for test {test} does not match its "
                                    "CHECK_SUMS md5 (edited after it was written?)")
                out[session].append(path)
    if problems:
        raise SessionError("cannot build the sessions:\n  " + "\n  ".join(problems))
    return out


def replace_folder(dest: Path, files: dict[str, Path | str]) -> None:
    """``dest`` made to hold exactly ``files`` (name -> source path, or text): built in a hidden
    folder beside it, then swapped in whole; the previous folder is removed after the swap."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    token = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp = dest.with_name(f".{dest.name}.tmp-{token}")
    old = dest.with_name(f".{dest.name}.old-{token}")
    tmp.mkdir()
    try:
        for name, source in files.items():
            target = tmp / name
            if isinstance(source, Path):
                shutil.copyfile(source, target)
            else:
                target.write_text(source)
            with open(target, "rb") as fh:
                os.fsync(fh.fileno())
        if dest.exists():
            os.replace(dest, old)
        os.replace(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


def session_files(session: str, scripts: list[Path]) -> dict[str, Path | str]:
    sequence = f"TEST_SEQUENCE_{session}.txt"
    files: dict[str, Path | str] = {p.name: p for p in scripts}
    files[sequence] = "".join(f"{p.name}\n" for p in scripts)
    sums = [(p.name, md5(p)) for p in scripts]
    files[f"CHECK_SUMS_{session}.txt"] = sc.checksums_text(sums)
    return files


def verify(folder: Path) -> list[str]:
    """The files of a session folder whose md5 differs from its CHECK_SUMS (empty: all good)."""
    bad = []
    for sums in folder.glob("CHECK_SUMS_*.txt"):
        for line in sums.read_text().splitlines():
            digest, name = line.split(None, 1)
            if not (folder / name).is_file() or md5(folder / name) != digest:
                bad.append(str(folder / name))
    return bad


def build_sessions(inputs: SessionInputs, publish: Path | None = None) -> dict:
    """Write (and publish) the session folders; returns session -> its sequence."""
    if publish is not None and not publish.is_dir():
        raise SessionError(f"--publish {publish} is not a folder (is the operators' share mounted?)")
    planned = plan(inputs)
    result = {}
    for session, scripts in planned.items():
        folder = inputs.outpath / session
        replace_folder(folder, session_files(session, scripts))
        if publish is not None:
            shared = publish / session
            replace_folder(shared, {p.name: p for p in sorted(folder.iterdir())})
            bad = verify(shared)
            if bad:
                raise SessionError(f"published copies differ from their check sums: {', '.join(bad)}")
        result[session] = [p.name for p in scripts]
    return result


def main(argv: list[str] | None = None) -> int:
    """Build session folders with TEST_SEQUENCE files from written scripts (vis_mksession.py)."""
    parser = argparse.ArgumentParser(prog="astroflow vison mksession", description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", "-j", required=True, metavar="FILE",
                        help="inputs: inpath, outpath, sessions {session: [tests]} (JSON, TOML or YAML)")
    parser.add_argument("--publish", metavar="DIR", type=Path,
                        help="also copy the session folders into DIR (the operators' share)")
    parser.add_argument("--json", action="store_true", help="print the sessions as JSON")
    args = parser.parse_args(argv)
    path = Path(args.inputs)
    try:
        inputs = validated(SessionInputs, read_inputs(path), path)
        result = build_sessions(inputs, args.publish)
    except ConfigError as exc:
        print(f"astroflow vison mksession: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        for session, names in result.items():
            print(f"{session}: {len(names)} scripts -> {inputs.outpath / session}"
                  + (f" and {args.publish / session}" if args.publish else ""))
    return 0
