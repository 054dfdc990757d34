"""The calibration library's first schema: calibrations, their uses, their events.

Revision ID: calib_0001
Revises: (base of the ``calib`` branch)
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "calib_0001"
down_revision = None
branch_labels = ("calib",)
depends_on = None

JSON = sa.JSON().with_variant(JSONB(), "postgresql")
UTC_TIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "calibrations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("attributes", JSON, nullable=False),
        sa.Column("dateobs", UTC_TIME, nullable=False),
        sa.Column("created", UTC_TIME, nullable=False),
        sa.Column("path", sa.Text, nullable=False, unique=True),
        sa.Column("checksum", sa.String(64), nullable=False),
        sa.Column("is_master", sa.Boolean, nullable=False),
        sa.Column("is_bad", sa.Boolean, nullable=False),
        sa.Column("bad_reason", sa.Text),
        sa.Column("good_after", UTC_TIME),
        sa.Column("good_until", UTC_TIME),
        sa.Column("frames", JSON, nullable=False),
        sa.Column("run", sa.Text),
        sa.Column("step", sa.String(128)),
        sa.Column("item", sa.Text),
        sa.Column("unit", sa.String(64)),
        sa.Column("code_version", sa.String(64)),
    )
    op.create_index("ix_calibrations_type_dateobs", "calibrations", ["type", "dateobs"])

    op.create_table(
        "calibration_uses",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("calibration_id", sa.Integer, sa.ForeignKey("calibrations.id"), nullable=False),
        sa.Column("run", sa.Text, nullable=False),
        sa.Column("step", sa.String(128), nullable=False),
        sa.Column("item", sa.Text, nullable=False),
        sa.Column("unit", sa.String(64)),
        sa.Column("used_at", UTC_TIME, nullable=False),
        sa.Column("policy", JSON),
        sa.Column("reason", sa.Text),
        sa.Column("fallback", sa.Boolean, nullable=False),
        sa.UniqueConstraint("calibration_id", "run", "step", "item", name="uq_calibration_uses_item"),
    )
    op.create_index("ix_calibration_uses_calibration", "calibration_uses", ["calibration_id"])
    op.create_index("ix_calibration_uses_run_step_item", "calibration_uses", ["run", "step", "item"])

    op.create_table(
        "calibration_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("time", UTC_TIME, nullable=False),
        sa.Column("calibration_id", sa.Integer, sa.ForeignKey("calibrations.id"), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text),
        sa.Column("user", sa.String(128)),
        sa.CheckConstraint("action IN ('register', 'update', 'mark-bad', 'mark-good')",
                           name="ck_calibration_events_action"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_calibration_events_calibration", "calibration_events", ["calibration_id"])


def downgrade() -> None:
    op.drop_table("calibration_events")
    op.drop_table("calibration_uses")
    op.drop_table("calibrations")
