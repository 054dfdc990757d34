"""Alembic's environment for the calibration library and for the pipelines' migration branches.

:class:`astroflow.calib.library.Library` runs the migrations on a connection it has already opened
in a transaction (holding the write lock), passed as ``config.attributes["connection"]``, with the
branch's version table (``alembic_version`` for the library's own, ``alembic_version_<label>``
for a pipeline's) and metadata; Alembic migrates inside that transaction and the library commits.
For writing new revisions with the ``alembic`` command, ``sqlalchemy.url`` in the configuration
names a database instead (and the library's own branch is meant).
"""

from alembic import context
from sqlalchemy import create_engine

from astroflow.calib.models import Base

config = context.config
connection = config.attributes.get("connection")
options = {
    "version_table": config.attributes.get("version_table") or "alembic_version",
    "target_metadata": config.attributes.get("target_metadata", Base.metadata),
    "render_as_batch": True,  # SQLite alters tables by copying them
}

if connection is not None:
    context.configure(connection=connection, **options)
    with context.begin_transaction():
        context.run_migrations()
else:
    engine = create_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as conn:
        context.configure(connection=conn, **options)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()
