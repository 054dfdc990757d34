"""vison's quality flags: one bitmask per Task, CCD and quadrant, each flag raised with its reason.

The names and bits are vison's (``vison/support/flags.py``); the reasons are ours: every flag is
raised with the sub-task that raised it, the CCD, the quadrant, the value and the limit it broke,
so that a person reading the ``flags`` table knows why without opening a log.  One change from
vison: frames with the wrong hardware serials raise WRONG_ROE_CONF (vison raised MISSDATA,
because the frames did not match the expected configuration and were not counted).
"""

from __future__ import annotations

from dataclasses import dataclass, field

FLAGS: dict[str, int] = {
    "MISSDATA": 2**0,         # frames, files or EXP_LOG rows missing; fewer frames than the structure
    "POORQUALDATA": 2**1,     # offsets or image/overscan-minus-prescan outside the performance limits
    "BADDATA": 2**2,          # a file that cannot be read as its format says (corrupt, truncated)
    "WRONGTEST": 2**3,        # frames acquired with another test's settings (e.g. a bias with exposure)
    "WRONG_ROE_CONF": 2**4,   # hardware serials (CCD, ROE, RPSU) other than the configured ones
    "SOURCEON": 2**5,
    "SOURCEOFF": 2**6,
    "WRONGSOURCE": 2**7,
    "HK_OOL": 2**8,           # an HK key outside its limits
    "CCDTEMP_OOL": 2**9,      # a CCD temperature outside its limits
    "UNDERPERFORM": 2**10,
    "REQNOTMET": 2**11,
    "BADDATAPROD": 2**12,
    "DEADCCD": 2**13,
    "DEADQUAD": 2**14,
    "LOWMEMORY": 2**15,
    "TOOSLOW": 2**16,
    "UNKNOWN": 2**17,
    "RON_OOL": 2**18,         # read noise (or a region's std) outside the limits
    "FLUENCE_OOL": 2**19,
    "FLUENCEGRAD_OOL": 2**20,
    "FOCUS_OOL": 2**21,
    "BGD_OOL": 2**22,
    "CCDSATUR": 2**23,
    "FLUX_OOL": 2**24,
    "STARS_MISSING": 2**25,
    "SUBTASKCRASH": 2**26,    # a sub-task failed on this CCD (its traceback is in the step's error table)
    "BADFIT": 2**27,          # a fit that did not converge or is too uncertain
    "SATURATION": 2**28,      # pixels at 65535 where none are expected
    "LOSTPIXELS": 2**29,      # pixels at 0 (lost in transmission)
    "NONSATURATION": 2**30,
}


def names(mask: int) -> list[str]:
    """The names of the flags set in ``mask``, in bit order."""
    return [n for n, bit in FLAGS.items() if mask & bit]


def value(flag_names) -> int:
    """The bitmask of some flag names; an unknown name is an error."""
    out = 0
    for n in flag_names:
        if n not in FLAGS:
            raise KeyError(f"unknown vison flag {n!r}; known: {', '.join(FLAGS)}")
        out |= FLAGS[n]
    return out


@dataclass(frozen=True)
class Raised:
    """One flag raised: by which sub-task, where, the value seen and the limit it broke."""

    flag: str
    subtask: str
    ccd: int | None
    quadrant: str | None
    what: str
    value: str = ""
    limit: str = ""

    def __post_init__(self):
        if self.flag not in FLAGS:
            raise KeyError(f"unknown vison flag {self.flag!r}")

    def __str__(self) -> str:
        where = " ".join(p for p in (f"CCD{self.ccd}" if self.ccd else "", self.quadrant or "") if p)
        tail = (f" = {self.value}" if self.value else "") + (f" (limit {self.limit})" if self.limit else "")
        return f"{self.flag} [{self.subtask}] {where}: {self.what}{tail}"


@dataclass
class FlagBook:
    """The flags of one Task, per (CCD, quadrant); a flag raised for a CCD is raised on its quadrants."""

    quadrants: tuple[str, ...] = ("E", "F", "G", "H")
    raised: list[Raised] = field(default_factory=list)

    def add(self, flag: str, subtask: str, what: str, *, ccd: int | None = None, quadrant: str | None = None,
            value: object = "", limit: object = "") -> None:
        self.raised.append(Raised(flag, subtask, ccd, quadrant, what, _text(value), _text(limit)))

    def of(self, ccd: int, quadrant: str) -> list[Raised]:
        return [r for r in self.raised if r.ccd in (None, ccd) and r.quadrant in (None, quadrant)]

    def mask(self, ccd: int, quadrant: str) -> int:
        return value({r.flag for r in self.of(ccd, quadrant)})


def _text(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (tuple, list)) and all(isinstance(x, (int, float)) for x in v):
        return "[" + ", ".join(f"{x:.4g}" for x in v) + "]"
    return str(v)
