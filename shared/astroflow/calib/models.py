"""What a calibration is: the plain records callers see and the three tables that store them.

Callers only ever see :class:`Calibration` and :class:`Provenance`, frozen dataclasses detached
from any database session (banzai hands out live ORM rows, which expire or lazy-load after their
session closes and cannot cross a process boundary).  The ORM classes (:class:`CalibrationRow`,
:class:`UseRow`, :class:`EventRow`) are the schema; the Alembic migrations in ``migrations/``
create exactly these tables, and a test checks that the two agree.

Tables:

``calibrations``
    one row per calibration product (master bias, dark, flat, trace, arc, wavelength solution ...),
    unique by ``path``: type, JSON ``attributes`` (camera, amp, binning ...), ``dateobs`` and
    ``created`` (UTC), sha256 ``checksum``, ``is_master``, ``is_bad`` with ``bad_reason``, the
    validity window ``good_after`` / ``good_until`` (open ended when null), the input ``frames``
    and the provenance of the unit that made it (run, step, item, unit, code version).
``calibration_uses``
    which item of which run and step used which calibration, under which policy and why: the
    trace from a bad master to exactly the items it touched.
``calibration_events``
    an append-only log (register, update, mark-bad, mark-good) with time, reason and user; its
    largest id is the library's *revision*, so a caller can tell cheaply whether anything changed.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from astroflow.calib.records import Calibration, Provenance, utc

EVENT_ACTIONS = ("register", "update", "mark-bad", "mark-good")


class UTCDateTime(sa.types.TypeDecorator):
    """A UTC instant: ``timestamp with time zone`` on PostgreSQL, naive UTC text on SQLite (which
    has no time zones, and whose text then sorts in time order); always read back aware UTC."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        value = utc(value)
        return value if dialect.name == "postgresql" else value.replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        return None if value is None else utc(value)


JSONType = sa.JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    """The declarative base of the calibration tables (a pipeline's own tables use their own)."""


class CalibrationRow(Base):
    __tablename__ = "calibrations"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    type: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    attributes: Mapped[dict] = mapped_column(JSONType, nullable=False)
    dateobs: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    created: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    path: Mapped[str] = mapped_column(sa.Text, nullable=False, unique=True)
    checksum: Mapped[str] = mapped_column(sa.String(64), nullable=False)
    is_master: Mapped[bool] = mapped_column(sa.Boolean, nullable=False)
    is_bad: Mapped[bool] = mapped_column(sa.Boolean, nullable=False)
    bad_reason: Mapped[str | None] = mapped_column(sa.Text)
    good_after: Mapped[datetime | None] = mapped_column(UTCDateTime)
    good_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    frames: Mapped[list] = mapped_column(JSONType, nullable=False)
    run: Mapped[str | None] = mapped_column(sa.Text)
    step: Mapped[str | None] = mapped_column(sa.String(128))
    item: Mapped[str | None] = mapped_column(sa.Text)
    unit: Mapped[str | None] = mapped_column(sa.String(64))
    code_version: Mapped[str | None] = mapped_column(sa.String(64))

    __table_args__ = (sa.Index("ix_calibrations_type_dateobs", "type", "dateobs"),)


class UseRow(Base):
    __tablename__ = "calibration_uses"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    calibration_id: Mapped[int] = mapped_column(sa.ForeignKey("calibrations.id"), nullable=False)
    run: Mapped[str] = mapped_column(sa.Text, nullable=False)
    step: Mapped[str] = mapped_column(sa.String(128), nullable=False)
    item: Mapped[str] = mapped_column(sa.Text, nullable=False)
    unit: Mapped[str | None] = mapped_column(sa.String(64))
    used_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    policy: Mapped[dict | str | None] = mapped_column(JSONType)
    reason: Mapped[str | None] = mapped_column(sa.Text)
    fallback: Mapped[bool] = mapped_column(sa.Boolean, nullable=False)

    __table_args__ = (
        sa.UniqueConstraint("calibration_id", "run", "step", "item", name="uq_calibration_uses_item"),
        sa.Index("ix_calibration_uses_calibration", "calibration_id"),
        sa.Index("ix_calibration_uses_run_step_item", "run", "step", "item"),
    )


class EventRow(Base):
    __tablename__ = "calibration_events"

    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    time: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    calibration_id: Mapped[int] = mapped_column(sa.ForeignKey("calibrations.id"), nullable=False)
    action: Mapped[str] = mapped_column(sa.String(16), nullable=False)
    reason: Mapped[str | None] = mapped_column(sa.Text)
    user: Mapped[str | None] = mapped_column(sa.String(128))

    __table_args__ = (
        sa.CheckConstraint("action IN ('register', 'update', 'mark-bad', 'mark-good')",
                           name="ck_calibration_events_action"),
        sa.Index("ix_calibration_events_calibration", "calibration_id"),
        # ids are never reused (SQLite AUTOINCREMENT), so revision() only ever grows
        {"sqlite_autoincrement": True},
    )


def to_record(row: CalibrationRow) -> Calibration:
    """The detached :class:`Calibration` of an ORM row."""
    return Calibration(
        id=row.id, type=row.type, path=row.path, dateobs=row.dateobs, attributes=dict(row.attributes or {}),
        created=row.created, checksum=row.checksum, is_master=row.is_master, is_bad=row.is_bad,
        bad_reason=row.bad_reason, good_after=row.good_after, good_until=row.good_until,
        frames=tuple(row.frames or ()),
        provenance=Provenance(row.run, row.step, row.item, row.unit, row.code_version),
    )
