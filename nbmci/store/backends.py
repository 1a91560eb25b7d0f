"""fsspec protocols nbmci knows an install hint for, and URL redaction for messages."""

from __future__ import annotations

from nbmci.errors import redact_url as redact

__all__ = ["INSTALL_HINTS", "redact"]

INSTALL_HINTS = {
    "s3": "pip install 'nbmci[s3]'",
    "s3a": "pip install 'nbmci[s3]'",
    "gs": "pip install 'nbmci[gcs]'",
    "gcs": "pip install 'nbmci[gcs]'",
    "az": "pip install adlfs",
    "abfs": "pip install adlfs",
}
