"""The afternoon's calibration sets and when each is ready: one rule for every step that waits.

The observatory announces each set in OBJECT (``Calib: bias 3 of 10``: the third of ten); a set
is *complete* once all announced frames are present (or, when nothing is announced, the
configured ideal count); until the night's calibration deadline (``SedmSettings.deadline``) an
incomplete set is *waiting* for its frames, and the steps that use it wait too (their items are
skipped with the reason and redone once more frames arrive or the deadline passes: the
deadline is recorded by ``ctx.past``); after it, a set is *partial* when fewer are present but
at least the configured minimum (the frames that are there are used), and *too few* below the
minimum.  The sets of a night: a bias set at every ADC speed the night's IFU frames were read
at, the dome flats and the Hg, Cd and Xe arcs.
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
    status: str  # complete, waiting, partial, too_few
    deadline: str = ""  # while waiting: until when (ISO UTC)

    def message(self) -> str:
        said = f"{self.announced} announced" if self.announced else "none announced"
        text = (f"{self.set}: {self.present} frame(s) present ({said}, {self.target} make it complete, "
                f"{self.minimum} needed)")
        return f"{text}: waiting for frames until the deadline {self.deadline}" if self.status == "waiting" else text


def state(name: str, frames: list[dict], settings, deadline: str = "") -> SetState:
    """The state of set ``name`` (``bias_2.0``, ``dome``, ``Hg``...) from its frames' night rows;
    ``deadline``: the time an incomplete set waits until, when it is still ahead ("" once passed)."""
    kind = "bias" if name.startswith("bias") else name
    present = len({r["filename"] for r in frames})
    announced = max((int(r["set_size"]) for r in frames), default=0)
    target = announced or settings.ideal(kind)
    minimum = min(settings.minimum(kind), target)
    status = ("complete" if present >= target else "waiting" if deadline
              else "partial" if present >= minimum else "too_few")
    return SetState(name, present, announced, target, minimum, status, deadline if status == "waiting" else "")


def night_state(ctx, name: str, frames: list[dict]) -> SetState:
    """:func:`state` inside a step, against the night's deadline (``ctx.past`` records it, so a
    result made while the set waited is redone once the deadline passes)."""
    deadline = ctx.settings.deadline()
    waits = not ctx.past(deadline)
    return state(name, frames, ctx.settings, f"{deadline:%Y-%m-%dT%H:%M:%SZ}" if waits else "")


def waiting(ctx, kinds: tuple[str, ...]) -> list[SetState]:
    """The sets of ``kinds`` (``dome``, ``Hg``...) that still wait for frames tonight."""
    states = [night_state(ctx, kind, ctx.rows("night", where={"kind": kind})) for kind in kinds]
    return [st for st in states if st.status == "waiting"]


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
