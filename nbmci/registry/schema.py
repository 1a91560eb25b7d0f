"""Registry tables (SQLAlchemy Core). Changes go through an Alembic revision in migrations/."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

metadata = sa.MetaData()

DIGEST = sa.String(80)
NAME = sa.String(64)
Json = sa.JSON().with_variant(JSONB(), "postgresql")
Timestamp = sa.DateTime(timezone=True)

models = sa.Table(
    "models",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", NAME, nullable=False, unique=True),
    sa.Column("created_at", Timestamp, nullable=False),
    # Highest number ever handed out: versions are gapless and never reused.
    sa.Column("last_version", sa.Integer, nullable=False, server_default="0"),
)

versions = sa.Table(
    "versions",
    metadata,
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

datasets = sa.Table(
    "datasets",
    metadata,
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

aliases = sa.Table(
    "aliases",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id"), nullable=False),
    sa.Column("name", NAME, nullable=False),
    sa.Column("version_id", sa.Integer, sa.ForeignKey("versions.id"), nullable=False),
    sa.Column("updated_at", Timestamp, nullable=False),
    sa.UniqueConstraint("model_id", "name", name="uq_aliases_model_name"),
)

# Every stored object a version needs (model blob, dataset manifests, chunks): fsck and gc.
version_objects = sa.Table(
    "version_objects",
    metadata,
    sa.Column("version_id", sa.Integer, sa.ForeignKey("versions.id"), primary_key=True),
    sa.Column("digest", DIGEST, primary_key=True),
    sa.Index("ix_version_objects_digest", "digest"),
)

# Append-only: who did what, when.
events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", Timestamp, nullable=False),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("model", NAME, nullable=True),
    sa.Column("version", sa.Integer, nullable=True),
    sa.Column("actor", sa.String(128), nullable=False, server_default=""),
    sa.Column("payload", Json, nullable=False),
)

# One `nbmci ci` evaluation of a version: its notebooks, merged metrics and gate outcomes.
ci_runs = sa.Table(
    "ci_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("version_id", sa.Integer, sa.ForeignKey("versions.id"), nullable=False),
    sa.Column("started_at", Timestamp, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # passed | failed | error
    sa.Column("metrics", Json, nullable=False),
    sa.Column("gates", Json, nullable=False),
    sa.Column("duration", sa.Float, nullable=False),
    sa.Column("environment", Json, nullable=False),
    sa.Index("ix_ci_runs_version", "version_id"),
)

# One executed evaluation notebook of a CI run.
ci_notebooks = sa.Table(
    "ci_notebooks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("ci_runs.id"), nullable=False),
    sa.Column("notebook", sa.String(512), nullable=False),
    sa.Column("notebook_digest", DIGEST, nullable=False),
    sa.Column("parameters", Json, nullable=False),
    sa.Column("cache_key", DIGEST, nullable=False),
    sa.Column("cached", sa.Boolean, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # passed | error
    sa.Column("records", Json, nullable=False),
    sa.Column("output_digest", DIGEST, nullable=True),
    sa.Column("error", Json, nullable=True),
    sa.Column("duration", sa.Float, nullable=False),
    sa.Index("ix_ci_notebooks_cache_key", "cache_key"),
)

# Checks of a version other than CI runs; kind "servable": it loads from the store alone in a
# fresh process and reproduces the outputs recorded on its example rows. The newest counts.
checks = sa.Table(
    "checks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("version_id", sa.Integer, sa.ForeignKey("versions.id"), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("passed", sa.Boolean, nullable=False),
    sa.Column("checked_at", Timestamp, nullable=False),
    sa.Column("detail", Json, nullable=False),
    sa.Index("ix_checks_version_kind", "version_id", "kind"),
)
