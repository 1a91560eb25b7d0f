"""SE-07, SE-08, SE-10 (server half) and SE-15 for the server extension's routes.

The routes come from ``nbmci.lab.HANDLERS``, so a new route is covered without editing here.
"""

from __future__ import annotations

import re
import warnings
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import pytest
import tornado.web
from jupyter_server.utils import JupyterServerAuthWarning

import nbmci.lab
from nbmci.api import Project
from nbmci.lab.handlers import handler_table
from tests.lab.conftest import (
    HOSTILE_MESSAGE,
    HOSTILE_METRIC,
    Client,
    Reply,
    quote,
    record_ci,
    registry_dump,
    tree,
)

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def sample_path(pattern: str) -> str:
    """A concrete path for a route pattern: each path argument becomes a plausible value."""
    if pattern.startswith("(?:"):
        return "no-such-route"
    values = iter(["clf", "1", "notebooks%2Fevaluate.ipynb"])
    if pattern.startswith("jobs/"):
        values = iter(["0123abcd"])
    return re.sub(r"\([^()]*\)", lambda _: next(values), pattern)


def implemented(handler: type) -> list[str]:
    return [m for m in METHODS
            if getattr(handler, m.lower()) is not tornado.web.RequestHandler._unimplemented_method]


ROUTES = [(sample_path(pattern), handler) for pattern, handler in nbmci.lab.HANDLERS]
CALLS = [(method, path) for path, _ in ROUTES for method in METHODS]
GETS = [path for path, handler in ROUTES if "GET" in implemented(handler)]


def test_every_route_is_listed() -> None:
    assert {path for path, _ in ROUTES} >= {
        "models", "models/clf", "models/clf/versions/1", "models/clf/ci", "models/clf/publish",
        "models/clf/rollback", "models/clf/versions/1/notebooks/notebooks%2Fevaluate.ipynb",
        "jobs", "jobs/0123abcd", "jobs/0123abcd/cancel"}
    for _, handler in ROUTES:
        assert implemented(handler), handler


def refused(reply: Reply, why: str = "") -> None:
    assert reply.status in (401, 403), (reply.status, reply.body)
    assert reply.headers["Content-Type"].startswith("application/json")
    assert reply.json["type"] == "HTTPError" and why in reply.json["error"], reply.json
    assert "Location" not in reply.headers


# -- SE-07: authentication on every route -------------------------------------------------------


@pytest.mark.parametrize("jp_server_config", [
    {"ServerApp": {"jpserver_extensions": {"nbmci.lab": True}, "allow_unauthenticated_access":
                   False}},
    {"ServerApp": {"jpserver_extensions": {"nbmci.lab": True}}},
], ids=["unauthenticated-access-off", "default"])
async def test_every_route_refuses_without_a_valid_token(
        api: Client, lab_project: Project, jp_server_config: Any) -> None:
    before = registry_dump(lab_project)
    for method, path in CALLS:
        refused(await api(method, path, {}, token=None))
        refused(await api(method, path, {}, token="wrong"))
        refused(await api(method, path + "?token=wrong", {}, token=None))
    assert registry_dump(lab_project) == before
    assert (await api.get("models")).status == 200  # the token itself works


def test_no_handler_lacks_an_auth_decorator(jp_serverapp: Any, jp_server_cleanup: None) -> None:
    """jupyter_server warns about extension handlers without @web.authenticated."""
    assert jp_serverapp.web_app.settings.get("nbmci.lab") is not None  # the extension loaded
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # a host pattern no request matches: the check runs, the routes stay unreachable
        jp_serverapp.web_app.add_handlers(r"nbmci-auth-check\.invalid$", handler_table("/"))
    auth = [w for w in caught if issubclass(w.category, JupyterServerAuthWarning)]
    assert not auth, [str(w.message) for w in auth]


# -- SE-08: XSRF on POSTs with the login cookie; GETs change nothing --------------------------


async def login_cookie(api: Client) -> str:
    """The login cookie jupyter_server sets on a token-authenticated request."""
    reply = await api.get("models")
    cookies = SimpleCookie()
    for header in reply.headers.get_list("Set-Cookie"):
        cookies.load(header)
    (name,) = [n for n in cookies if n.startswith("username-")]
    return f"{name}={cookies[name].value}"


async def xsrf_token(api: Client, jp_base_url: str) -> str:
    """A genuine _xsrf token: the one the login page sets."""
    response = await api.http.fetch(f"{jp_base_url}login", raise_error=False)
    cookies = SimpleCookie()
    for header in response.headers.get_list("Set-Cookie"):
        cookies.load(header)
    return cookies["_xsrf"].value


async def test_cookie_posts_need_the_xsrf_token_from_the_same_origin(
        api: Client, lab_project: Project, jp_base_url: str) -> None:
    login = await login_cookie(api)
    assert (await api.get("models", token=None, headers={"Cookie": login})).status == 200
    before = registry_dump(lab_project)
    posts = [path for path, handler in ROUTES if "POST" in implemented(handler)]
    for path in posts:
        # the login cookie alone: no _xsrf
        refused(await api.post(path, {}, token=None, headers={"Cookie": login}),
                "'_xsrf' argument missing")
        # an _xsrf cookie planted from a sibling domain, echoed in the header, cross-site Origin
        refused(await api.post(path, {}, token=None, headers={
            "Cookie": f"{login}; _xsrf=planted", "X-XSRFToken": "planted",
            "Origin": "https://evil.example"}), "Cross-origin request refused")
        # a wrong token in the header
        refused(await api.post(path, {}, token=None, headers={
            "Cookie": f"{login}; _xsrf=one", "X-XSRFToken": "two"}),
            "XSRF cookie does not match")
    assert registry_dump(lab_project) == before
    # a cross-site GET with the cookie is refused too
    refused(await api.get("models", token=None, headers={
        "Cookie": login, "Origin": "https://evil.example"}), "Cross-origin request refused")
    # control: the same cookie with JupyterLab's genuine token and same origin goes through
    xsrf = await xsrf_token(api, jp_base_url)
    reply = await api.post("models/clf/publish", {"version": 1, "force": True}, token=None,
                           headers={"Cookie": f"{login}; _xsrf={xsrf}", "X-XSRFToken": xsrf})
    assert reply.status == 200 and reply.json["ref"] == "clf@1"


async def test_gets_change_nothing(api: Client, lab_project: Project,
                                   jp_root_dir: Path) -> None:
    record_ci(lab_project, "clf", 1)
    lab_project.publish("clf@1")

    def files() -> dict[str, int]:
        return tree(jp_root_dir, skip=lambda p: p.name.startswith("registry.db"))

    before, files_before = registry_dump(lab_project), files()
    paths = [*GETS, "models/clf/versions/2", "models/nope", "models/clf/versions/9", "jobs",
             "models/A%20B", "nothing"]
    for path in paths:
        reply = await api.get(path)
        assert reply.status < 500, (path, reply.body)
    assert registry_dump(lab_project) == before
    assert files() == files_before


# -- SE-10: JSON only, never sniffed or rendered ---------------------------------------------


def is_inert_json(reply: Reply) -> None:
    assert reply.headers["Content-Type"] == "application/json"
    assert reply.headers["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in reply.headers["Content-Security-Policy"]
    assert "default-src 'none'" in reply.headers["Content-Security-Policy"]


async def test_hostile_text_comes_back_as_inert_json(api: Client, lab_project: Project,
                                                     fitted: Any) -> None:
    lab_project.commit(fitted, None, name="xss", message=HOSTILE_MESSAGE,
                       metrics={HOSTILE_METRIC: 1.0})
    reply = await api.get("models/xss")
    is_inert_json(reply)
    (version,) = reply.json["versions"]
    assert version["message"] == HOSTILE_MESSAGE
    assert version["metrics"] == {HOSTILE_METRIC: 1.0}
    is_inert_json(await api.get("models/xss/versions/1"))
    is_inert_json(await api.get("models"))
    for bad in (await api.get(f"models/{quote('<script>alert(1)</script>')}"),
                await api.get("models/%3Cimg%20src%3Dx%3E/versions/1"),
                await api.post("models/xss/publish", raw=b"<script>"),
                await api.get("models", token="<b>")):
        assert bad.status in (400, 403)
        is_inert_json(bad)


# -- SE-15: no redirects, no secrets of its own ----------------------------------------------


async def test_routes_never_redirect(api: Client, lab_project: Project) -> None:
    for method, path in CALLS:
        for token in ("default", None):
            reply = await api(method, path + "?next=//evil.example", {}, token=token)
            assert not 300 <= reply.status < 400, (method, path, reply.status)
            assert "Location" not in reply.headers
            for header in reply.headers.get_list("Set-Cookie"):
                # only jupyter_server's own login cookie, never one of nbmci's
                assert header.startswith("username-"), header


def test_the_extension_keeps_no_secret(jp_serverapp: Any, jp_server_cleanup: None) -> None:
    settings = jp_serverapp.web_app.settings
    assert [k for k in settings if "nbmci" in k] == ["nbmci.lab"]
    workspace = settings["nbmci.lab"]
    assert not [k for k in vars(workspace) if re.search("secret|token|key|password", k)]
