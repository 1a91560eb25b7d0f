"""Metadata in SQL: models, versions, datasets, aliases and an append-only event log."""

from nbmci.registry.queries import Registry

__all__ = ["Registry"]
