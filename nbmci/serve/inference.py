"""The inference routes as plain ASGI, in front of Starlette's router.

``POST /invocations``, ``POST /v2/models/{name}/infer`` and
``POST /v2/models/{name}/versions/{n}/infer`` are the routes that take the load. Starlette's
router, request objects and exception wrappers cost several times the model's own ``predict``
for a one-row request, so these routes are matched by splitting the path, read the body
straight from ``receive`` and answer with two ``send`` calls. Every other route (health,
metadata, metrics, admin) stays on Starlette. The ``Guard`` middleware (Host, Origin, body
limit) sits in front of both.

Errors answer ``{"error": message, "type": ClassName, "hint": ..., "field": ...}`` with the
status of the error's category; nothing a request sends can cause a 5xx.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import orjson

from nbmci import errors
from nbmci.errors import (
    InputMismatchError,
    InvalidInputError,
    NbmciError,
    NotAllowedError,
    category,
)
from nbmci.serve.batching import OverloadedError, PredictTimeoutError
from nbmci.serve.guard import BodyTooLargeError
from nbmci.serve.live import LiveModel
from nbmci.serve.protocols import mlflow, v2
from nbmci.serve.protocols.features import InvalidRequestError

if TYPE_CHECKING:
    from nbmci.serve.app import ServeState

logger = logging.getLogger(__name__)
Scope = dict[str, Any]
Headers = list[tuple[bytes, bytes]]


class UnsupportedMediaTypeError(InvalidInputError):
    def __init__(self, given: str, accepted: tuple[str, ...]) -> None:
        super().__init__(f"Content-Type {given[:80]!r} is not accepted here.",
                         hint=f"Send {' or '.join(accepted)}.")


class UnauthorizedError(NotAllowedError):
    pass


HTTP_STATUS: dict[type, int] = {
    **errors.HTTP_STATUS, UnsupportedMediaTypeError: 415, InputMismatchError: 422,
    UnauthorizedError: 401, OverloadedError: 429, PredictTimeoutError: 504,
}
JSON_TYPES = ("application/json",)
MLFLOW_TYPES = ("application/json", "text/csv")
_JSON_HEADER = (b"content-type", b"application/json")
_OCTETS = (b"content-type", b"application/octet-stream")  # JSON, then binary tensor data


def http_status(exc: NbmciError) -> int:
    return int(category(exc, HTTP_STATUS, 500))


def dump(payload: Any) -> bytes:
    return orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY)


def error_body(exc: NbmciError) -> tuple[int, bytes, dict[str, str]]:
    """Status, JSON body and extra headers of the answer to ``exc``."""
    status = http_status(exc)
    headers = {"Retry-After": "1"} if status in (429, 503) else {}
    if status == 401:
        headers = {"WWW-Authenticate": "Bearer"}
    payload = {"error": exc.message, "type": type(exc).__name__, "hint": exc.hint,
               "field": getattr(exc, "field", None)}
    if isinstance(exc, InputMismatchError) and exc.column is not None:
        payload |= {"column": exc.column, "row": exc.row, "value": _plain(exc.value)}
    body = dump(payload)
    return status, body, headers


def _plain(value: Any) -> Any:
    """A refused value as the client sent it, if JSON can carry it back."""
    if isinstance(value, str):
        return value[:200]
    if value is None or isinstance(value, bool | int | float):
        return value if not isinstance(value, float) or value == value else None
    item = getattr(value, "item", None)
    return _plain(item()) if callable(item) else repr(value)[:200]


def media_type(given: str, accepted: tuple[str, ...]) -> str:
    """The accepted media type ``given`` (a Content-Type header) names; 415 otherwise."""
    kind = given.split(";", 1)[0].strip().lower()
    if kind == "" and "application/json" in accepted:
        return "application/json"  # curl -d and some clients send none
    if kind in accepted or (kind.endswith("+json") and "application/json" in accepted):
        return "text/csv" if kind == "text/csv" else "application/json"
    raise UnsupportedMediaTypeError(given, accepted)


def load_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequestError(f"The body is not valid JSON: {exc}.",
                                  hint="Send a JSON object; NaN must be sent as null.") from exc


def match(path: str) -> tuple[str, str | None, int | None] | None:
    """``(protocol, model name or None, version or None)`` of an inference path, else None."""
    if path == "/invocations":
        return "mlflow", None, None
    if not path.startswith("/v2/models/") or not path.endswith("/infer"):
        return None
    parts = path.split("/")  # "", "v2", "models", name, ["versions", n,] "infer"
    if len(parts) == 5 and parts[3]:
        return "v2", parts[3], None
    if len(parts) == 7 and parts[3] and parts[4] == "versions" and parts[5].isdigit() \
            and parts[5].isascii():
        return "v2", parts[3], int(parts[5])
    return None


class ClientGoneError(Exception):
    """The client disconnected before its body arrived."""


class InferenceRoutes:
    """ASGI middleware answering the inference routes; everything else goes on to ``app``."""

    def __init__(self, app: Any, *, state: ServeState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        route = match(scope["path"]) if scope["type"] == "http" else None
        if route is None:
            await self.app(scope, receive, send)
            return
        if scope["method"] != "POST":
            await _send(send, 405, dump({"error": "Method Not Allowed", "type": "HTTPError",
                                         "hint": "Inference routes take POST."}),
                        [(b"allow", b"POST")])
            return
        protocol, name, version = route
        try:
            status, body, headers = await self._answer(scope, receive, protocol, name, version)
        except ClientGoneError:
            return
        except BodyTooLargeError:  # the Guard in front answers 413
            raise
        except Exception:  # a bug of ours: answer 500 as JSON and log it, never a traceback
            logger.exception("internal error on POST %s", scope["path"])
            status, body, headers = 500, dump({"error": "internal error, please report",
                                               "type": "InternalError", "hint": None}), []
        await _send(send, status, body, headers)

    async def _answer(self, scope: Scope, receive: Any, protocol: str, name: str | None,
                      version: int | None) -> tuple[int, bytes, Headers]:
        state = self.state
        started = time.perf_counter()
        live: LiveModel | None = None
        status = 200
        try:
            media = media_type(_header(scope, b"content-type"),
                               MLFLOW_TYPES if protocol == "mlflow" else JSON_TYPES)
            live = state.host.get(*_which(state, scope, name, version))
            raw = await _read_body(receive)
            headers = [(b"x-model-version", live.version_header)]
            if protocol == "v2":
                raw, binary = v2.split_binary(
                    raw, _header(scope, b"inference-header-content-length"))
                payload = load_json(raw)
                rows = v2.decode(live, payload, binary)
                asked = v2.requested(live, payload)
                answers = [(output, method, wants, await state.batcher.predict(live, rows,
                                                                               method))
                           for output, method, wants in asked]
                result, tail = v2.encode(live, answers, payload.get("id"))
                head = dump(result)
                if not any(wants for _, _, wants in asked):
                    return 200, head, headers
                return 200, head + tail, [_OCTETS, (b"inference-header-content-length",
                                                    str(len(head)).encode()), *headers]
            if media == "text/csv":
                rows, method = mlflow.decode_csv(live, raw), live.default_method
            else:
                payload = load_json(raw)
                rows, method = mlflow.decode_json(live, payload), mlflow.method(live, payload)
            predicted = await state.batcher.predict(live, rows, method)
            return 200, dump(mlflow.encode(predicted)), headers
        except ClientGoneError:
            status = 499  # nginx's "client closed request", for the metrics only
            raise
        except NbmciError as exc:
            status, body, extra = error_body(exc)
            if isinstance(exc, PredictTimeoutError) and live is not None:
                state.metrics.timeouts.labels(live.name).inc()
            return status, body, [(k.lower().encode(), v.encode()) for k, v in extra.items()]
        finally:
            if live is not None:
                state.metrics.observe_request(live.name, live.version_label, protocol, status,
                                              time.perf_counter() - started)


def _which(state: ServeState, scope: Scope, name: str | None,
           version: int | None) -> tuple[str, int | None]:
    if name is not None:
        return name, version
    query = scope.get("query_string", b"")
    asked = dict(parse_qsl(query.decode("latin-1"))).get("model") if query else None
    if asked is not None:
        return asked, None
    live = state.host.live
    if len(live) != 1:
        raise InvalidRequestError(
            f"{len(live)} models are served; name one with ?model=NAME "
            f"({', '.join(sorted(live)) or 'none yet'}).", field="model")
    return next(iter(live)), None


def _header(scope: Scope, key: bytes) -> str:
    for name, value in scope["headers"]:
        if name == key:
            return value.decode("latin-1")  # type: ignore[no-any-return]
    return ""


async def _read_body(receive: Callable[[], Any]) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGoneError()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _send(send: Any, status: int, body: bytes, headers: Headers) -> None:
    """Answer ``body`` as JSON, unless ``headers`` start with their own Content-Type."""
    if not headers or headers[0][0] != b"content-type":
        headers = [_JSON_HEADER, *headers]
    await send({"type": "http.response.start", "status": status,
                "headers": [*headers, (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
