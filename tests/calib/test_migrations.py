"""The schema: a fresh database is migrated to head when a library is opened, the models agree
with the migrations, a pipeline's own migration branch applies in the same database, and several
processes can open and write one database at the same time."""

from __future__ import annotations

import multiprocessing
import sys
import textwrap
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from astroflow.calib import CalibrationError, Library
from astroflow.calib.models import Base
from calib_workers import register_many

NRES_MIGRATION = '''
"""A pipeline's own tables, in a branch of its own (they refer to the calibrations)."""
import sqlalchemy as sa
from alembic import op

revision = "nres_0001"
down_revision = None
branch_labels = ("nres",)
depends_on = None


def upgrade():
    op.create_table(
        "nres_processed_frames",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("filename", sa.Text, nullable=False, unique=True),
        sa.Column("calibration_id", sa.Integer, sa.ForeignKey("calibrations.id")),
    )


def downgrade():
    op.drop_table("nres_processed_frames")
'''


def _heads(lib: Library, table: str = "alembic_version") -> set[str]:
    with lib._connect().connect() as conn:
        return set(MigrationContext.configure(conn, opts={"version_table": table}).get_current_heads())


def _tables(lib: Library) -> set[str]:
    return set(sa.inspect(lib._connect()).get_table_names())


def test_a_fresh_database_is_at_head_and_matches_the_models(lib):
    assert lib.revision() == 0  # the first use migrates
    assert _heads(lib) == {"calib_0001"}
    assert {"calibrations", "calibration_uses", "calibration_events"} <= _tables(lib)
    with lib._connect().connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], f"models.py and the migrations disagree: {diff}"


@pytest.fixture
def nres_migrations(tmp_path):
    folder = tmp_path / "nres_migrations"
    folder.mkdir()
    (folder / "nres_0001_frames.py").write_text(textwrap.dedent(NRES_MIGRATION))
    return folder


def test_a_pipeline_branch_applies(db_url, nres_migrations, nres_package, make_file):
    lib = Library(db_url, migrations=[nres_migrations])
    cid = lib.register("bias", make_file("b.fits"), datetime(2019, 1, 1), {})
    assert _heads(lib) == {"calib_0001"} and _heads(lib, "alembic_version_nres") == {"nres_0001"}
    assert "nres_processed_frames" in _tables(lib)
    with lib._connect().begin() as conn:
        conn.execute(sa.text("INSERT INTO nres_processed_frames (filename, calibration_id) VALUES ('f.fits', :c)"),
                     {"c": cid})
    lib.close()
    # the library alone still opens the database (its own branch is at head) ...
    assert Library(db_url).get(cid).id == cid
    # ... and a branch can be named as a package too (already applied here: nothing to do)
    assert _heads(Library(db_url, migrations=["calib_workers_nres"]), "alembic_version_nres") == {"nres_0001"}


@pytest.fixture
def nres_package(nres_migrations, monkeypatch):
    """The same branch as an importable package, calib_workers_nres."""
    package = nres_migrations.parent / "pkgs" / "calib_workers_nres"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "nres_0001_frames.py").write_text(textwrap.dedent(NRES_MIGRATION))
    monkeypatch.syspath_prepend(str(package.parent))
    yield
    sys.modules.pop("calib_workers_nres", None)


def test_a_package_branch_applies_to_a_fresh_database(db_url, nres_package):
    lib = Library(db_url, migrations=["calib_workers_nres"])
    assert lib.revision() == 0 and "nres_processed_frames" in _tables(lib)


def test_bad_migrations_are_named(tmp_path, nres_migrations):
    with pytest.raises(CalibrationError, match="neither a folder nor an importable package"):
        Library(f"sqlite:///{tmp_path}/c.db", migrations=["no_such_package_here"])
    (nres_migrations / "nres_0001_frames.py").write_text(
        textwrap.dedent(NRES_MIGRATION).replace('branch_labels = ("nres",)', "branch_labels = None"))
    with pytest.raises(CalibrationError, match="one branch label"):
        Library(f"sqlite:///{tmp_path}/c.db", migrations=[nres_migrations]).revision()


@pytest.mark.parametrize("start", ["fork", "spawn"])
def test_concurrent_writers(db_url, tmp_path, start):
    """Two processes open one fresh database at once (both migrate) and register 50 each (on
    SQLite this fails with "database is locked" unless writes take the lock when they begin)."""
    lib = Library(db_url)
    if start == "fork":
        lib.revision()  # the parent's engine exists and is inherited by the children
    folder = tmp_path / "files"
    folder.mkdir()
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context(start)) as pool:
        jobs = [pool.submit(register_many, lib, str(folder), tag, 50) for tag in ("a", "b")]
        ids = [i for job in jobs for i in job.result(timeout=120)]
    assert len(set(ids)) == 100
    assert len(lib.list()) == 100 and len(lib.list(writer="a")) == 50
    assert lib.revision() == 100
