"""The plain records of the calibration library, detached from any database session:
:class:`Calibration` and :class:`Provenance`, and the UTC helpers they use.  Nothing here imports
the database layer (:mod:`astroflow.calib.models`), so declaring a policy
(:class:`astroflow.calib.CalibType`) or reading a record stays cheap for every step and worker.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime


def utc(moment: datetime) -> datetime:
    """``moment`` as an aware UTC datetime; a naive one is taken to be UTC already (as FITS
    DATE-OBS values are)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def iso(moment: datetime | None) -> str | None:
    """ISO 8601 text of an instant (None stays None)."""
    return None if moment is None else moment.isoformat()


@dataclass(frozen=True)
class Provenance:
    """The unit of a run that produced a calibration (all optional: a hand-made master has none)."""

    run: str | None = None
    step: str | None = None
    item: str | None = None
    unit: str | None = None
    code_version: str | None = None


@dataclass(frozen=True)
class Calibration:
    """One calibration, as stored; a plain value that outlives the session that read it."""

    id: int
    type: str
    path: str
    dateobs: datetime
    attributes: dict = field(hash=False)
    created: datetime
    checksum: str
    is_master: bool
    is_bad: bool
    bad_reason: str | None
    good_after: datetime | None
    good_until: datetime | None
    frames: tuple[str, ...]
    provenance: Provenance

    def as_dict(self) -> dict:
        """JSON-safe form (ISO 8601 times), for ``astroflow calib ... --json``."""
        return {
            "id": self.id, "type": self.type, "path": self.path, "dateobs": iso(self.dateobs),
            "attributes": dict(self.attributes), "created": iso(self.created), "checksum": self.checksum,
            "is_master": self.is_master, "is_bad": self.is_bad, "bad_reason": self.bad_reason,
            "good_after": iso(self.good_after), "good_until": iso(self.good_until),
            "frames": list(self.frames), "provenance": dict(vars(self.provenance)),
        }
