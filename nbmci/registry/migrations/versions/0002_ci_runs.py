"""CI runs and the evaluation notebooks they executed.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(JSONB(), "postgresql")
Timestamp = sa.DateTime(timezone=True)
DIGEST = sa.String(80)


def upgrade() -> None:
    op.create_table(
        "ci_runs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("version_id", sa.Integer, sa.ForeignKey("versions.id"), nullable=False),
        sa.Column("started_at", Timestamp, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("metrics", Json, nullable=False),
        sa.Column("gates", Json, nullable=False),
        sa.Column("duration", sa.Float, nullable=False),
        sa.Column("environment", Json, nullable=False),
    )
    op.create_index("ix_ci_runs_version", "ci_runs", ["version_id"])
    op.create_table(
        "ci_notebooks",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("ci_runs.id"), nullable=False),
        sa.Column("notebook", sa.String(512), nullable=False),
        sa.Column("notebook_digest", DIGEST, nullable=False),
        sa.Column("parameters", Json, nullable=False),
        sa.Column("cache_key", DIGEST, nullable=False),
        sa.Column("cached", sa.Boolean, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("records", Json, nullable=False),
        sa.Column("output_digest", DIGEST, nullable=True),
        sa.Column("error", Json, nullable=True),
        sa.Column("duration", sa.Float, nullable=False),
    )
    op.create_index("ix_ci_notebooks_cache_key", "ci_notebooks", ["cache_key"])


def downgrade() -> None:
    op.drop_table("ci_notebooks")
    op.drop_table("ci_runs")
