"""A private PostgreSQL cluster on 127.0.0.1 for tests (initdb/pg_ctl as the postgres user)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_BINARIES = [Path("/usr/lib/postgresql") / v / "bin" for v in ("17", "16", "15", "14")]


def _bin_dir() -> Path | None:
    for directory in _BINARIES:
        if (directory / "initdb").exists():
            return directory
    return None


def unavailable_reason() -> str | None:
    if _bin_dir() is None:
        return "PostgreSQL server binaries are not installed (apt-get install postgresql)"
    if shutil.which("runuser") is None or os.geteuid() != 0:
        return "starting a private PostgreSQL cluster needs root (runuser -u postgres)"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return "psycopg is not installed (pip install 'nbmci[postgres]')"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def cluster() -> Iterator[str]:
    """Yield a SQLAlchemy URL of a fresh cluster; stop and delete it afterwards."""
    bin_dir = _bin_dir()
    assert bin_dir is not None
    base = Path(tempfile.mkdtemp(prefix="nbmci-pg-"))
    shutil.chown(base, "postgres", "postgres")
    port = _free_port()
    as_postgres = ["runuser", "-u", "postgres", "--"]
    subprocess.run([*as_postgres, str(bin_dir / "initdb"), "-D", str(base / "data"), "-U",
                    "postgres", "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"],
                   check=True, capture_output=True, timeout=60)
    subprocess.run([*as_postgres, str(bin_dir / "pg_ctl"), "-D", str(base / "data"), "-l",
                    str(base / "server.log"), "-o",
                    f"-c listen_addresses=127.0.0.1 -p {port} -k {base} -c fsync=off",
                    "-w", "start"], check=True, capture_output=True, timeout=60)
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_postgres, str(bin_dir / "pg_ctl"), "-D", str(base / "data"), "-m",
                        "immediate", "-w", "stop"], capture_output=True, timeout=60)
        shutil.rmtree(base, ignore_errors=True)
