"""The afternoon's calibration sets and when each is ready: one rule for every step that waits.

The observatory announces each set in OBJECT (``Calib: bias 3 of 10``: the third of ten); a set
is *complete* once all announced frames are present (or, when nothing is announced, the
configured ideal count), *partial* when fewer are present but at least the configured minimum
(the frames that are there are used), and *too few* below the minimum.  The sets of a night: a
bias set at every ADC speed the night's IFU frames were read at, the dome flats and the Hg, Cd
and Xe arcs.
"""

from __future__ import annotations

from dataclasses import dataclass

from astroflow.errors import ItemError

LAMP_SETS = ("dome", "Hg", "Cd", "Xe")


class TooFewFrames(ItemError):
    """A calibration set has fewer frames than the configured minimum."""


@dataclass(frozen=True)
class SetState:
    set: str
    present: int
    announced: int  # 0: not announced
    target: int  # what completes the set
    minimum: int
    status: str  # complete, partial, too_few

    def message(self) -> str:
        said = f"{self.announced} announced" if self.announced else "none announced"
        return (f"{self.set}: {self.present} frame(s) present ({said}, {self.target} make it complete, "
                f"{self.minimum} needed)")


def state(name: str, frames: list[dict], settings) -> SetState:
    """The state of set ``name`` (``bias_2.0``, ``dome``, ``Hg``...) from its frames' night rows."""
    kind = "bias" if name.startswith("bias") else name
    present = len({r["filename"] for r in frames})
    announced = max((int(r["set_size"]) for r in frames), default=0)
    target = announced or settings.ideal(kind)
    minimum = min(settings.minimum(kind), target)
    status = "complete" if present >= target else "partial" if present >= minimum else "too_few"
    return SetState(name, present, announced, target, minimum, status)


def night_sets(rows: list[dict]) -> dict[str, list[dict]]:
    """Every set the night should have, with its frames (possibly none)."""
    ifu = [r for r in rows if r["camera"] == "IFU"]
    speeds = sorted({float(r["adcspeed"]) for r in ifu}, reverse=True)
    sets: dict[str, list[dict]] = {f"bias_{s:.1f}": [] for s in speeds}
    sets.update({k: [] for k in LAMP_SETS})
    for r in ifu:
        if r["set"]:
            sets.setdefault(r["set"], []).append(r)
    return sets
