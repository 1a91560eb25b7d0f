"""fsspec protocols nbmci knows an install hint for, and URL redaction for messages."""

from __future__ import annotations

import re

INSTALL_HINTS = {
    "s3": "pip install 'nbmci[s3]'",
    "s3a": "pip install 'nbmci[s3]'",
    "gs": "pip install 'nbmci[gcs]'",
    "gcs": "pip install 'nbmci[gcs]'",
    "az": "pip install adlfs",
    "abfs": "pip install adlfs",
}

_USERINFO = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/@\s]+@", re.IGNORECASE)


def redact(url: str) -> str:
    """Hide credentials in a URL before it goes into a message or a log line."""
    return _USERINFO.sub(r"\g<scheme>***@", url)
