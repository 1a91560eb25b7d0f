"""The serving app: ``create_app(settings) -> ServingApp``, a face over ``ModelHost``.

Routes: Open Inference Protocol v2 under ``/v2``, MLflow's ``/invocations``, ``/metrics``,
``/openapi.json`` and the token-guarded ``/admin/reload``; the inference routes themselves are
answered by ``InferenceRoutes`` (plain ASGI, see ``nbmci.serve.inference``). Errors answer JSON
``{"error": message, "type": ClassName, "hint": ..., "field": ...}`` (``error`` holds the
message, as the v2 protocol's clients read it) with the status of the error's category.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import AsyncIterator, Sized
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from nbmci.errors import NbmciError, NotAllowedError
from nbmci.serve import openapi
from nbmci.serve.batching import MicroBatcher
from nbmci.serve.guard import Guard
from nbmci.serve.host import ModelHost
from nbmci.serve.inference import InferenceRoutes, UnauthorizedError, dump, error_body
from nbmci.serve.metrics import Metrics
from nbmci.serve.protocols import v2
from nbmci.serve.settings import ServeSettings

logger = logging.getLogger(__name__)


def _json(payload: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(dump(payload), status, headers=headers, media_type="application/json")


def error_response(exc: NbmciError) -> Response:
    status, body, headers = error_body(exc)
    return Response(body, status, headers=headers, media_type="application/json")


@dataclass
class ServeState:
    settings: ServeSettings
    host: ModelHost
    batcher: MicroBatcher
    metrics: Metrics
    draining: bool = False


def _state(request: Request) -> ServeState:
    return request.app.state.serve  # type: ignore[no-any-return]


async def live(request: Request) -> Response:
    return _json({"live": True})


async def ready(request: Request) -> Response:
    state = _state(request)
    is_ready = state.host.is_ready and not state.draining
    return _json({"ready": is_ready}, 200 if is_ready else 503)


async def server_metadata(request: Request) -> Response:
    from importlib.metadata import version

    return _json({"name": "nbmci", "version": version("nbmci"),
                  "extensions": ["binary_tensor_data"]})


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
    Route("/ping", live, methods=["GET"]),
    Route("/health", ready, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
    Route("/openapi.json", openapi_json, methods=["GET"]),
    Route("/admin/reload", reload, methods=["POST"]),
]


def create_app(settings: ServeSettings | None = None, host: ModelHost | None = None,
               project: Any = None) -> ServingApp:
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
                           observe=collectors.observe_batch,
                           on_stuck=lambda name, n: collectors.overrunning.labels(name).set(n))
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

    rest = Starlette(
        routes=ROUTES,
        exception_handlers={NbmciError: _nbmci_error, HTTPException: _http_error,
                            Exception: _internal_error},
        lifespan=lifespan,
    )
    rest.state.serve = state
    return ServingApp(rest, state)


class ServingApp:
    """The ASGI app: ``Guard`` (Host, Origin, body limit) in front of the inference routes,
    which hand every other route, and the lifespan, to Starlette.

    The inference routes sit outside Starlette, so a request that takes the load passes none
    of its middleware (each wraps ``send`` once more); Starlette's own error handling covers
    the other routes, and ``InferenceRoutes`` answers its own errors.
    """

    def __init__(self, rest: Starlette, state: ServeState) -> None:
        self.state = rest.state  # ``app.state.serve``, as on the Starlette app
        self._asgi = Guard(InferenceRoutes(rest, state=state), max_body=state.settings.max_body,
                           hosts=state.settings.host_patterns)

    def count_requests_with(self, in_flight: Sized) -> None:
        """Let the batcher see the server's requests in flight (uvicorn's
        ``server.server_state.tasks``), so a request alone in the server skips the queue."""
        self.state.serve.batcher.in_flight = in_flight

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self._asgi(scope, receive, send)
