"""ELVIS acquisition scripts as data: test structures, the script table, durations, inventory.

Pure functions (no I/O) behind ``astroflow vison mkscripts`` (:mod:`steps.vison.mkscripts`),
replacing vison's ``vis_mkscripts.py`` with its ``datamodel/scriptic.Script`` and
``campaign/chronos.get_test_duration``.  A test's structure is read from
``data/scripts_tests.json``, the registers and their defaults from ``data/scripts_registers.json``,
exposure times from a chamber profile ``data/chamber_{CHAMBER}.json``; the caller loads them.

A script is a table: the first column holds the register names, then one column per script
column whose ``frames`` is the cumulative number of frames (ELVIS counts frames across columns),
then a last column reading ``End``.  Precedence of values, as vison's ``update_structdict``: the
ELVIS defaults, then the test's common registers, then the column's, then the script's test name
and the hardware serials and operator of the inputs.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import date

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
SCRIPT_NAME = re.compile(r"^vis_CalCamp_(?P<test>.+)_(?P<date>\d{2}[A-Z][a-z]{2}\d{2})_v(?P<elvis>[^_]+)\.xlsx$")
EQUIPMENT_KEYS = ("operator", "sn_ccd1", "sn_ccd2", "sn_ccd3", "sn_roe", "sn_rpsu")
_STRUCTURE_KEYS = ("fwc_pct", "wave_nm", "fluences", "interleave", "sweep", "product")
EXPTIME_DECIMALS = 3  # exposure times written to 1 ms


class StructureError(ValueError):
    """A test structure or chamber profile cannot make a script (the message says which and why)."""


def datetag(day: date) -> str:
    """vison's ``%d%b%y`` (``01Feb19``) with English month names whatever the locale."""
    return f"{day.day:02d}{MONTHS[day.month - 1]}{day.year % 100:02d}"


def script_name(test: str, day: date, elvis: str) -> str:
    return f"vis_CalCamp_{test}_{datetag(day)}_v{elvis}.xlsx"


def parse_script_name(name: str) -> dict[str, str] | None:
    """``{test, date, elvis}`` of a script file name, None for any other file."""
    match = SCRIPT_NAME.match(name)
    return match.groupdict() if match else None


def family(elvis: str, families: Mapping[str, str]) -> str:
    """The register family of an ELVIS version: ``7.5.2`` and ``7.5.X`` -> the family of ``7.5.X``."""
    parts = elvis.split(".")
    key = ".".join([*parts[:2], "X"]) if len(parts) == 3 else elvis
    if key not in families:
        raise StructureError(f"ELVIS version {elvis!r} has no register map; known: {', '.join(families)}")
    return families[key]


def script_names(label: str, spec: Mapping) -> list[str]:
    """The scripts a test label writes: one, or one per wavelength (``PTC02WAVE`` -> ``PTC02_590``...)."""
    if "waves_nm" in spec:
        return [spec["name"].format(wave=w) for w in spec["waves_nm"]]
    return [label]


def build_test(label: str, spec: Mapping, registers: Mapping, profile: Mapping, sumwell: Mapping,
               equipment: Mapping[str, str]) -> dict[str, list[dict]]:
    """Script name -> its columns (each a full register dict, ``frames`` per column, not cumulative)."""
    waves = spec.get("waves_nm", [spec.get("wave_nm")])
    out = {}
    for name, wave in zip(script_names(label, spec), waves, strict=True):
        ctx = _Context(label, registers, profile, sumwell, wave)
        common = ctx.registers_of(spec.get("common", {}), "common")
        columns = []
        for col in ctx.columns(spec["columns"]):
            full = {**registers["defaults"], **common, **col, "test": name, **equipment}
            columns.append({k: full[k] for k in registers["keys"]})
        out[name] = columns
    return out


class _Context:
    """Expands one test's column specifications (see ``data/scripts_tests.json``'s ``_doc``)."""

    def __init__(self, label, registers, profile, sumwell, wave):
        self.label, self.registers, self.profile, self.sumwell, self.wave = label, registers, profile, sumwell, wave
        self.fluence = 0

    def columns(self, specs: Sequence[Mapping]) -> Iterator[dict]:
        for i, spec in enumerate(specs, start=1):
            spec = dict(spec)
            where = f"column spec {i}"
            if "fluences" in spec:
                levels = spec.pop("fluences")
                frames = spec.pop("frames")
                frames = frames if isinstance(frames, list) else [frames] * len(levels)
                if len(frames) != len(levels):
                    raise StructureError(f"{self.label}: {where}: {len(levels)} fluences but {len(frames)} frames")
                interleave = spec.pop("interleave", None)
                for level, n in zip(levels, frames):
                    self.fluence += 1
                    yield self.column({**spec, "frames": n, "fwc_pct": level}, where)
                    if interleave is not None:
                        yield self.column(interleave, where)
            elif "sweep" in spec:
                ((key, (first, last, step)),) = spec.pop("sweep").items()
                count = round((last - first) / step) + 1
                for k in range(count):
                    yield self.column({**spec, key: round(first + k * step, 6)}, where)
            elif "product" in spec:
                product = spec.pop("product")
                for values in itertools.product(*product.values()):
                    yield self.column({**spec, **dict(zip(product, values))}, where)
            else:
                yield self.column(spec, where)

    def column(self, spec: Mapping, where: str) -> dict:
        spec = dict(spec)
        wave = spec.pop("wave_nm", self.wave)
        pct = spec.pop("fwc_pct", None)
        if pct is not None:
            spec["exptime"] = round(pct / 100.0 * self._full_well_time(wave, where), EXPTIME_DECIMALS)
        if wave is not None:
            spec["wave"] = self._filter(wave, where)
        if isinstance(spec.get("comments"), str) and "{" in spec["comments"]:
            spec["comments"] = spec["comments"].format(n=self.fluence, exptime=spec.get("exptime", 0.0))
        return self.registers_of(spec, where)

    def registers_of(self, spec: Mapping, where: str) -> dict:
        """Register values of a spec: groups expanded, the readout mode's summing well set."""
        out = {}
        groups = self.registers.get("groups", {})
        for key, value in spec.items():
            if key in groups:
                out.update(dict.fromkeys(groups[key], value))
            elif key in self.registers["defaults"]:
                out[key] = value
            else:
                raise StructureError(f"{self.label}: {where}: {key!r} is not an ELVIS register")
        if "rdmode" in spec:
            if spec["rdmode"] not in self.sumwell:
                raise StructureError(f"{self.label}: {where}: readout mode {spec['rdmode']!r} has no summing well; "
                                     f"known: {', '.join(self.sumwell)}")
            width, delay = self.sumwell[spec["rdmode"]]
            out.setdefault("swellw", width)
            out.setdefault("swelldly", delay)
        return out

    def _full_well_time(self, wave, where) -> float:
        times = self.profile["tFWC_flat_s"]
        if wave is None or str(wave) not in times:
            raise StructureError(f"{self.label}: {where}: chamber {self.profile['chamber']} has no flat-source "
                                 f"full-well time at {wave} nm; it has {', '.join(times)}")
        return float(times[str(wave)])

    def _filter(self, wave, where) -> int:
        for position, nm in self.profile["filter_wheel_nm"].items():
            if nm == wave:
                return int(position.lstrip("F"))
        raise StructureError(f"{self.label}: {where}: chamber {self.profile['chamber']}'s filter wheel has no "
                             f"{wave} nm filter")


def script_table(columns: Sequence[Mapping], keys: Sequence[str]) -> list[list]:
    """vison's ``Script.build_cargo``: the register names, one column per script column with the
    cumulative frames, and the ``End`` column."""
    table = [list(keys)]
    total = 0
    for col in columns:
        total += col["frames"]
        table.append([total if k == "frames" else col[k] for k in keys])
    table.append(["End"] + [None] * (len(keys) - 1))
    return table


def columns_of_table(table: Sequence[Sequence]) -> list[dict]:
    """The columns (frames per column again) of a script table read back: the inverse of
    :func:`script_table`."""
    if not table or table[-1][0] != "End":
        raise StructureError("the script table does not end with an End column")
    keys = list(table[0])
    out, previous = [], 0
    for values in table[1:-1]:
        col = dict(zip(keys, values))
        col["frames"], previous = col["frames"] - previous, col["frames"]
        out.append(col)
    return out


def column_seconds(col: Mapping, timing: Mapping) -> float:
    """Duration of one script column (vison's ``chronos.get_test_duration``, per column): the
    exposure, the serial-invert flush, the flush and the readout of the lines read, charge
    injection and trap pumping when on, and the transfer overhead, times the frames."""
    serial_line = timing["serial_pixel_s"] * timing["line_pixels"]
    lines = col["vend"] - col["vstart"]
    t = float(col["exptime"])
    if col["siflsh"] == 1:
        t += col["siflsh_p"] * 1e-3
    t += timing["flush_lines"] * 4 * col["toi_fl"] * 1e-6
    t += lines * (4 * col["toi_ro"] * 1e-6 + serial_line)
    if col["chinj"] == 1 or col["s_tpump"] == 1 or col["v_tpump"] == 1:
        t += timing["chinj_lines"] * (4 * col["toi_ch"] * 1e-6 + serial_line * col["chin_dly"])
    if col["s_tpump"] == 1:
        t += lines * (2 * timing["serial_pixel_s"] + col["dwell_s"] * 1e-6) * col["s_tp_cnt"]
    if col["v_tpump"] == 1:
        t += (4 * col["toi_tp"] * 1e-6 + col["dwell_v"] * 1e-6) * col["v_tp_cnt"]
    t += timing["transfer_overhead_s"]
    return t * col["frames"]


def summary(name: str, columns: Sequence[Mapping], timing: Mapping) -> dict:
    """One test's inventory row: columns, frames per column, frames, minutes."""
    frames = [int(c["frames"]) for c in columns]
    return {"test": name, "ncols": len(columns), "frames_per_col": frames, "nframes": sum(frames),
            "minutes": sum(column_seconds(c, timing) for c in columns) / 60.0}


def inventory_text(rows: Sequence[Mapping], header: Sequence[tuple[str, str]]) -> str:
    """``TESTS_INVENTORY_{date}.txt`` (vison's layout): header lines, one line per test (columns,
    minutes, frames, frames per column), the frame and minute totals."""
    lines = [f"{k}: {v}" for k, v in header] + [""]
    for r in rows:
        lines.append(f"{r['test']}: {r['ncols']} [{r['minutes']:.2f} min] {r['nframes']} frames, "
                     f"cols: {r['frames_per_col']}")
    lines += ["", f" {sum(r['nframes'] for r in rows)} Frames Total", "",
              f" {sum(r['minutes'] for r in rows):.2f} Minutes Total"]
    return "\n".join(lines) + "\n"


def checksums_text(sums: Sequence[tuple[str, str]]) -> str:
    """md5sum's own text format (``HASH  NAME``), so ``md5sum -c`` verifies the folder."""
    return "".join(f"{digest}  {name}\n" for name, digest in sums)
