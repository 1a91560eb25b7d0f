"""Initial schema: models, versions, datasets, aliases, version_objects, events.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Json = sa.JSON().with_variant(JSONB(), "postgresql")
Timestamp = sa.DateTime(timezone=True)
DIGEST = sa.String(80)
NAME = sa.String(64)


def upgrade() -> None:
    op.create_table(
        "models",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", NAME, nullable=False, unique=True),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("last_version", sa.Integer, nullable=False, server_default="0"),
    )
    op.create_table(
        "versions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id"), nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("created_at", Timestamp, nullable=False),
        sa.Column("message", sa.Text, nullable=False, server_default=""),
        sa.Column("author", sa.String(128), nullable=False, server_default=""),
        sa.Column("model_digest", DIGEST, nullable=False),
        sa.Column("model_format", sa.String(32), nullable=False),
        sa.Column("model_class", sa.String(256), nullable=False),
        sa.Column("model_size", sa.BigInteger, nullable=False),
        sa.Column("trusted", sa.Boolean, nullable=False),
        sa.Column("trusted_types", Json, nullable=False),
        sa.Column("params", Json, nullable=False),
        sa.Column("metrics", Json, nullable=False),
        sa.Column("signature", Json, nullable=False),
        sa.Column("lineage", Json, nullable=False),
        sa.Column("stored", Json, nullable=False),
        sa.UniqueConstraint("model_id", "number", name="uq_versions_model_number"),
    )
    op.create_table(
        "datasets",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("version_id", sa.Integer, sa.ForeignKey("versions.id"), nullable=False),
        sa.Column("key", NAME, nullable=False),
        sa.Column("digest", DIGEST, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("rows", sa.BigInteger, nullable=False),
        sa.Column("nbytes", sa.BigInteger, nullable=False),
        sa.Column("schema", Json, nullable=False),
        sa.Column("stats", Json, nullable=False),
        sa.UniqueConstraint("version_id", "key", name="uq_datasets_version_key"),
    )
    op.create_table(
        "aliases",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id"), nullable=False),
        sa.Column("name", NAME, nullable=False),
        sa.Column("version_id", sa.Integer, sa.ForeignKey("versions.id"), nullable=False),
        sa.Column("updated_at", Timestamp, nullable=False),
        sa.UniqueConstraint("model_id", "name", name="uq_aliases_model_name"),
    )
    op.create_table(
        "version_objects",
        sa.Column("version_id", sa.Integer, sa.ForeignKey("versions.id"), primary_key=True),
        sa.Column("digest", DIGEST, primary_key=True),
    )
    op.create_index("ix_version_objects_digest", "version_objects", ["digest"])
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", Timestamp, nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("model", NAME, nullable=True),
        sa.Column("version", sa.Integer, nullable=True),
        sa.Column("actor", sa.String(128), nullable=False, server_default=""),
        sa.Column("payload", Json, nullable=False),
    )


def downgrade() -> None:
    for table in ("events", "version_objects", "aliases", "datasets", "versions", "models"):
        op.drop_table(table)
