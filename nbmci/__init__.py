"""nbmci: model CI/CD that lives in Jupyter.

``import nbmci`` is cheap: the API (and SQLAlchemy, pandas, pyarrow behind it) loads on first
use of any name below.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nbmci.api import (
        Project,
        check,
        checkout,
        commit,
        diff,
        fsck,
        gc,
        init,
        load,
        load_data,
        models,
        project,
        publish,
        rollback,
        show,
        versions,
    )
    from nbmci.errors import NbmciError
    from nbmci.recording import record
    from nbmci.results import Diff, ModelSummary, Version

__all__ = [
    "Diff",
    "ModelSummary",
    "NbmciError",
    "Project",
    "Version",
    "check",
    "checkout",
    "commit",
    "diff",
    "fsck",
    "gc",
    "init",
    "load",
    "load_data",
    "models",
    "project",
    "publish",
    "record",
    "rollback",
    "show",
    "versions",
]
__version__ = "0.1.0"

_HOMES = {
    "NbmciError": "nbmci.errors",
    "record": "nbmci.recording",
    "Diff": "nbmci.results",
    "ModelSummary": "nbmci.results",
    "Version": "nbmci.results",
}


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """Where the prebuilt JupyterLab extension is, for ``jupyter labextension develop``."""
    return [{"src": "labextension", "dest": "nbmci"}]


def load_ipython_extension(ipython: Any) -> None:
    """Register the ``%mci_*`` magics: run by ``%load_ext nbmci``, or by IPython at start-up
    with ``c.InteractiveShellApp.extensions = ["nbmci"]`` in an IPython or kernel config."""
    from nbmci.jupyter.magics import register  # IPython and ipywidgets load only here

    register(ipython)


def __getattr__(name: str) -> Any:
    if name in __all__:
        value = getattr(importlib.import_module(_HOMES.get(name, "nbmci.api")), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'nbmci' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
