"""NRES's own tables in the calibration library's database (branch ``nres``).

Sites and instruments (location, time zone, restart hour), processed frames (banzai's
processed-images table: checksum, success, tries), targets (targets.csv) and ZEROs (zeros.csv,
each tied to its calibration row).

Revision ID: nres_0001
"""

import sqlalchemy as sa
from alembic import op

revision = "nres_0001"
down_revision = None
branch_labels = ("nres",)
depends_on = None

UTC_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "nres_sites",
        sa.Column("site", sa.String(8), primary_key=True),
        sa.Column("instrument", sa.String(16), primary_key=True),
        sa.Column("camera", sa.String(16), nullable=False),
        sa.Column("latitude", sa.Float), sa.Column("longitude", sa.Float), sa.Column("height", sa.Float),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("restart_hour", sa.Integer, nullable=False),
    )
    op.create_table(
        "nres_processed_frames",
        sa.Column("filename", sa.String(128), primary_key=True),
        sa.Column("checksum", sa.String(64), nullable=False),
        sa.Column("success", sa.Boolean, nullable=False),
        sa.Column("tries", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("updated", UTC_TIME, nullable=False),
    )
    op.create_table(
        "nres_targets",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("ra", sa.Float, nullable=False), sa.Column("dec", sa.Float, nullable=False),
        sa.Column("pm_ra", sa.Float), sa.Column("pm_dec", sa.Float), sa.Column("parallax", sa.Float),
        sa.Column("rv", sa.Float), sa.Column("teff", sa.Float), sa.Column("logg", sa.Float),
        sa.Column("vmag", sa.Float), sa.Column("bmag", sa.Float), sa.Column("jmag", sa.Float),
        sa.Column("kmag", sa.Float), sa.Column("zero", sa.Text),
    )
    op.create_table(
        "nres_zeros",
        sa.Column("filename", sa.Text, primary_key=True),
        sa.Column("calibration_id", sa.Integer, sa.ForeignKey("calibrations.id")),
        sa.Column("target", sa.String(64), nullable=False),
        sa.Column("site", sa.String(8)), sa.Column("camera", sa.String(16)),
        sa.Column("navg", sa.Integer), sa.Column("jdate", sa.Float),
        sa.Column("teff", sa.Float), sa.Column("logg", sa.Float), sa.Column("bmv", sa.Float), sa.Column("jmk", sa.Float),
        sa.Column("usable", sa.Boolean, nullable=False),
    )


def downgrade() -> None:
    for t in ("nres_zeros", "nres_targets", "nres_processed_frames", "nres_sites"):
        op.drop_table(t)
