"""Pure ASGI middleware in front of every route: Host and Origin checks, and the body limit.

The Host check (full match, port ignored) stops DNS rebinding; a browser ``Origin`` that is
not an allowed host is refused. A body is refused with 413 from its ``Content-Length`` before
any of it is read, and a chunked body is counted as it arrives and cut off at the limit, so
no request body is ever buffered past ``max_body``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import orjson

_SEEN_HOSTS = 256
Scope = dict[str, Any]
Message = dict[str, Any]


class BodyTooLargeError(Exception):
    """Raised from ``receive`` when the body passes the limit (caught by ``Guard``)."""


def host_name(value: str) -> str:
    """``"Example.com:8000"`` -> ``"example.com"``; ``"[::1]:80"`` -> ``"::1"``."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[1:value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


async def send_json(send: Any, status: int, payload: dict[str, Any],
                    headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = orjson.dumps(payload)
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close"), *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


class Guard:
    def __init__(self, app: Any, *, max_body: int, hosts: frozenset[str] | None) -> None:
        self.app = app
        self.max_body = max_body
        self.hosts = hosts
        self._seen_hosts: dict[str, bool] = {}

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        host = origin = length = None
        chunked = False
        for key, value in scope["headers"]:
            if key == b"host":
                host = value.decode("latin-1")
            elif key == b"origin":
                origin = value.decode("latin-1")
            elif key == b"content-length":
                length = value
            elif key == b"transfer-encoding":
                chunked = True
        if self.hosts is not None:
            if host is None or not self._allowed(host):
                await send_json(send, 400, {
                    "error": f"Host header {(host or '')[:100]!r} is not served here.",
                    "type": "InvalidHostError",
                    "hint": "Start `nbmci serve --allowed-host NAME` to accept that name."})
                return
            if origin is not None and (urlsplit(origin).hostname or "") not in self.hosts:
                await send_json(send, 403, {"error": f"Origin {origin[:100]!r} is not allowed.",
                                            "type": "ForbiddenOriginError", "hint": None})
                return
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                await send_json(send, 400, {"error": "Content-Length is not a number.",
                                            "type": "InvalidRequestError", "hint": None})
                return
            if declared > self.max_body:
                await self._too_large(send)
                return
            if not chunked:  # the HTTP parser reads exactly the declared length
                await self.app(scope, receive, send)
                return
        await self._call_counting(scope, receive, send)

    def _allowed(self, host: str) -> bool:
        """Whether the Host header names a served host (remembered: clients repeat theirs)."""
        known = self._seen_hosts.get(host)
        if known is None:
            if len(self._seen_hosts) >= _SEEN_HOSTS:
                self._seen_hosts.clear()  # a client cycling through names gains nothing
            known = self._seen_hosts[host] = host_name(host) in (self.hosts or ())
        return known

    async def _call_counting(self, scope: Scope, receive: Any, send: Any) -> None:
        seen = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal seen
            message: Message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    raise BodyTooLargeError()
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, tracked_send)
        except BodyTooLargeError:
            if not started:
                await self._too_large(send)

    async def _too_large(self, send: Any) -> None:
        await send_json(send, 413, {
            "error": f"The request body is larger than the limit of {self.max_body} bytes.",
            "type": "PayloadTooLargeError",
            "hint": "Send fewer rows per request, or raise `nbmci serve --max-body`."})
