"""uvicorn's httptools protocol with one ``send`` system call per response instead of two.

uvicorn writes a response's status line and headers to the socket as soon as the app sends
``http.response.start``, and the body when it sends ``http.response.body``: two system calls
and two TCP segments for every small answer, about a third of the server's time under load.
``GatheringHttpProtocol`` hands uvicorn a transport that keeps what is written during one turn
of the event loop and passes it on, joined, at the end of the turn (or at once when the
connection closes), so the client gets the same bytes in the same order, sooner.

Use it as ``uvicorn.Config(app, http=GatheringHttpProtocol)``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class GatheringHttpProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:  # type: ignore[override]
        super().connection_made(_GatheringTransport(transport, self.loop))  # type: ignore[arg-type]


class _GatheringTransport:
    """A transport whose writes leave together at the end of the event loop's turn."""

    def __init__(self, transport: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(data)

    def writelines(self, chunks: Any) -> None:
        for chunk in chunks:
            self.write(chunk)

    def _flush(self) -> None:
        if self._pending:
            data = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
            self._pending.clear()
            if not self._transport.is_closing():
                self._transport.write(data)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def write_eof(self) -> None:
        self._flush()
        self._transport.write_eof()

    def get_write_buffer_size(self) -> int:
        return int(self._transport.get_write_buffer_size()) + sum(map(len, self._pending))

    def __getattr__(self, name: str) -> Any:  # everything else is the real transport's
        return getattr(self._transport, name)
