"""The calibration library: one database of calibrations, of which items used them, and of what
happened to them.

What banzai does (LCOGT/banzai, ``banzai/dbs.py``): master calibrations are rows of a
``calimages`` table (type, instrument, ``is_master``, ``is_bad``, ``good_after``/``good_until``
defaulting to the years 1000 and 3000, JSON ``attributes``); a look-up is one SQL query (same type
and instrument, master, not bad, each selection criterion compared as ``attributes[name]`` cast to
a string, ``good_after <= dateobs <= good_until``, optionally created before the block started)
ordered by the distance in time (``julianday`` on SQLite, ``extract(epoch)`` on PostgreSQL) and
``.first()``.  When nothing matches the answer is ``None``, with no word on which criterion failed;
nothing records which frames used a master, so a bad one is traced by reading headers
(``L1IDBIAS`` ...); every session builds a new engine.

What this does better:

* every look-up explains itself: :meth:`Library.select` returns a :class:`~astroflow.calib.policy.Choice`
  with a sentence of why and every rejected candidate with its criterion, and
  :class:`~astroflow.calib.policy.NoCalibration` names each candidate's criterion (the selection
  rules are a pure function, :func:`~astroflow.calib.policy.choose`, the same on both databases);
* look-ups are declared policies (nearest, only before, look-back, fallback recorded as such);
* :meth:`Library.record_uses` stores which (run, step, item) used which calibration, so
  :meth:`Library.uses_of` lists exactly the items a bad master touched;
* an event log (register, update, mark-bad, mark-good, with reason and user) whose largest id is
  :meth:`Library.revision`, a cheap "has anything changed since" check;
* re-registering a path whose content changed (sha256) clears its bad flag and logs an update;
* the schema is migrated with Alembic when a library is opened, and a pipeline can add its own
  tables to the same database through its own migration branch (``migrations=``).

Databases: ``sqlite:///PATH`` (the default, ``RUN/calibrations.db``; WAL journal, a busy timeout,
foreign keys on, writes under ``BEGIN IMMEDIATE`` so several processes of one machine can write;
not for a network filesystem) or ``postgresql+psycopg://USER:PASS@HOST/DB`` at a site.  A
:class:`Library` is cheap to make: it connects on first use (and then brings the schema to head,
once per process), after a fork the child drops the parent's connections, and pickled (for
spawned workers) it carries only its URL and migrations.
"""

from __future__ import annotations

import builtins
import getpass
import hashlib
import importlib.util
import json
import os
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import ArgumentError, IntegrityError, OperationalError
from sqlalchemy.orm import Session

from astroflow.calib.models import Base, CalibrationRow, EventRow, UseRow, to_record
from astroflow.calib.records import Calibration, Provenance, iso, utc
from astroflow.calib.policy import MAX_LISTED, CalibType, Choice, NoCalibration, canonical, choose
from astroflow.errors import AstroflowError

ENV_URL = "ASTROFLOW_DB_URL"
DEFAULT_FILE = "calibrations.db"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
BUSY_TIMEOUT_S = 60
_WRITE = "astroflow_calib_write"  # execution option: this transaction writes (SQLite: BEGIN IMMEDIATE)
_LOCK_KEY = zlib.crc32(b"astroflow.calib migrations")  # PostgreSQL advisory lock held while migrating
_UPGRADED: set[tuple[str, tuple[str, ...]]] = set()  # (url, migrations) already at head in this process

PathOrId = int | str | os.PathLike


class CalibrationError(AstroflowError):
    """The library cannot do what was asked; the message names the database URL or file."""


class CalibrationNotFound(CalibrationError, LookupError):
    """No calibration has the given path or id."""


class Library:
    """The calibrations of one database (see the module docstring).

    ``migrations`` adds a pipeline's own Alembic version folders (paths, or importable package
    names such as ``"steps.nres.migrations"``), each a branch of its own: one base revision
    (``down_revision = None``) with one branch label, e.g. ``branch_labels = ("nres",)``, which
    names its version table (``alembic_version_nres``).  Opening the library brings its own
    branch to head first, then each of these in order, so their tables may refer to the
    calibrations.
    """

    def __init__(self, url: str, *, migrations: Sequence[str | os.PathLike] = ()):
        self._url = _parse_url(url)
        self._locations = tuple(_version_location(m) for m in migrations)
        self._engine: sa.Engine | None = None
        self._pid: int | None = None

    @classmethod
    def for_run(cls, run_dir: str | os.PathLike, db_url: str | None = None, *,
                migrations: Sequence[str | os.PathLike] = ()) -> "Library":
        """The library a run uses: ``db_url``, else ``$ASTROFLOW_DB_URL``, else
        ``sqlite:///RUN/calibrations.db``."""
        url = db_url or os.environ.get(ENV_URL) or f"sqlite:///{Path(run_dir).resolve() / DEFAULT_FILE}"
        return cls(url, migrations=migrations)

    @property
    def url(self) -> str:
        """The database URL, password hidden (for messages)."""
        return self._url.render_as_string(hide_password=True)

    def __repr__(self) -> str:
        return f"Library({self.url!r})"

    def __getstate__(self) -> dict:
        return {"url": self._url.render_as_string(hide_password=False), "locations": self._locations}

    def __setstate__(self, state: dict) -> None:
        self._url = _parse_url(state["url"])
        self._locations = tuple(state["locations"])
        self._engine, self._pid = None, None

    def close(self) -> None:
        """Close this process's connections (the library reconnects if used again)."""
        if self._engine is not None and self._pid == os.getpid():
            self._engine.dispose()
        self._engine, self._pid = None, None

    # writing --------------------------------------------------------------------------------

    def register(self, type: str, path: str | os.PathLike, dateobs: datetime, attributes: Mapping, *,
                 is_master: bool = True, good_after: datetime | None = None, good_until: datetime | None = None,
                 frames: Iterable[str | os.PathLike] = (), provenance: Provenance | None = None) -> int:
        """Add the calibration file at ``path`` (or update it: one row per path) and return its id.

        Its sha256 is read from the file.  A path registered again with different content is a
        new product: its bad flag is cleared, its creation time renewed and an ``update`` event
        logged; other changed fields log an ``update`` too; an identical registration changes
        nothing (and not the revision).
        """
        path = os.path.abspath(os.fspath(path))
        values = {
            "type": type, "attributes": _json_attributes(attributes, path), "dateobs": utc(dateobs),
            "checksum": _sha256(path, type), "is_master": bool(is_master),
            "good_after": None if good_after is None else utc(good_after),
            "good_until": None if good_until is None else utc(good_until),
            "frames": [os.fspath(f) for f in frames], **vars(provenance or Provenance()),
        }
        if values["good_after"] and values["good_until"] and values["good_after"] > values["good_until"]:
            raise CalibrationError(f"{path}: good_after {iso(good_after)} is later than good_until {iso(good_until)}")
        try:
            with self._session(write=True) as s:
                return _upsert(s, path, values)
        except IntegrityError:  # PostgreSQL: another process inserted the same path meanwhile
            with self._session(write=True) as s:
                return _upsert(s, path, values)

    def mark_bad(self, path_or_id: PathOrId, reason: str, user: str | None = None) -> Calibration:
        """Flag a calibration bad (it is never selected again until marked good) and log why."""
        if not reason or not reason.strip():
            raise CalibrationError("mark_bad: a reason is required")
        with self._session(write=True) as s:
            row = _find(s, path_or_id, self.url, for_update=True)
            if not (row.is_bad and row.bad_reason == reason):
                row.is_bad, row.bad_reason = True, reason
                s.add(EventRow(time=_now(), calibration_id=row.id, action="mark-bad", reason=reason,
                               user=user or _login()))
            return to_record(row)

    def mark_good(self, path_or_id: PathOrId, user: str | None = None) -> Calibration:
        """Clear a calibration's bad flag (logged, with the reason it had)."""
        with self._session(write=True) as s:
            row = _find(s, path_or_id, self.url, for_update=True)
            if row.is_bad:
                s.add(EventRow(time=_now(), calibration_id=row.id, action="mark-good",
                               reason=f"was bad: {row.bad_reason}", user=user or _login()))
                row.is_bad, row.bad_reason = False, None
            return to_record(row)

    def record_uses(self, uses: Iterable[Mapping]) -> int:
        """Store which items used which calibrations; returns the number of uses stored.

        Each use is a dict with ``calibration_id``, ``run``, ``step``, ``item``, ``unit``,
        ``policy``, ``reason`` and ``fallback`` (the last three as in ``Choice.as_record()``).  The
        uses given for an item replace that item's earlier ones, so a re-run item traces to what it
        used last.
        """
        now = _now()
        rows = [_use_row(u, now) for u in uses]
        if not rows:
            return 0
        try:
            with self._session(write=True) as s:
                for run, step, item in {(r.run, r.step, r.item) for r in rows}:
                    s.execute(sa.delete(UseRow).where(UseRow.run == run, UseRow.step == step, UseRow.item == item))
                s.add_all(rows)
        except IntegrityError as exc:
            ids = sorted({r.calibration_id for r in rows})
            raise CalibrationError(f"{self.url}: cannot record uses of calibration(s) {ids}: "
                                   f"{exc.orig}".strip()) from None
        return len(rows)

    # reading --------------------------------------------------------------------------------

    def select(self, ctype: CalibType, at: datetime, attributes: Mapping) -> Choice:
        """The calibration of type ``ctype.name`` that ``ctype`` picks for an observation at
        ``at`` with ``attributes`` (see :func:`~astroflow.calib.policy.choose`).

        Raises :class:`~astroflow.calib.policy.NoCalibration` (an ``ItemError``) listing the
        candidates and why each was rejected: those with the right attributes, and the calibrations
        of the type nearest in time whatever their attributes (to show a wrong one).
        """
        at = utc(at)
        with self._session() as s:
            query = sa.select(CalibrationRow).where(CalibrationRow.type == ctype.name)
            if ctype.masters_only:
                query = query.where(CalibrationRow.is_master.is_(True))
            query = query.where(*_attribute_filters({k: attributes[k] for k in ctype.match if k in attributes}))
            candidates = [to_record(r) for r in s.scalars(query)]
            try:
                return choose(ctype, at, dict(attributes), candidates, where=self.url)
            except NoCalibration:
                known = {c.id for c in candidates}
                considered = candidates + [c for c in _nearest(s, ctype.name, at) if c.id not in known]
                total = s.scalar(sa.select(sa.func.count()).where(CalibrationRow.type == ctype.name))
                return choose(ctype, at, dict(attributes), considered, where=self.url,
                              unexamined=total - len(considered))

    def get(self, path_or_id: PathOrId) -> Calibration:
        """The calibration with this id (an int) or path; raises :class:`CalibrationNotFound`."""
        with self._session() as s:
            return to_record(_find(s, path_or_id, self.url))

    def list(self, type: str | None = None, *, bad: bool | None = None, **attributes) -> builtins.list[Calibration]:
        """Calibrations, by type, then time; optionally only bad (``bad=True``) or good ones,
        and only those whose attributes equal the given ones."""
        with self._session() as s:
            query = sa.select(CalibrationRow)
            if type is not None:
                query = query.where(CalibrationRow.type == type)
            if bad is not None:
                query = query.where(CalibrationRow.is_bad.is_(bool(bad)))
            query = query.where(*_attribute_filters(attributes))
            query = query.order_by(CalibrationRow.type, CalibrationRow.dateobs, CalibrationRow.id)
            found = [to_record(r) for r in s.scalars(query)]
        return [c for c in found if all(k in c.attributes and canonical(c.attributes[k]) == canonical(v)
                                        for k, v in attributes.items())]

    def uses_of(self, path_or_id: PathOrId) -> builtins.list[dict]:
        """The items that used a calibration: dicts of run, step, item, unit, used_at (ISO),
        policy, reason, fallback, ordered by run, step, item."""
        with self._session() as s:
            row = _find(s, path_or_id, self.url)
            uses = s.scalars(sa.select(UseRow).where(UseRow.calibration_id == row.id)
                             .order_by(UseRow.run, UseRow.step, UseRow.item))
            return [{"calibration_id": u.calibration_id, "run": u.run, "step": u.step, "item": u.item,
                     "unit": u.unit, "used_at": iso(u.used_at), "policy": u.policy, "reason": u.reason,
                     "fallback": u.fallback} for u in uses]

    def events(self, path_or_id: PathOrId) -> builtins.list[dict]:
        """The history of a calibration, oldest first: id, time (ISO), action, reason, user."""
        with self._session() as s:
            row = _find(s, path_or_id, self.url)
            found = s.scalars(sa.select(EventRow).where(EventRow.calibration_id == row.id).order_by(EventRow.id))
            return [{"id": e.id, "time": iso(e.time), "action": e.action, "reason": e.reason, "user": e.user}
                    for e in found]

    def revision(self, type: str | None = None) -> int:
        """The id of the latest event (0 for an empty library), of calibrations of ``type`` if
        given: it changes whenever such a calibration is registered, updated or marked, and only
        then (the ledger compares it to tell whether a look-up may now choose differently)."""
        query = sa.select(sa.func.max(EventRow.id))
        if type is not None:
            query = query.join(CalibrationRow, CalibrationRow.id == EventRow.calibration_id).where(
                CalibrationRow.type == type)
        with self._session() as s:
            return s.scalar(query) or 0

    # connections ----------------------------------------------------------------------------

    def _connect(self) -> sa.Engine:
        """This process's engine, created (and the schema upgraded) on first use."""
        pid = os.getpid()
        if self._engine is not None and self._pid != pid:
            self._engine.dispose(close=False)  # forked: leave the parent's connections to the parent
            self._pid = pid
        if self._engine is None:
            engine = _create_engine(self._url)
            key = (self._url.render_as_string(hide_password=False), self._locations)
            if key not in _UPGRADED:
                try:
                    _upgrade(engine, self._locations, self.url)
                except BaseException:
                    engine.dispose()
                    raise
                _UPGRADED.add(key)
            self._engine, self._pid = engine, pid
        return self._engine

    def session(self, write: bool = False):
        """A session on the library's database in one transaction (committed on success), for a
        pipeline's own tables (its ``migrations`` branch); ``write`` takes SQLite's write lock."""
        return self._session(write)

    @contextmanager
    def _session(self, write: bool = False) -> Iterator[Session]:
        """A session in one transaction, committed on success (``write``: take SQLite's write
        lock at the start, so concurrent writers wait for each other instead of failing)."""
        engine = self._connect()
        try:
            with engine.connect() as conn:
                conn.execution_options(**{_WRITE: write})
                with Session(conn, expire_on_commit=False) as s, s.begin():
                    yield s
        except OperationalError as exc:
            raise CalibrationError(f"{self.url}: {exc.orig}") from exc


# helpers ------------------------------------------------------------------------------------


def _parse_url(url: str) -> sa.URL:
    usage = "use sqlite:///PATH or postgresql+psycopg://USER:PASSWORD@HOST/DATABASE"
    try:
        parsed = sa.make_url(url)
    except ArgumentError:
        raise CalibrationError(f"{url!r}: not a database URL ({usage})") from None
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg"):
        return parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername in ("sqlite", "sqlite+pysqlite"):
        if not parsed.database or parsed.database == ":memory:":
            raise CalibrationError(f"{url!r}: the calibration library needs a database file that "
                                   f"several processes can share ({usage})")
        return parsed
    raise CalibrationError(f"{parsed.render_as_string(hide_password=True)}: unsupported database ({usage})")


def _version_location(spec: str | os.PathLike) -> str:
    """A migration version folder given as a path or as an importable package name."""
    path = Path(spec)
    if path.is_dir():
        return str(path.resolve())
    if isinstance(spec, str) and all(part.isidentifier() for part in spec.split(".")):
        try:
            found = importlib.util.find_spec(spec)
        except (ImportError, ValueError):
            found = None
        if found is not None and found.submodule_search_locations:
            return str(Path(next(iter(found.submodule_search_locations))).resolve())
    raise CalibrationError(f"migrations {os.fspath(spec)!r}: neither a folder nor an importable package")


def _create_engine(url: sa.URL) -> sa.Engine:
    if url.get_backend_name() == "postgresql":
        return sa.create_engine(url, pool_pre_ping=True)
    folder = Path(url.database).resolve().parent
    if not folder.is_dir():
        raise CalibrationError(f"{url.render_as_string()}: folder {folder} does not exist")
    engine = sa.create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_S})

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection, _record):
        # pysqlite's own transaction handling neither covers DDL nor takes the write lock early;
        # turn it off and emit BEGIN ourselves (the SQLAlchemy documentation's recipe)
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_S * 1000}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get(_WRITE) else "BEGIN")

    return engine


def _alembic_config(folder: str, version_table: str | None = None, metadata: sa.MetaData | None = None):
    """Alembic's configuration for one migration branch: our env.py, the branch's version folder,
    its own version table."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("version_locations", folder.replace("%", "%%"))
    cfg.attributes["version_table"] = version_table
    cfg.attributes["target_metadata"] = metadata
    return cfg


def _branches(locations: tuple[str, ...]) -> list:
    """(name, Alembic config, script directory) of each migration branch, the library's first.

    Each branch keeps its own version table (``alembic_version`` for the library,
    ``alembic_version_<label>`` for a pipeline's), so a branch is upgraded without knowing the
    others: ``astroflow calib`` opens a pipeline's database without that pipeline's migrations,
    and the library's tables always exist before a pipeline's migrations run.
    """
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    branches = []
    for folder in (str(MIGRATIONS / "versions"), *locations):
        try:
            script = ScriptDirectory.from_config(_alembic_config(folder))
            bases = [script.get_revision(b) for b in script.get_bases()]
        except CommandError as exc:
            raise CalibrationError(f"migrations {folder}: {exc}") from None
        labels = {label for base in bases for label in base.branch_labels}
        if len(bases) != 1 or len(labels) != 1:
            raise CalibrationError(f"migrations {folder}: expected one base revision with one branch label "
                                   f"(it names the branch's version table), found {len(bases)} base(s) "
                                   f"labelled {sorted(labels)}")
        label = labels.pop()
        if branches and label == "calib":
            raise CalibrationError(f"migrations {folder}: the branch label 'calib' is the library's own")
        table = "alembic_version" if not branches else f"alembic_version_{label}"
        metadata = Base.metadata if not branches else None
        branches.append((label, _alembic_config(folder, table, metadata), script))
    return branches


def _upgrade(engine: sa.Engine, locations: tuple[str, ...], shown_url: str) -> None:
    """Bring every migration branch to its head, one process at a time (SQLite's write lock, a
    PostgreSQL advisory lock), in one transaction."""
    from alembic import command
    from alembic.runtime.migration import MigrationContext
    from alembic.util import CommandError

    branches = _branches(locations)
    try:
        with engine.connect() as conn:
            conn.execution_options(**{_WRITE: True})
            with conn.begin():
                if engine.dialect.name == "postgresql":
                    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_LOCK_KEY})")
                for label, cfg, script in branches:
                    table = cfg.attributes["version_table"]
                    current = set(MigrationContext.configure(conn, opts={"version_table": table}).get_current_heads())
                    if set(script.get_heads()) <= current:
                        continue
                    unknown = current - {rev.revision for rev in script.walk_revisions()}
                    if unknown:
                        raise CalibrationError(f"{shown_url}: its {label} schema is at {sorted(unknown)}, which this "
                                               f"version of the code does not know (is it older than the database?)")
                    cfg.attributes["connection"] = conn
                    command.upgrade(cfg, "heads")
    except OperationalError as exc:
        raise CalibrationError(f"{shown_url}: cannot open the calibration library: {exc.orig}") from None
    except CommandError as exc:
        raise CalibrationError(f"{shown_url}: schema migration failed: {exc}") from None


def _attribute_filters(attributes: Mapping) -> list:
    """SQL conditions that narrow the rows to those whose attributes may equal the given ones:
    strings and integers are compared as text (the same on both databases); other values are
    checked in Python afterwards."""
    return [CalibrationRow.attributes[name].as_string() == canonical(value)
            for name, value in attributes.items()
            if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))]


def _nearest(s: Session, ctype: str, at: datetime) -> list[Calibration]:
    """Calibrations of a type nearest in time to ``at``, whatever their attributes (for messages)."""
    before = s.scalars(sa.select(CalibrationRow).where(CalibrationRow.type == ctype, CalibrationRow.dateobs <= at)
                       .order_by(CalibrationRow.dateobs.desc()).limit(MAX_LISTED))
    after = s.scalars(sa.select(CalibrationRow).where(CalibrationRow.type == ctype, CalibrationRow.dateobs > at)
                      .order_by(CalibrationRow.dateobs).limit(MAX_LISTED))
    return [to_record(r) for r in [*before, *after]]


def _find(s: Session, path_or_id: PathOrId, shown_url: str, for_update: bool = False) -> CalibrationRow:
    if isinstance(path_or_id, int) and not isinstance(path_or_id, bool):
        query, what = sa.select(CalibrationRow).where(CalibrationRow.id == path_or_id), f"id {path_or_id}"
    else:
        path = os.path.abspath(os.fspath(path_or_id))
        query, what = sa.select(CalibrationRow).where(CalibrationRow.path == path), f"path {path}"
    row = s.scalars(query.with_for_update() if for_update else query).first()
    if row is None:
        raise CalibrationNotFound(f"{shown_url}: no calibration with {what}")
    return row


def _upsert(s: Session, path: str, values: dict) -> int:
    row = s.scalars(sa.select(CalibrationRow).where(CalibrationRow.path == path).with_for_update()).first()
    now = _now()
    if row is None:
        row = CalibrationRow(path=path, created=now, is_bad=False, bad_reason=None, **values)
        s.add(row)
        s.flush()
        s.add(EventRow(time=now, calibration_id=row.id, action="register", user=_login(),
                       reason=f"{values['type']} of {iso(values['dateobs'])}"))
        return row.id
    changed = [name for name, value in values.items() if getattr(row, name) != value]
    if not changed:
        return row.id
    notes = [f"changed {', '.join(n for n in changed if n != 'checksum')}"] if changed != ["checksum"] else []
    if "checksum" in changed:
        notes.insert(0, f"new content (sha256 {row.checksum[:12]} -> {values['checksum'][:12]})")
        if row.is_bad:
            notes.append(f"bad flag cleared (was: {row.bad_reason})")
        row.is_bad, row.bad_reason, row.created = False, None, now
    for name in changed:
        setattr(row, name, values[name])
    s.add(EventRow(time=now, calibration_id=row.id, action="update", reason="; ".join(notes), user=_login()))
    return row.id


def _use_row(use: Mapping, now: datetime) -> UseRow:
    needed = ("calibration_id", "run", "step", "item")
    missing = [k for k in needed if use.get(k) in (None, "")]
    if missing:
        raise CalibrationError(f"record_uses: a use lacks {', '.join(missing)}: {dict(use)}")
    return UseRow(calibration_id=int(use["calibration_id"]), run=str(use["run"]), step=str(use["step"]),
                  item=str(use["item"]), unit=use.get("unit"), used_at=now, policy=use.get("policy"),
                  reason=use.get("reason"), fallback=bool(use.get("fallback", False)))


def _json_attributes(attributes: Mapping, path: str) -> dict:
    try:
        return json.loads(json.dumps(dict(attributes)))
    except (TypeError, ValueError) as exc:
        raise CalibrationError(f"{path}: attributes must be JSON values: {exc}") from None


def _sha256(path: str, ctype: str) -> str:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise CalibrationError(f"{path}: cannot register this {ctype} calibration: {exc.strerror}") from None
    return digest.hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)


def _login() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a container's uid without a passwd entry
        return None
