"""``astroflow vison mkscripts --inputs FILE``: the ELVIS acquisition scripts of a campaign.

Replaces the cook-book's "Writing Test Scripts" (``vis_mkscripts.py -j scripts_inputs_*.json``).
The inputs file (JSON as the cook-book's, with ``#`` comments and trailing commas allowed, or TOML
or YAML) names the hardware serials, the ELVIS version, the chamber, the output folder and the
tests (``toWrite`` {test: 0/1} as vison's, or a ``tests`` list; a label such as ``PTC02WAVE``
writes one script per wavelength, a specific name such as ``PTC02_730`` just that one).  It is
validated before anything is written: serials still holding the template's placeholders
(``14XXX-XX-XX``, ``FMNN``), an unknown ELVIS version, chamber or test are named errors.

Written to ``outpath``, each atomically, ``CHECK_SUMS`` last (its presence means a complete set):

* ``vis_CalCamp_{TEST}_{DDMmmYY}_v{ELVIS}.xlsx`` per test and wavelength: the register names in
  the first column, one column per script column with the cumulative frames, then ``End``
  (vison's ``Script.write``);
* ``TESTS_INVENTORY_{DDMmmYY}.txt``: when, which CHECK_SUMS, versions, chamber profile, serials;
  per test its columns, minutes, frames and frames per column; the frame and minute totals;
* ``TESTS_SCHEDULER_{DDMmmYY}.xlsx``: sheets ``Meta`` and ``Tests`` (Test, Ncols, Nframes,
  Duration_min), the rows the campaign scheduler copies;
* ``CHECK_SUMS_{DDMmmYY}.txt``: md5 of every script in md5sum's own format, so that
  ``md5sum -c CHECK_SUMS_*.txt`` verifies the folder (vison wrote ``NAME<tab>HASH``, which
  md5sum cannot check).

Deviations from vison: the structures are the Tasks' own defaults (``set_inpdefaults``: CHINJ01's
IG1 2-7 V, TP01's TOI_TP 200-8000 us), as the issue gives them, where vison's ``campaign.py``
overrode some; exposure times are written to 1 ms; script names use English month names
whatever the locale; the chamber profile (``data/chamber_{CHAMBER}.json``) carries a version that
the inventory and scheduler record.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import re
import sys
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from astroflow import __version__
from astroflow.atomic import atomic_path, write_text
from astroflow.errors import ConfigError
from steps.vison.science import scripts as sc

DATA = Path(__file__).parent / "data"
REGISTERS_FILE = DATA / "scripts_registers.json"
TESTS_FILE = DATA / "scripts_tests.json"
_CCD_SERIAL = re.compile(r"^(CCD273-)?\d{5}-\d{2}-\d{2}$")
_PLACEHOLDER = re.compile(r"XX|^[A-Z]*NN$")


def strip_json_comments(text: str) -> str:
    """JSON with ``#`` comments to end of line and trailing commas (what a person leaves when
    commenting out the last entry) made plain JSON; ``#`` inside strings is kept.  Line numbers
    are kept, so a decoding error still points at the right line."""
    out: list[str] = []
    in_string = escaped = in_comment = False
    for ch in text:
        if in_comment:
            if ch == "\n":
                in_comment = False
                out.append(ch)
            continue
        if in_string:
            out.append(ch)
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
            continue
        if ch == "#":
            in_comment = True
            continue
        if ch in "}]":
            i = len(out) - 1
            while i >= 0 and out[i] in " \t\r\n":
                i -= 1
            if i >= 0 and out[i] == ",":
                out[i] = " "
        elif ch == '"':
            in_string = True
        out.append(ch)
    return "".join(out)


def read_inputs(path: str | Path) -> dict:
    """An inputs file as a dict: ``.json`` (comments allowed), ``.yaml``/``.yml`` or TOML."""
    from astroflow.config import read_config_file

    path = Path(path)
    if path.suffix != ".json":
        return read_config_file(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read inputs: {exc.strerror}") from exc
    try:
        data = json.loads(strip_json_comments(text))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the inputs must be an object of keys")
    return data


def validated(model: type[BaseModel], data: dict, path: Path) -> Any:
    from astroflow.config import explain

    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(explain(exc, heading=f"{path}: invalid inputs:")) from None


def load_json(path: Path) -> dict:
    return json.loads(path.read_text())


def chamber_file(chamber: str) -> Path:
    return DATA / f"chamber_{chamber}.json"


def chambers() -> list[str]:
    return sorted(p.stem.removeprefix("chamber_") for p in DATA.glob("chamber_*.json"))


def labels() -> tuple[dict, list[str]]:
    """(first-wave test specs, the later tests vison writes that astroflow does not yet)."""
    data = load_json(TESTS_FILE)
    return data["tests"], data["later"]


class Equipment(BaseModel):
    """The hardware serials ELVIS writes into every frame's header and EXP_LOG row."""

    model_config = ConfigDict(extra="forbid")

    operator: str = "unk"
    sn_ccd1: str
    sn_ccd2: str
    sn_ccd3: str
    sn_roe: str
    sn_rpsu: str

    @field_validator("sn_ccd1", "sn_ccd2", "sn_ccd3", "sn_roe", "sn_rpsu", "operator")
    @classmethod
    def _serial(cls, value: str, info) -> str:
        value = value.strip()
        if not value or any(c.isspace() for c in value):
            raise ValueError(f"{info.field_name} {value!r} must be one word")
        if info.field_name != "operator" and _PLACEHOLDER.search(value):
            raise ValueError(f"{info.field_name} {value!r} is the template's placeholder: ask the campaign "
                             "director for the serial")
        if info.field_name.startswith("sn_ccd") and not _CCD_SERIAL.match(value):
            raise ValueError(f"{info.field_name} {value!r} is not a CCD273 serial (NNNNN-NN-NN, "
                             "optionally CCD273-NNNNN-NN-NN)")
        return value

    @model_validator(mode="after")
    def _distinct_ccds(self):
        ccds = [self.sn_ccd1, self.sn_ccd2, self.sn_ccd3]
        if len(set(ccds)) != 3:
            raise ValueError(f"the three CCD serials must differ: {ccds}")
        return self


class ScriptInputs(BaseModel):
    """``astroflow vison mkscripts`` inputs (the cook-book's ``scripts_inputs_*.json``)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    equipment: Equipment
    elvis: str
    chamber: str = Field(validation_alias=AliasChoices("CHAMBER", "chamber"))
    chamber_version: int | None = Field(None, description="refuse a chamber profile of another version")
    camptype: str = "Full"
    outpath: Path
    toWrite: dict[str, bool] | None = None
    tests: list[str] | None = None
    date: dt.date | None = Field(None, description="the scripts' date tag (default: today, UTC)")

    @field_validator("elvis")
    @classmethod
    def _elvis(cls, value: str) -> str:
        sc.family(value, load_json(REGISTERS_FILE)["families"])
        return value

    @field_validator("chamber")
    @classmethod
    def _chamber(cls, value: str) -> str:
        if not chamber_file(value).is_file():
            raise ValueError(f"no chamber profile {chamber_file(value).name} in {DATA}; known: {', '.join(chambers())}")
        return value

    @field_validator("camptype")
    @classmethod
    def _camptype(cls, value: str) -> str:
        if value != "Full":
            raise ValueError(f"camptype {value!r}: only the Full campaign's tests are written")
        return value

    @model_validator(mode="after")
    def _selection(self):
        if (self.toWrite is None) == (self.tests is None):
            raise ValueError("give the tests to write as toWrite {TEST: 0/1} or as a tests list (one of them)")
        names = self.selected()
        if not names:
            raise ValueError("no test selected to write")
        specs, later = labels()
        specific = {n: label for label, spec in specs.items() for n in sc.script_names(label, spec)}
        for name in names:
            if name in later:
                raise ValueError(f"test {name}: astroflow does not write its script yet "
                                 f"(first wave: {', '.join(specs)})")
            if name not in specs and name not in specific:
                raise ValueError(f"unknown test {name!r}; known: {', '.join(specs)} (or one of {', '.join(specific)})")
        if len(set(names)) != len(names):
            raise ValueError(f"tests named twice: {sorted({n for n in names if names.count(n) > 1})}")
        return self

    def selected(self) -> list[str]:
        if self.tests is not None:
            return [t.strip() for t in self.tests]
        return [t.strip() for t, on in (self.toWrite or {}).items() if on]


def load_profile(inputs: ScriptInputs) -> dict:
    profile = load_json(chamber_file(inputs.chamber))
    if inputs.chamber_version is not None and profile["version"] != inputs.chamber_version:
        raise ConfigError(f"{chamber_file(inputs.chamber)}: version {profile['version']}, the inputs ask for "
                          f"version {inputs.chamber_version}")
    return profile


def registers_of(elvis: str) -> tuple[dict, dict]:
    """(the registers data file, the register map of this ELVIS version)."""
    reg_data = load_json(REGISTERS_FILE)
    return reg_data, reg_data["registers"][sc.family(elvis, reg_data["families"])]


def build(inputs: ScriptInputs) -> dict[str, list[dict]]:
    """Script name -> columns, in the order of the inputs' tests."""
    specs, _ = labels()
    reg_data, registers = registers_of(inputs.elvis)
    profile = load_profile(inputs)
    equipment = inputs.equipment.model_dump()
    out: dict[str, list[dict]] = {}
    for name in inputs.selected():
        label = name if name in specs else next(k for k, s in specs.items() if name in sc.script_names(k, s))
        try:
            built = sc.build_test(label, specs[label], registers, profile, reg_data["sumwell"], equipment)
        except sc.StructureError as exc:
            raise ConfigError(f"{TESTS_FILE.name} / {chamber_file(inputs.chamber).name}: {exc}") from None
        out.update(built if name == label else {name: built[name]})
    return out


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def write_xlsx(path: Path, sheets: dict[str, list[list]], by_columns: bool = False) -> None:
    """An .xlsx written atomically; each sheet a list of rows (or of columns, ``by_columns``)."""
    from openpyxl import Workbook

    wb = Workbook()
    wb.remove(wb.active)
    for title, lines in sheets.items():
        ws = wb.create_sheet(title)
        for i, line in enumerate(lines, start=1):
            for j, value in enumerate(line, start=1):
                if value is not None:
                    ws.cell(row=j if by_columns else i, column=i if by_columns else j, value=value)
    with atomic_path(path) as tmp:
        wb.save(tmp)


def read_script(path: Path) -> list[list]:
    """A script written by :func:`write_scripts` back as its table (a list of columns)."""
    from openpyxl import load_workbook

    ws = load_workbook(path, read_only=True)["Sheet1"]
    rows = [list(r) for r in ws.iter_rows(values_only=True)]
    return [[row[j] for row in rows] for j in range(len(rows[0]))]


def find_scripts(folder: Path) -> dict[str, list[Path]]:
    """Test name -> the script files for it in ``folder`` (names parsed exactly, not globbed)."""
    found: dict[str, list[Path]] = {}
    for path in sorted(folder.iterdir()):
        parsed = sc.parse_script_name(path.name)
        if parsed and path.is_file():
            found.setdefault(parsed["test"], []).append(path)
    return found


def write_scripts(inputs: ScriptInputs, now: dt.datetime | None = None) -> dict:
    """Write the scripts, inventory, scheduler and check sums; returns what was written."""
    now = now or dt.datetime.now(dt.UTC)
    day = inputs.date or now.date()
    tag = sc.datetag(day)
    built = build(inputs)
    reg_data, registers = registers_of(inputs.elvis)
    profile = load_profile(inputs)
    out = Path(inputs.outpath)
    out.mkdir(parents=True, exist_ok=True)
    older = {t: [p.name for p in paths if p.name != sc.script_name(t, day, inputs.elvis)]
             for t, paths in find_scripts(out).items() if t in built}
    warnings = [f"{out} already holds {', '.join(names)}: mksession refuses a test with two scripts; remove "
                f"the older or write to a new outpath" for names in older.values() if names]

    sums, rows = [], []
    for name, columns in built.items():
        path = out / sc.script_name(name, day, inputs.elvis)
        write_xlsx(path, {"Sheet1": sc.script_table(columns, registers["keys"])}, by_columns=True)
        sums.append((path.name, md5(path)))
        rows.append(sc.summary(name, columns, reg_data["timing"]))

    checksums = f"CHECK_SUMS_{tag}.txt"
    eq = inputs.equipment
    chamber = f"{inputs.chamber} ({chamber_file(inputs.chamber).name} version {profile['version']}, {profile['date']})"
    serials = f"CCD1={eq.sn_ccd1}, CCD2={eq.sn_ccd2}, CCD3={eq.sn_ccd3}, ROE={eq.sn_roe}, RPSU={eq.sn_rpsu}"
    header = [("Scripts written on", f"{sc.datetag(now.date())} {now:%H:%M:%S} UTC"), ("checksumf", checksums),
              ("astroflow version", __version__), ("ELVIS", inputs.elvis), ("chamber", chamber), ("serials", serials)]
    inventory = out / f"TESTS_INVENTORY_{tag}.txt"
    write_text(inventory, sc.inventory_text(rows, header))
    scheduler = out / f"TESTS_SCHEDULER_{tag}.xlsx"
    meta = [*header, ("path", str(out)), ("Nframes", sum(r["nframes"] for r in rows)),
            ("Total_duration", round(sum(r["minutes"] for r in rows), 2))]
    tests = [["Test", "Ncols", "Nframes", "Duration_min"]]
    tests += [[r["test"], r["ncols"], r["nframes"], round(r["minutes"], 2)] for r in rows]
    write_xlsx(scheduler, {"Meta": [list(m) for m in meta], "Tests": tests})
    write_text(out / checksums, sc.checksums_text(sums))
    return {"outpath": str(out), "scripts": [n for n, _ in sums], "checksums": checksums,
            "inventory": inventory.name, "scheduler": scheduler.name,
            "nframes": sum(r["nframes"] for r in rows), "minutes": round(sum(r["minutes"] for r in rows), 2),
            "warnings": warnings}


def main(argv: list[str] | None = None) -> int:
    """Write the ELVIS acquisition scripts of a campaign (vis_mkscripts.py)."""
    parser = argparse.ArgumentParser(prog="astroflow vison mkscripts", description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", "-j", required=True, metavar="FILE",
                        help="inputs: serials, ELVIS version, chamber, outpath, tests (JSON, TOML or YAML)")
    parser.add_argument("--json", action="store_true", help="print what was written as JSON")
    args = parser.parse_args(argv)
    path = Path(args.inputs)
    try:
        inputs = validated(ScriptInputs, read_inputs(path), path)
        result = write_scripts(inputs)
    except ConfigError as exc:
        print(f"astroflow vison mkscripts: {exc}", file=sys.stderr)
        return 2
    for warning in result["warnings"]:
        print(f"warning: {warning}", file=sys.stderr)
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print(f"{len(result['scripts'])} scripts in {result['outpath']}: {result['nframes']} frames, "
              f"{result['minutes']:.2f} minutes ({result['inventory']}, {result['checksums']})")
    return 0
