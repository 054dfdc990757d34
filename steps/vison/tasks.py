"""The Task registry: test names -> vison Tasks, their sub-tasks and default structures.

vison maps each test name to a Task class (``BIAS01`` and ``BIAS02`` to ``BIAS0X``...); a Task
is an ordered list of sub-tasks (check, prep, basic, meta, report) switched by todo_flags.  Here
a Task is data: its handle, the sub-tasks it runs (each an astroflow step, ``{prefix}_{subtask}``,
fanned out over the Task's tests and CCDs; todo_flags are the steps' ``enabled`` parameters,
``--set bias_basic.enabled=false``) and each test's default structure (frames, exposure time,
readout mode), against which what the EXP_LOG shows is compared (a difference is flagged, the
data analysed as found).

Specific names resolve to a generic one by rule: the exact name first, then the name cut at its
first ``_`` (``BIAS02_fwd`` -> ``BIAS02``, ``PTC02_730`` -> ``PTC02``), then the aliases
(``PTC02`` -> ``PTC02WAVE``).  The first wave is implemented: BIAS0X (BIAS01, BIAS02), PTC0X (PTC01),
DARK01, PTC02WAVE, NL02, CHINJ01, TP01, FLAT01 and COSMETICS00; the later tests of the campaign
(:data:`NOT_YET`) are listed so that a configuration naming them fails with "not implemented yet",
not "unknown".
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Structure:
    """A test's default acquisition (vison's ``build_scriptdict``): the frames, the exposure time
    (None where it varies, as in a PTC), the readout mode and, for flats, the fluence levels
    (per cent of the full well, frames at each)."""

    frames: int
    exptime: float | None = 0.0
    rdmode: str | None = None
    levels: tuple[tuple[float, int], ...] = ()


@dataclass(frozen=True)
class Task:
    handle: str  # vison's class name
    prefix: str  # the steps' prefix
    subtasks: tuple[str, ...]
    structures: dict[str, Structure] = field(default_factory=dict)

    def step(self, subtask: str) -> str:
        return f"{self.prefix}_{subtask}"


BIAS0X = Task("BIAS0X", "bias", ("check", "prep", "basic", "meta"),
              {"BIAS01": Structure(10, 0.0, "fwd_bas"), "BIAS02": Structure(10, 0.0, "rwd_bas")})

PTC01_LEVELS = tuple((f, 10 if f < 100 else 4) for f in (5.0, 10.0, 20.0, 30.0, 50.0, 70.0, 80.0, 90.0, 100.0, 110.0,
                                                           120.0))
PTC0X = Task("PTC0X", "ptc", ("check", "extract", "meta"),
             {"PTC01": Structure(sum(n for _, n in PTC01_LEVELS), None, "fwd_bas", PTC01_LEVELS)})

DARK01 = Task("DARK01", "dark", ("check", "prep", "meta"), {"DARK01": Structure(4, 565.0, "fwd_bas")})

# PTC02WAVE: vison's PTC02 at each wavelength (PTC02_590, PTC02_730...: 6 fluences, 4 frames each)
PTC02_LEVELS = tuple((f, 4) for f in (10.0, 30.0, 50.0, 70.0, 80.0, 90.0))
PTC02WAVE = Task("PTC02WAVE", "ptc02", ("check", "extract", "meta"),
                 {"PTC02WAVE": Structure(sum(n for _, n in PTC02_LEVELS), None, "fwd_bas", PTC02_LEVELS)})
# NL02: the 17 fluences (the faint source below 20 %), one frame each, a stability frame after
# every fourth (vison's script takes 4 frames per fluence and a stability frame after each: more is not flagged)
NL02_LEVELS = tuple((f, 1) for f in (0.5, 0.7, 1.0, 2.0, 3.0, 5.0, 10.0, 15.0, 20.0, 30.0, 50.0, 70.0, 80.0, 90.0,
                                     95.0, 100.0, 110.0))
NL02 = Task("NL02", "nl02", ("check", "nl"), {"NL02": Structure(len(NL02_LEVELS) + 4, None, "fwd_bas", NL02_LEVELS)})

# CHINJ01: IG1 2-7 V in 0.25 V steps at each of two drain delays, one frame each (vison's build_scriptdict)
CHINJ01 = Task("CHINJ01", "chinj", ("check", "extract", "meta"), {"CHINJ01": Structure(42, 0.0, "fwd_bas")})
# TP01: per drain delay one frame without pumping, then TOI_TP 200-8000 us x 4 pumping modes
TP01 = Task("TP01", "tp", ("check", "extract", "meta"), {"TP01": Structure(42, 0.0, "fwd_bas")})
# FLAT01: 25, 50, 75 % of the full well at 800 nm, 80, 60, 30 frames (vison's FLAT0X set_inpdefaults)
FLAT01_LEVELS = ((25.0, 80), (50.0, 60), (75.0, 30))
FLAT01 = Task("FLAT01", "flat", ("check", "prep", "meta"),
              {"FLAT01": Structure(sum(n for _, n in FLAT01_LEVELS), None, "fwd_bas", FLAT01_LEVELS)})
# COSMETICS00: 5 biases, then 5 flats at 50 % of the full well at 800 nm (vison's build_scriptdict)
COSMETICS00_LEVELS = ((0.0, 5), (50.0, 5))
COSMETICS00 = Task("COSMETICS00", "cosmetics", ("check", "prep", "masks"),
                   {"COSMETICS00": Structure(10, None, "fwd_bas", COSMETICS00_LEVELS)})

TASKS: dict[str, Task] = {"BIAS01": BIAS0X, "BIAS02": BIAS0X, "PTC01": PTC0X, "DARK01": DARK01,
                          "PTC02WAVE": PTC02WAVE, "NL02": NL02,
                          "CHINJ01": CHINJ01, "TP01": TP01,
                          "FLAT01": FLAT01, "COSMETICS00": COSMETICS00}
NOT_YET = ("CHINJ02", "TP02", "PTC02TEMP", "PTC02RD", "FLAT02", "NL01", "BF01", "FOCUS00", "PSF01", "PSF02",
           "PSFLUX00", "FLATFLUX00", "PERSIST01", "MOT_WARM")
ALIASES = {"PTC02": "PTC02WAVE"}


class UnknownTest(ValueError):
    pass


def generic(test: str) -> str:
    """The generic test name a specific one resolves to (see the module docstring)."""
    name = test.strip().upper()
    for candidate in (name, name.split("_", 1)[0]):
        candidate = ALIASES.get(candidate, candidate)
        if candidate in TASKS or candidate in NOT_YET:
            return candidate
    raise UnknownTest(f"test {test!r} names no vison Task; implemented: {', '.join(TASKS)}")


def resolve(test: str) -> Task:
    name = generic(test)
    if name not in TASKS:
        raise UnknownTest(f"test {test!r} ({name}) has no Task implemented yet; implemented: {', '.join(TASKS)}")
    return TASKS[name]


def structure(test: str) -> Structure:
    name = generic(test)
    return resolve(test).structures[name]


def tests_of(task: Task, tests) -> list[str]:
    """The run's tests that the Task analyses, in the run's order."""
    return [t for t in tests if resolve(t) is task]
