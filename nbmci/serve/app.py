"""The serving app: ``create_app(settings) -> Starlette``, a face over ``ModelHost``.

Routes: Open Inference Protocol v2 under ``/v2``, MLflow's ``/invocations``, ``/metrics``,
``/openapi.json`` and the token-guarded ``/admin/reload``. Errors answer JSON
``{"error": message, "type": ClassName, "hint": ..., "field": ...}`` (``error`` holds the
message, as the v2 protocol's clients read it) with the status of the error's category.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nbmci.errors import (
    ConflictError,
    FailedError,
    IntegrityError,
    InvalidInputError,
    NbmciError,
    NotAllowedError,
    NotFoundError,
    UnavailableError,
    category,
)
from nbmci.serve import openapi
from nbmci.serve.batching import MicroBatcher, OverloadedError, PredictTimeoutError
from nbmci.serve.guard import Guard
from nbmci.serve.host import LiveModel, ModelHost
from nbmci.serve.metrics import Metrics
from nbmci.serve.protocols import mlflow, v2
from nbmci.serve.protocols.features import InputMismatchError, InvalidRequestError
from nbmci.serve.settings import ServeSettings

logger = logging.getLogger(__name__)


class UnsupportedMediaTypeError(InvalidInputError):
    def __init__(self, given: str, accepted: tuple[str, ...]) -> None:
        super().__init__(f"Content-Type {given[:80]!r} is not accepted here.",
                         hint=f"Send {' or '.join(accepted)}.")


class UnauthorizedError(NotAllowedError):
    pass


HTTP_STATUS: dict[type, int] = {
    UnsupportedMediaTypeError: 415, InputMismatchError: 422, InvalidInputError: 400,
    NotFoundError: 404, ConflictError: 409, UnauthorizedError: 401, NotAllowedError: 403,
    FailedError: 422, IntegrityError: 500, OverloadedError: 429, PredictTimeoutError: 504,
    UnavailableError: 503,
}
_JSON_TYPES = ("application/json",)
_MLFLOW_TYPES = ("application/json", "text/csv")


def http_status(exc: NbmciError) -> int:
    return int(category(exc, HTTP_STATUS, 500))


def _json(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY), status,
                    headers=headers, media_type="application/json")


def error_response(exc: NbmciError) -> Response:
    status = http_status(exc)
    headers = {"Retry-After": "1"} if status in (429, 503) else None
    if status == 401:
        headers = {"WWW-Authenticate": "Bearer"}
    return _json({"error": exc.message, "type": type(exc).__name__, "hint": exc.hint,
                  "field": getattr(exc, "field", None)}, status, headers)


@dataclass
class ServeState:
    settings: ServeSettings
    host: ModelHost
    batcher: MicroBatcher
    metrics: Metrics
    draining: bool = False


def _state(request: Request) -> ServeState:
    return request.app.state.serve  # type: ignore[no-any-return]


def _media(request: Request, accepted: tuple[str, ...]) -> str:
    given = request.headers.get("content-type", "")
    kind = given.split(";", 1)[0].strip().lower()
    if kind == "" and "application/json" in accepted:
        return "application/json"  # curl -d and some clients send none
    if kind in accepted or (kind.endswith("+json") and "application/json" in accepted):
        return "text/csv" if kind == "text/csv" else "application/json"
    raise UnsupportedMediaTypeError(given, accepted)


def _load_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequestError(f"The body is not valid JSON: {exc}.",
                                  hint="Send a JSON object; NaN must be sent as null.") from exc


async def _infer(request: Request, live_of: Any, protocol: str) -> Response:
    state = _state(request)
    started = time.perf_counter()
    live: LiveModel | None = None
    status = 200
    try:
        media = _media(request, _MLFLOW_TYPES if protocol == "mlflow" else _JSON_TYPES)
        live = live_of(state)
        body = await request.body()
        if protocol == "v2":
            payload = _load_json(body)
            matrix = v2.decode(live, payload)
        elif media == "text/csv":
            matrix = mlflow.decode_csv(live, body)
        else:
            matrix = mlflow.decode_json(live, _load_json(body))
        predicted = await state.batcher.predict(live, matrix)
        result = (v2.encode(live, predicted, payload.get("id")) if protocol == "v2"
                  else mlflow.encode(predicted))
        return _json(result, headers={"X-Model-Version": str(live.version)})
    except NbmciError as exc:
        status = http_status(exc)
        if isinstance(exc, PredictTimeoutError) and live is not None:
            state.metrics.timeouts.labels(live.name).inc()
        return error_response(exc)
    finally:
        if live is not None:
            state.metrics.observe_request(live.name, str(live.version), protocol, status,
                                          time.perf_counter() - started)


async def v2_infer(request: Request) -> Response:
    name, version = request.path_params["name"], request.path_params.get("version")
    return await _infer(request, lambda s: s.host.get(name, version), "v2")


async def invocations(request: Request) -> Response:
    def pick(state: ServeState) -> LiveModel:
        name = request.query_params.get("model")
        if name is None:
            live = state.host.live
            if len(live) != 1:
                raise InvalidRequestError(
                    f"{len(live)} models are served; name one with ?model=NAME "
                    f"({', '.join(sorted(live)) or 'none yet'}).", field="model")
            name = next(iter(live))
        return state.host.get(name)

    return await _infer(request, pick, "mlflow")


async def live(request: Request) -> Response:
    return _json({"live": True})


async def ready(request: Request) -> Response:
    state = _state(request)
    is_ready = state.host.is_ready and not state.draining
    return _json({"ready": is_ready}, 200 if is_ready else 503)


async def server_metadata(request: Request) -> Response:
    from importlib.metadata import version

    return _json({"name": "nbmci", "version": version("nbmci"), "extensions": []})


async def model_metadata(request: Request) -> Response:
    params = request.path_params
    return _json(v2.model_metadata(_state(request).host.get(params["name"],
                                                             params.get("version"))))


async def model_ready(request: Request) -> Response:
    state = _state(request)
    params = request.path_params
    found = state.host.get(params["name"], params.get("version"))
    is_ready = not state.draining
    return _json({"name": found.name, "ready": is_ready}, 200 if is_ready else 503)


async def repository_index(request: Request) -> Response:
    state = _state(request)
    return _json([{"name": m.name, "version": str(m.version), "state": "READY"}
                  for m in state.host.live.values()])


async def metrics(request: Request) -> Response:
    state = _state(request)
    return Response(state.metrics.render(), media_type=state.metrics.content_type)


async def openapi_json(request: Request) -> Response:
    return _json(openapi.spec())


def _check_token(request: Request, token: str | None) -> None:
    if token is None:
        raise NotAllowedError("Admin routes are off: the server was started without a token.",
                              hint="Start `nbmci serve --token TOKEN` (or NBMCI_SERVE_TOKEN).")
    given = request.headers.get("authorization", "")
    scheme, _, value = given.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(),
                                                             token.encode()):
        raise UnauthorizedError("This admin route needs the server's token.",
                                hint="Send `Authorization: Bearer TOKEN`.")


async def reload(request: Request) -> Response:
    state = _state(request)
    _check_token(request, state.settings.token)
    names = request.query_params.getlist("model") or None
    result = await asyncio.to_thread(state.host.reload, names)
    return _json({"live": result})


async def _nbmci_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, NbmciError)
    return error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return _json({"error": exc.detail, "type": "HTTPError", "hint": None}, exc.status_code,
                 dict(exc.headers or {}))


async def _internal_error(request: Request, exc: Exception) -> Response:
    logger.error("internal error on %s %s", request.method, request.url.path, exc_info=exc)
    return _json({"error": "internal error, please report", "type": "InternalError",
                  "hint": None}, 500)


ROUTES = [
    Route("/v2", server_metadata, methods=["GET"]),
    Route("/v2/health/live", live, methods=["GET"]),
    Route("/v2/health/ready", ready, methods=["GET"]),
    Route("/v2/repository/index", repository_index, methods=["POST"]),
    Route("/v2/models/{name}", model_metadata, methods=["GET"]),
    Route("/v2/models/{name}/versions/{version:int}", model_metadata, methods=["GET"]),
    Route("/v2/models/{name}/ready", model_ready, methods=["GET"]),
    Route("/v2/models/{name}/versions/{version:int}/ready", model_ready, methods=["GET"]),
    Route("/v2/models/{name}/infer", v2_infer, methods=["POST"]),
    Route("/v2/models/{name}/versions/{version:int}/infer", v2_infer, methods=["POST"]),
    Route("/invocations", invocations, methods=["POST"]),
    Route("/ping", live, methods=["GET"]),
    Route("/health", ready, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
    Route("/openapi.json", openapi_json, methods=["GET"]),
    Route("/admin/reload", reload, methods=["POST"]),
]


def create_app(settings: ServeSettings | None = None, host: ModelHost | None = None,
               project: Any = None) -> Starlette:
    """The serving ASGI app; its lifespan starts and stops the alias follower.

    Args:
        settings: listening, batching and safety settings (defaults: ``ServeSettings()``).
        host: a ``ModelHost`` to serve from; by default one over ``project``.
        project: the ``nbmci.api.Project`` to follow (default: the working directory's).

    Example: ``uvicorn.run(create_app(ServeSettings(models=("clf",))))``
    """
    settings = settings or ServeSettings()
    if host is None:
        if project is None:
            from nbmci import api

            project = api.project()
        host = ModelHost(project, settings.models, trust_pickle=settings.trust_pickle,
                         poll_interval=settings.poll_interval)
    collectors = Metrics()
    host.add_listener(collectors.on_swap)
    for name, model in host.live.items():
        collectors.live_version.labels(name).set(model.version)
    batcher = MicroBatcher(max_batch=settings.max_batch, max_wait=settings.max_wait,
                           max_queue=settings.max_queue, timeout=settings.timeout,
                           observe=collectors.observe_batch)
    state = ServeState(settings, host, batcher, collectors)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        host.start()
        try:
            yield
        finally:
            state.draining = True
            await batcher.close()
            await asyncio.to_thread(host.stop)

    app = Starlette(
        routes=ROUTES,
        middleware=[Middleware(Guard, max_body=settings.max_body,
                               hosts=settings.host_patterns)],
        exception_handlers={NbmciError: _nbmci_error, HTTPException: _http_error,
                            Exception: _internal_error},
        lifespan=lifespan,
    )
    app.state.serve = state
    return app
