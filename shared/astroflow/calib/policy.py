"""Selection policies and the pure function that applies one to a list of candidates.

A pipeline declares one :class:`CalibType` per calibration type (which attributes must match,
nearest in time or only older, a look-back, whether an older one may stand in), and
:func:`choose` picks among candidate :class:`Calibration` records.  It never touches a database:
:class:`~astroflow.calib.library.Library` only gathers candidates, so the rules are tested here on
plain values and behave the same on SQLite and PostgreSQL.

Every candidate that is not chosen comes back with the first criterion that ruled it out, in this
order: not a master, a wrong attribute, marked bad, outside its validity window, after the
observation (``select="before"``), beyond the look-back, farther in time than the one chosen.
When none qualifies, :class:`NoCalibration` lists them with those reasons (DRAGONS' users asked
for exactly this, DRAGONS#381).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Literal

from astroflow.calib.records import Calibration, iso, utc
from astroflow.errors import ItemError

MAX_LISTED = 9  # candidates named in a NoCalibration message (plus a header and a "... more" line)


@dataclass(frozen=True)
class CalibType:
    """How one calibration type is looked up.

    name          the type, as registered (``"bias"``, ``"flat"``, ``"arc"`` ...)
    match         attributes that must be equal between the observation and the calibration
    select        ``"nearest"`` in time, or only ``"before"`` the observation (no later ones)
    lookback_days the largest distance in time allowed, in days (None: any distance)
    fallback      when nothing is within the look-back, take the nearest earlier good one and
                  record the choice as a fallback (needs a look-back)
    masters_only  only master calibrations qualify (single frames are kept for stacking)
    """

    name: str
    match: tuple[str, ...] = ()
    select: Literal["nearest", "before"] = "nearest"
    lookback_days: float | None = None
    fallback: bool = False
    masters_only: bool = True

    def __post_init__(self):
        object.__setattr__(self, "match", tuple(self.match))
        if not self.name:
            raise ValueError("CalibType: name must not be empty")
        if self.select not in ("nearest", "before"):
            raise ValueError(f"CalibType {self.name}: select must be 'nearest' or 'before', not {self.select!r}")
        if self.lookback_days is not None and not self.lookback_days > 0:
            raise ValueError(f"CalibType {self.name}: lookback_days must be positive, not {self.lookback_days!r}")
        if self.fallback and self.lookback_days is None:
            raise ValueError(f"CalibType {self.name}: fallback needs a lookback_days to fall back from")

    def describe(self) -> str:
        """The policy in a few words: ``nearest, look-back 30 d, fallback``."""
        words = ["nearest" if self.select == "nearest" else "only before the observation"]
        if self.lookback_days is not None:
            words.append(f"look-back {self.lookback_days:g} d")
        if self.fallback:
            words.append("fallback")
        if not self.masters_only:
            words.append("single frames too")
        return ", ".join(words)

    def as_record(self) -> dict:
        """JSON form, stored with every choice so that a later ``explain`` can redo the look-up."""
        return {f.name: list(getattr(self, f.name)) if f.name == "match" else getattr(self, f.name)
                for f in fields(self)}

    @classmethod
    def from_record(cls, record: dict) -> "CalibType":
        return cls(**{f.name: record[f.name] for f in fields(cls) if f.name in record})


@dataclass(frozen=True)
class Choice:
    """The calibration chosen for one observation, and why.

    ``rejected`` holds every other candidate considered with the criterion that ruled it out;
    ``at`` and ``attributes`` are the observation's time and matching attribute values, kept so
    that the look-up can be redone later (``astroflow calib explain``).
    """

    record: Calibration
    policy: CalibType
    reason: str
    fallback: bool
    rejected: tuple[tuple[Calibration, str], ...]
    at: datetime
    attributes: dict

    def as_record(self) -> dict:
        """The JSON-safe dict the core stores in the ledger, one per calibration an item used."""
        return {
            "type": self.record.type, "id": self.record.id, "path": self.record.path,
            "dateobs": iso(self.record.dateobs), "policy": self.policy.as_record(), "reason": self.reason,
            "fallback": self.fallback, "at": iso(self.at), "attributes": dict(self.attributes),
        }


class NoCalibration(ItemError):
    """No calibration qualifies for an observation; the message names each candidate considered
    and the criterion that rejected it, so the item fails with a reason a person can act on.
    ``rejected`` holds the same as (calibration, criterion) pairs."""

    def __init__(self, message: str, rejected: tuple[tuple[Calibration, str], ...] = ()):
        super().__init__(message)
        self.rejected = tuple(rejected)


def canonical(value) -> str:
    """The text two attribute values are compared by: strings as they are, anything else as JSON
    (so a header's integer 86 matches a registered ``"86"``, as banzai's string cast does, while
    ``"086"`` does not)."""
    return value if isinstance(value, str) else json.dumps(value)


def span(delta: timedelta) -> str:
    """A distance in time for people: ``1.2 d``, ``3.5 h``, ``12 min``."""
    seconds = abs(delta.total_seconds())
    if seconds >= 86400:
        return f"{seconds / 86400:.1f} d"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 60:.0f} min"


def when(cal: Calibration, at: datetime) -> str:
    """Where a calibration lies relative to the observation: ``1.2 d before``."""
    delta = cal.dateobs - at
    if delta == timedelta(0):
        return "at the time of the observation"
    return f"{span(delta)} {'before' if delta < timedelta(0) else 'after'}"


def rejection(policy: CalibType, at: datetime, attributes: dict, cal: Calibration, *,
              lookback: bool = True) -> str | None:
    """The first criterion that rules ``cal`` out for an observation at ``at`` with the given
    matching attribute values, or None when it qualifies (``lookback=False`` ignores the look-back,
    to find fallback candidates)."""
    if policy.masters_only and not cal.is_master:
        return "not a master"
    for name in policy.match:
        have = cal.attributes.get(name)
        if name not in cal.attributes or canonical(have) != canonical(attributes[name]):
            shown = "(missing)" if name not in cal.attributes else canonical(have)
            return f"wrong {name}={shown} (wanted {canonical(attributes[name])})"
    if cal.is_bad:
        return f"marked bad: {cal.bad_reason or 'no reason given'}"
    if cal.good_after is not None and at < cal.good_after:
        return f"outside validity window (good after {iso(cal.good_after)})"
    if cal.good_until is not None and at > cal.good_until:
        return f"outside validity window (good until {iso(cal.good_until)})"
    if policy.select == "before" and cal.dateobs > at:
        return f"after the observation ({when(cal, at)})"
    if lookback and policy.lookback_days is not None:
        limit = timedelta(days=policy.lookback_days)
        if at - cal.dateobs > limit:
            return f"older than the look-back of {policy.lookback_days:g} d ({when(cal, at)})"
        if cal.dateobs - at > limit:
            return f"more than the look-back of {policy.lookback_days:g} d after the observation ({when(cal, at)})"
    return None


def choose(policy: CalibType, at: datetime, attributes: dict, candidates: list[Calibration],
           where: str = "", unexamined: int = 0) -> Choice:
    """Apply ``policy`` to ``candidates`` (calibrations of its type) for an observation at ``at``
    whose attributes include one value per name in ``policy.match``.

    The nearest qualifying candidate wins (only earlier ones with ``select="before"``); equally
    near ones go to the newest creation, then the highest id.  With ``fallback``, when no candidate
    is within the look-back, the nearest earlier one that passes every other criterion is taken
    and flagged.  Raises :class:`NoCalibration` when none qualifies; ``where`` (the library's
    URL) and ``unexamined`` (how many calibrations of the type were not among the candidates) go
    into its message.
    """
    at = utc(at)
    missing = [name for name in policy.match if name not in attributes]
    if missing:
        raise ItemError(f"{policy.name} look-up: the observation has no {', '.join(missing)} "
                        f"(the policy matches on {', '.join(policy.match)})")
    wanted = {name: attributes[name] for name in policy.match}
    why = {cal.id: rejection(policy, at, wanted, cal) for cal in candidates}
    eligible = [cal for cal in candidates if why[cal.id] is None]
    fallback = False
    if not eligible and policy.fallback:
        eligible = [cal for cal in candidates if cal.dateobs <= at
                    and rejection(policy, at, wanted, cal, lookback=False) is None]
        fallback = bool(eligible)
    if not eligible:
        rejected = [(cal, why[cal.id]) for cal in candidates]
        message = _no_calibration_message(policy, at, wanted, rejected, where, unexamined)
        raise NoCalibration(message, tuple(rejected))

    def rank(cal: Calibration):
        return (abs(cal.dateobs - at), -cal.created.timestamp(), -cal.id)

    winner = min(eligible, key=rank)
    ties = [cal for cal in eligible if abs(cal.dateobs - at) == abs(winner.dateobs - at)]
    stand_ins = {cal.id for cal in eligible} if fallback else set()
    rejected = []
    for cal in sorted(candidates, key=rank):
        if cal.id == winner.id:
            continue
        if why[cal.id] is not None and cal.id not in stand_ins:
            rejected.append((cal, why[cal.id]))
        elif abs(cal.dateobs - at) == abs(winner.dateobs - at):
            rejected.append((cal, "equally near, created earlier"))
        else:
            rejected.append((cal, f"farther in time: {when(cal, at)} (chosen: {when(winner, at)})"))
    return Choice(winner, policy, _reason(policy, winner, at, wanted, fallback, len(ties)), fallback,
                  tuple(rejected), at, wanted)


def _reason(policy: CalibType, cal: Calibration, at: datetime, wanted: dict, fallback: bool, ties: int) -> str:
    if fallback:
        text = (f"fallback: none within the look-back of {policy.lookback_days:g} d; "
                f"nearest earlier, {when(cal, at)}")
    elif policy.select == "before":
        text = f"latest before the observation, {when(cal, at)}"
    else:
        text = f"nearest in time, {when(cal, at)}"
    if wanted:
        text += "; matching " + ", ".join(f"{k}={canonical(v)}" for k, v in wanted.items())
    if ties > 1:
        text += f"; newest of {ties} equally near"
    return text


def _no_calibration_message(policy: CalibType, at: datetime, attributes: dict,
                            rejected: list[tuple[Calibration, str]], where: str, unexamined: int) -> str:
    matching = ", ".join(f"{k}={canonical(v)}" for k, v in attributes.items())
    head = (f"no {policy.name} calibration for an observation at {iso(at)}"
            f"{' with ' + matching if matching else ''} ({policy.describe()})")
    if where:
        head += f" in {where}"
    if not rejected:
        return head + f": no {policy.name} calibration is registered"
    # the informative ones first: right attributes but bad, out of window, too old ...
    ordered = sorted(rejected, key=lambda r: (r[1].startswith(("wrong ", "not a master")), abs(r[0].dateobs - at)))
    lines = [head + f"; {len(rejected) + unexamined} candidate(s):"]
    lines += [f"  #{cal.id} {cal.path} ({iso(cal.dateobs)}): {why}" for cal, why in ordered[:MAX_LISTED]]
    hidden = max(0, len(ordered) - MAX_LISTED)
    if hidden or unexamined:
        lines.append(f"  ... and {hidden + unexamined} more" + (" (farther in time)" if unexamined else ""))
    return "\n".join(lines)
