"""NRES's tables in the calibration library's database (migrations in ``steps/nres/migrations``).

The processed-frames table is banzai's answer to frames posted again and again: a frame whose
checksum is unchanged and that succeeded is not reduced again (the ledger already ensures that
in a run), and one that failed five times with the same checksum is not tried again until the
file changes (``MAX_TRIES``): the queue of frames arriving over the night cannot loop on a bad
frame.  Sites carry their location, time zone and restart hour (the nightly stacking's clock).
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from astroflow.calib.models import UTCDateTime

MIGRATIONS = ("steps.nres.migrations",)
MAX_TRIES = 5


class Base(DeclarativeBase):
    """NRES's tables (apart from the calibration library's own)."""


class SiteRow(Base):
    __tablename__ = "nres_sites"
    site: Mapped[str] = mapped_column(sa.String(8), primary_key=True)
    instrument: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    camera: Mapped[str] = mapped_column(sa.String(16))
    latitude: Mapped[float | None] = mapped_column(sa.Float)
    longitude: Mapped[float | None] = mapped_column(sa.Float)
    height: Mapped[float | None] = mapped_column(sa.Float)
    timezone: Mapped[str] = mapped_column(sa.String(64))
    restart_hour: Mapped[int] = mapped_column(sa.Integer)


class ProcessedFrame(Base):
    __tablename__ = "nres_processed_frames"
    filename: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    checksum: Mapped[str] = mapped_column(sa.String(64))
    success: Mapped[bool] = mapped_column(sa.Boolean)
    tries: Mapped[int] = mapped_column(sa.Integer)
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    updated: Mapped[datetime] = mapped_column(UTCDateTime)


def tries_left(lib, filename: str, checksum: str) -> int:
    """How many more tries a frame gets (a changed checksum starts again at MAX_TRIES)."""
    with lib.session() as s:
        row = s.get(ProcessedFrame, filename)
        if row is None or row.checksum != checksum:
            return MAX_TRIES
        return MAX_TRIES - row.tries if not row.success else MAX_TRIES


def record_try(lib, filename: str, checksum: str, error: str | None) -> None:
    """Record one reduction of a frame: success, or the error counted as a failed try (the count
    restarts when the file's checksum changes)."""
    with lib.session(write=True) as s:
        row = s.get(ProcessedFrame, filename)
        if row is None or row.checksum != checksum:
            row = ProcessedFrame(filename=filename, checksum=checksum, success=False, tries=0)
            s.add(row)
        if error is not None:  # failed tries count; a success leaves the count as it was
            row.tries += 1
        row.success = error is None
        row.last_error = error
        row.updated = datetime.now(UTC)


def add_site(lib, site: str, instrument: str, camera: str, timezone: str, restart_hour: int,
             location: tuple[float, float, float] | None = None) -> None:
    """Add or update a site's row (the new-site procedure's spectrographs/ccds lines)."""
    with lib.session(write=True) as s:
        row = s.get(SiteRow, (site, instrument)) or SiteRow(site=site, instrument=instrument)
        row.camera, row.timezone, row.restart_hour = camera, timezone, restart_hour
        if location is not None:
            row.latitude, row.longitude, row.height = location
        s.merge(row)


def dump(lib) -> dict[str, list[dict]]:
    """The NRES tables as rows (``astroflow nres db``)."""
    out = {}
    with lib.session() as s:
        for model in (SiteRow, ProcessedFrame):
            rows = s.scalars(sa.select(model)).all()
            out[model.__tablename__] = [{c.name: getattr(r, c.name) for c in model.__table__.columns} for r in rows]
    return out
