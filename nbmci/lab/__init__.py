"""The jupyter_server extension: the REST API of nbmci's JupyterLab panel.

Enabled on install by ``jupyter-config/server-config/nbmci.json`` (shipped as wheel data into
``etc/jupyter/jupyter_server_config.d``); check with ``jupyter server extension list``.
Routes live under ``{base_url}nbmci/api/``; ``HANDLERS`` lists them::

    GET  models                                         every model (ModelSummary)
    GET  models/{name}                                  its versions, newest first, with CI, and
                                                        where production would roll back to
    GET  models/{name}/versions/{n}                     one version with params, data, lineage
    GET  models/{name}/versions/{n}/notebooks/{nb}      an executed notebook of its CI (JSON)
    POST models/{name}/ci                               run CI in the background -> a job (202)
    POST models/{name}/publish                          move ``production`` (Publication)
    POST models/{name}/rollback                         move it back (Publication)
    GET  jobs, jobs/{id}; POST jobs/{id}/cancel         background CI jobs

Errors of the panel's actions (publish, rollback, CI, notebooks) also carry ``reason`` and
``panel_hint`` (see ``nbmci.lab.wording``). The core never imports this package; handlers only
translate between HTTP and ``nbmci.api``.
"""

from __future__ import annotations

from typing import Any

from nbmci.lab.handlers import HANDLERS, setup_handlers

__all__ = ["HANDLERS", "_jupyter_server_extension_points", "_load_jupyter_server_extension"]


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "nbmci.lab"}]


def _load_jupyter_server_extension(server_app: Any) -> None:
    """Add nbmci's routes to the server's web application."""
    setup_handlers(server_app)
