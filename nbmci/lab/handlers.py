"""REST handlers: HTTP in, ``nbmci.api`` on a worker thread, JSON out, errors included.

Every verb is ``@tornado.web.authenticated``; jupyter_server checks the XSRF token of POSTs
made with its login cookie. Errors are ``{"error", "message", "type", "hint", "status"}`` with
the status of the error's category, never an HTML page or a traceback.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable
from http.client import responses
from typing import Any, TypeVar

import orjson
import tornado.web
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join

from nbmci import refs
from nbmci.errors import (
    HTTP_STATUS,
    InvalidInputError,
    NbmciError,
    NotFoundError,
    category,
)
from nbmci.lab import wording
from nbmci.lab.workspace import Workspace

logger = logging.getLogger(__name__)

T = TypeVar("T")
SETTINGS_KEY = "nbmci.lab"
API_PATH = "nbmci/api"
MAX_BODY = 64 * 1024
_HTTP_HINTS = {
    403: "Reload JupyterLab and log in again: nbmci's API needs Jupyter's token or login "
         "cookie, and a POST also needs the _xsrf token from the same origin.",
    405: "See the README section 'JupyterLab panel and REST API' for each route's methods.",
}
_NUMBER = re.compile(r"[1-9][0-9]{0,8}")
_JSON = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def http_status(exc: NbmciError) -> int:
    return int(category(exc, HTTP_STATUS, 500))


def to_json(payload: Any) -> bytes:
    """JSON bytes; NaN and infinities become null, which JSON.parse accepts."""
    return orjson.dumps(payload, default=str, option=_JSON)


class NbmciHandler(APIHandler):
    """Workspace access, the worker thread, JSON bodies and the error mapping."""

    async def prepare(self) -> None:
        await super().prepare()
        # every method needs a user, also where tornado would answer 405 (CORS preflight aside)
        if self.request.method != "OPTIONS" and not self.current_user:
            raise tornado.web.HTTPError(403)

    @property
    def workspace(self) -> Workspace:
        workspace: Workspace = self.settings[SETTINGS_KEY]
        return workspace

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on a worker thread: the core is synchronous; the server stays free."""
        return await asyncio.to_thread(fn, *args)

    def reply(self, payload: Any, status: int = 200) -> None:
        self.set_status(status)
        self.finish(to_json(payload))

    def json_body(self, **fields: tuple[type, ...]) -> dict[str, Any]:
        """The body as a JSON object with only ``fields`` (name -> accepted types)."""
        raw = self.request.body or b""
        if len(raw) > MAX_BODY:
            raise InvalidInputError(f"The request body has {len(raw)} bytes; at most "
                                    f"{MAX_BODY} are accepted.")
        try:
            data = json.loads(raw) if raw.strip() else {}
        except (ValueError, RecursionError) as exc:
            raise InvalidInputError(f"The request body is not valid JSON: {exc}.",
                                    hint='Send a JSON object, e.g. {"version": 3}.') from exc
        if not isinstance(data, dict):
            raise InvalidInputError(f"The request body must be a JSON object, not "
                                    f"{type(data).__name__}.", hint='E.g. {"version": 3}.')
        unknown = sorted(set(data) - set(fields))
        if unknown:
            known = ", ".join(fields) or "none"
            raise InvalidInputError(f"Unknown field(s) {unknown!r:.200} in the request body.",
                                    hint=f"Known fields: {known}.")
        for key, kinds in fields.items():
            value = data.get(key)
            if value is not None and (not isinstance(value, kinds) or (
                    isinstance(value, bool) and bool not in kinds)):
                wanted = " or ".join(k.__name__ for k in kinds)
                raise InvalidInputError(f"Field '{key}' must be {wanted}, not {value!r:.80}.")
        return data

    @property
    def content_security_policy(self) -> str:
        # JSON only; should anything be rendered from here, it runs in a sandbox (SE-10)
        return f"{super().content_security_policy}; sandbox"

    def check_origin(self, origin_to_satisfy_tornado: str = "") -> bool:
        # jupyter_server answers a cross-origin API call with 404; it is a refusal: 403
        if super().check_origin(origin_to_satisfy_tornado):
            return True
        raise tornado.web.HTTPError(403, "Cross-origin request refused.")

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = (kwargs.get("exc_info") or (None, None, None))[1]
        if isinstance(exc, tornado.web.HTTPError) and isinstance(exc.__cause__, NbmciError):
            exc = exc.__cause__
        panel: dict[str, Any] = {}
        if isinstance(exc, wording.ActionError):  # a panel action: its reason and hint too
            exc, panel = exc.error, exc.to_dict()
        if isinstance(exc, NbmciError):
            status_code = http_status(exc)
            self.set_status(status_code)
            body = {"error": exc.message, "type": type(exc).__name__, "hint": exc.hint, **panel}
        elif isinstance(exc, tornado.web.HTTPError) or exc is None:
            message = _http_message(exc) or responses.get(status_code, "Error")
            body = {"error": message, "type": "HTTPError", "hint": _HTTP_HINTS.get(status_code)}
        else:  # a bug: tornado has logged the traceback; the user gets none
            body = {"error": "Internal error in the nbmci server extension; please report it.",
                    "type": "InternalError", "hint": "The Jupyter server log has the details."}
        self.finish(to_json({**body, "message": body["error"], "status": status_code}))

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, wording.ActionError):
            value = value.error
        if isinstance(value, NbmciError):  # the user's mistake, answered: one line, no trace
            self.log.info("nbmci: %s %s -> %s: %s", self.request.method, self.request.path,
                          type(value).__name__, value)
            return
        super().log_exception(typ, value, tb)


def _http_message(exc: tornado.web.HTTPError | None) -> str | None:
    if exc is None or not exc.log_message:
        return exc.reason if exc is not None else None
    try:
        return str(exc.log_message % exc.args) if exc.args else str(exc.log_message)
    except (TypeError, ValueError):
        return str(exc.log_message)


def model_name(name: str) -> str:
    return refs.validate_name(name)


def version_number(text: str) -> int:
    if not _NUMBER.fullmatch(text):
        raise InvalidInputError(f"{text[:80]!r} is not a version number.",
                                hint="Versions are whole numbers from 1, e.g. "
                                     "nbmci/api/models/clf/versions/3.")
    return int(text)


# -- work done on the worker thread -----------------------------------------------------------


def _models(workspace: Workspace) -> list[dict[str, Any]]:
    project = workspace.find_project()
    return [] if project is None else [m.to_dict() for m in project.models()]


def _model(workspace: Workspace, name: str) -> dict[str, Any]:
    """The versions, and where production would roll back to (null: nowhere)."""
    project = workspace.project()
    versions = project.versions(name)
    aliases = {alias: v.version for v in reversed(versions) for alias in v.aliases}
    return {"name": name, "aliases": aliases, "versions": [v.to_dict() for v in versions],
            "rollback": wording.rollback_target(project, name)}


def _version(workspace: Workspace, name: str, number: int) -> dict[str, Any]:
    return workspace.project().show(f"{name}@{number}").to_dict(full=True)


def _start_ci(workspace: Workspace, name: str, version: int | None) -> dict[str, Any]:
    try:
        return workspace.jobs.start_ci(workspace.project(), name, version).to_dict()
    except NbmciError as exc:
        raise wording.generic(exc) from exc


def _publish(workspace: Workspace, name: str, version: int, force: bool) -> dict[str, Any]:
    project = workspace.project()
    try:
        return project.publish(f"{name}@{version}", force=force).to_dict()
    except NbmciError as exc:
        raise wording.publish_refusal(project, f"{name}@{version}", force, exc) from exc


def _rollback(workspace: Workspace, name: str) -> dict[str, Any]:
    project = workspace.project()
    try:
        return project.rollback(name).to_dict()
    except NbmciError as exc:
        raise wording.rollback_refusal(project, name, exc) from exc


def _notebook(workspace: Workspace, name: str, number: int, notebook: str) -> dict[str, Any]:
    try:
        return workspace.executed_notebook(name, number, notebook)
    except NbmciError as exc:
        raise wording.generic(exc) from exc


# -- handlers ---------------------------------------------------------------------------------


class ModelsHandler(NbmciHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        self.reply(await self.call(_models, self.workspace))


class ModelHandler(NbmciHandler):
    @tornado.web.authenticated
    async def get(self, name: str) -> None:
        self.reply(await self.call(_model, self.workspace, model_name(name)))


class VersionHandler(NbmciHandler):
    @tornado.web.authenticated
    async def get(self, name: str, number: str) -> None:
        self.reply(await self.call(_version, self.workspace, model_name(name),
                                   version_number(number)))


class NotebookHandler(NbmciHandler):
    @tornado.web.authenticated
    async def get(self, name: str, number: str, notebook: str) -> None:
        self.reply(await self.call(_notebook, self.workspace, model_name(name),
                                   version_number(number), notebook))


class CIHandler(NbmciHandler):
    @tornado.web.authenticated
    async def post(self, name: str) -> None:
        body = self.json_body(version=(int,))
        version = version_number(str(body["version"])) if "version" in body and \
            body["version"] is not None else None
        self.reply(await self.call(_start_ci, self.workspace, model_name(name), version), 202)


class PublishHandler(NbmciHandler):
    @tornado.web.authenticated
    async def post(self, name: str) -> None:
        body = self.json_body(version=(int,), force=(bool,))
        if body.get("version") is None:
            raise InvalidInputError("Field 'version' is required: the version to publish.",
                                    hint='E.g. {"version": 3}.')
        self.reply(await self.call(_publish, self.workspace, model_name(name),
                                   version_number(str(body["version"])),
                                   body.get("force") is True))


class RollbackHandler(NbmciHandler):
    @tornado.web.authenticated
    async def post(self, name: str) -> None:
        self.json_body()
        self.reply(await self.call(_rollback, self.workspace, model_name(name)))


class JobsHandler(NbmciHandler):
    @tornado.web.authenticated
    async def get(self) -> None:
        self.reply([job.to_dict() for job in self.workspace.jobs.list()])


class JobHandler(NbmciHandler):
    @tornado.web.authenticated
    async def get(self, job_id: str) -> None:
        self.reply(self.workspace.jobs.get(job_id).to_dict())


class JobCancelHandler(NbmciHandler):
    @tornado.web.authenticated
    async def post(self, job_id: str) -> None:
        self.json_body()
        self.reply(self.workspace.jobs.cancel(job_id).to_dict(), 202)


class NoRouteHandler(NbmciHandler):
    """Anything else under nbmci/api: a JSON 404, not Jupyter's HTML page."""

    def _no_route(self) -> None:
        raise NotFoundError(f"No nbmci API route {self.request.method} {self.request.path}.",
                            hint="See the README section 'JupyterLab panel and REST API'.")

    @tornado.web.authenticated
    async def get(self, *args: str) -> None:
        self._no_route()

    @tornado.web.authenticated
    async def post(self, *args: str) -> None:
        self._no_route()

    @tornado.web.authenticated
    async def put(self, *args: str) -> None:
        self._no_route()

    @tornado.web.authenticated
    async def patch(self, *args: str) -> None:
        self._no_route()

    @tornado.web.authenticated
    async def delete(self, *args: str) -> None:
        self._no_route()


_SEGMENT = "([^/]+)"
_VERSION = f"models/{_SEGMENT}/versions/{_SEGMENT}"
# (path under {base_url}nbmci/api/, handler); path arguments are validated in the handlers,
# so a bad name is a JSON 400, never a fall-through to Jupyter's HTML 404
HANDLERS: list[tuple[str, type[NbmciHandler]]] = [
    ("models", ModelsHandler),
    (f"models/{_SEGMENT}", ModelHandler),
    (_VERSION, VersionHandler),
    (f"{_VERSION}/notebooks/(.+)", NotebookHandler),  # the name may hold '/'
    (f"models/{_SEGMENT}/ci", CIHandler),
    (f"models/{_SEGMENT}/publish", PublishHandler),
    (f"models/{_SEGMENT}/rollback", RollbackHandler),
    ("jobs", JobsHandler),
    (f"jobs/{_SEGMENT}", JobHandler),
    (f"jobs/{_SEGMENT}/cancel", JobCancelHandler),
    ("(?:/.*)?", NoRouteHandler),  # joined without a '/', so it also takes nbmci/api itself
]


def handler_table(base_url: str) -> list[tuple[str, type[NbmciHandler]]]:
    """``HANDLERS`` as tornado URL patterns under ``base_url``."""
    base = url_path_join(base_url, API_PATH)
    return [(base + pattern if cls is NoRouteHandler else url_path_join(base, pattern), cls)
            for pattern, cls in HANDLERS]


def setup_handlers(server_app: Any) -> None:
    """Keep a Workspace for the server's root directory and add the routes."""
    web_app = server_app.web_app
    web_app.settings[SETTINGS_KEY] = Workspace(server_app.root_dir)
    web_app.add_handlers(".*$", handler_table(web_app.settings["base_url"]))
    logger.info("nbmci: REST API at %s", url_path_join(web_app.settings["base_url"], API_PATH))
