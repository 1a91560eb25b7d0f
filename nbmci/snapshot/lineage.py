"""Where a version came from: notebook, executed cells, git state, environment, who and when.

The core never imports IPython: when code runs in a kernel, IPython is already in
``sys.modules`` and we read the running shell from there.
"""

from __future__ import annotations

import datetime as dt
import functools
import getpass
import os
import platform
import socket
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

MAX_CELLS = 500
MAX_CELL_CHARS = 20_000
_CORE_PACKAGES = ("nbmci", "numpy", "pandas", "pyarrow", "scikit-learn", "skops", "joblib")
_DISTRIBUTIONS = {"sklearn": "scikit-learn", "skops": "skops", "xgboost": "xgboost",
                  "lightgbm": "lightgbm", "catboost": "catboost", "torch": "torch"}


def running_shell() -> Any | None:
    ipython = sys.modules.get("IPython")
    get = getattr(ipython, "get_ipython", None)
    return get() if callable(get) else None


def notebook_path(shell: Any | None = None) -> str | None:
    """The notebook's path in JupyterLab / Notebook 7, VS Code or papermill, if known."""
    shell = shell if shell is not None else running_shell()
    user_ns = getattr(shell, "user_ns", None) or {}
    vscode = user_ns.get("__vsc_ipynb_file__")
    if isinstance(vscode, str) and vscode:
        return vscode
    for env in ("NBMCI_NOTEBOOK", "JPY_SESSION_NAME", "PAPERMILL_INPUT_PATH"):
        value = os.environ.get(env)
        if value:
            return value
    return None


def executed_cells(shell: Any | None = None) -> list[str]:
    """The code cells the kernel ran, in order (IPython's input history)."""
    shell = shell if shell is not None else running_shell()
    if shell is None:
        return []
    # the raw history reads as typed (`%mci_commit clf`), `In` holds the transformed code
    inputs = getattr(getattr(shell, "history_manager", None), "input_hist_raw", None)
    if not isinstance(inputs, list) or not inputs:
        inputs = getattr(shell, "user_ns", {}).get("In")
    if not isinstance(inputs, list):
        return []
    cells = [c for c in inputs if isinstance(c, str) and c.strip()]
    return [c[:MAX_CELL_CHARS] for c in cells[-MAX_CELLS:]]


def git_state(directory: Path) -> dict[str, Any] | None:
    """Commit, branch and dirty flag of the work tree holding ``directory``; None outside git."""
    try:
        result = subprocess.run(
            ["git", "-C", str(directory), "status", "--porcelain=v2", "--branch",
             "--untracked-files=no"],
            capture_output=True, text=True, timeout=10, check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if result.returncode != 0:
        return None
    state: dict[str, Any] = {"commit": None, "branch": None, "dirty": False}
    for line in result.stdout.splitlines():
        if line.startswith("# branch.oid "):
            oid = line.split()[-1]
            state["commit"] = None if oid == "(initial)" else oid
        elif line.startswith("# branch.head "):
            head = line.split(maxsplit=2)[-1]
            state["branch"] = None if head == "(detached)" else head
        elif line and not line.startswith("#"):
            state["dirty"] = True
    return state


@functools.lru_cache(maxsize=64)
def package_version(distribution: str) -> str | None:
    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


def package_versions(model: Any = None) -> dict[str, str]:
    names = list(_CORE_PACKAGES)
    if model is not None:
        top = type(model).__module__.split(".")[0]
        names.append(_DISTRIBUTIONS.get(top, top))
    found = {}
    for name in dict.fromkeys(names):
        v = package_version(name)
        if v is not None:
            found[name] = v
    return found


@functools.lru_cache(maxsize=1)
def _who() -> tuple[str, str]:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid()) if hasattr(os, "getuid") else "unknown"
    return user, socket.gethostname()


def actor() -> str:
    user, host = _who()
    return f"{user}@{host}"


def capture(root: Path, model: Any = None, message: str = "",
            extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything known about where this commit comes from."""
    shell = running_shell()
    user, host = _who()
    lineage: dict[str, Any] = {
        "notebook": notebook_path(shell),
        "cells": executed_cells(shell),
        "script": None if shell is not None else (sys.argv[0] or None),
        "cwd": os.getcwd(),
        "git": git_state(root),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "packages": package_versions(model),
        "user": user,
        "host": host,
        "time": dt.datetime.now(dt.UTC).isoformat(),
        "message": message,
    }
    if extra:
        lineage.update(extra)
    return lineage
