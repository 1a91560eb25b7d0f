"""Content-addressed object storage over fsspec URLs."""

from nbmci.store.objects import ObjectStore, StoredObject, open_store

__all__ = ["ObjectStore", "StoredObject", "open_store"]
