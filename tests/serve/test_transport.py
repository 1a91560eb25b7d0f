"""The gathering transport: writes of one event-loop turn leave as one, in order, never lost."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest

from nbmci.serve.transport import GatheringHttpProtocol, _GatheringTransport


class Recording(asyncio.Transport):
    """The socket's side, as asyncio's transports present it."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: Any) -> None:
        assert not self.closed, "written after close"
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_write_buffer_size(self) -> int:
        return 3

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 5000)}.get(name, default)


async def _turn() -> None:
    await asyncio.sleep(0)
    await asyncio.sleep(0)


def test_writes_of_one_turn_leave_as_one_write_in_order() -> None:
    async def scenario() -> list[bytes]:
        real = Recording()
        gathering = _GatheringTransport(real, asyncio.get_running_loop())
        gathering.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
        gathering.write(b"{}")
        assert real.writes == []  # not yet: the turn is not over
        assert gathering.get_write_buffer_size() == 3 + 40
        await _turn()
        gathering.writelines([b"a", b"b"])
        gathering.write(b"c")
        await _turn()
        return real.writes

    assert asyncio.run(scenario()) == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}", b"abc"]


def test_close_sends_what_is_pending_first_and_nothing_after() -> None:
    async def scenario() -> Recording:
        real = Recording()
        gathering = _GatheringTransport(real, asyncio.get_running_loop())
        gathering.write(b"last words")
        gathering.close()
        gathering.write(b"too late")  # a late write must neither raise nor reach the socket
        await _turn()
        return real

    real = asyncio.run(scenario())
    assert real.writes == [b"last words"] and real.closed


def test_everything_else_is_the_real_transport() -> None:
    async def scenario() -> Any:
        return _GatheringTransport(Recording(), asyncio.get_running_loop())

    gathering = asyncio.run(scenario())
    assert gathering.get_extra_info("peername") == ("127.0.0.1", 5000)
    assert gathering.is_closing() is False
    with pytest.raises(AttributeError):
        gathering.no_such_method()


def test_pipelined_requests_are_answered_in_order(serving: tuple[Any, Any]) -> None:
    """Two requests in one packet: both answers, complete and in order, on one connection."""
    _, served = serving
    assert served.server.config.http is GatheringHttpProtocol
    host, port = served.url.removeprefix("http://").split(":")
    request = (f"GET /v2/health/live HTTP/1.1\r\nHost: {host}\r\n\r\n"
               f"GET /v2/models/nope HTTP/1.1\r\nHost: {host}\r\n\r\n").encode()
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(request)
        received = b""
        while received.count(b"HTTP/1.1 ") < 2 or not received.endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
    first, second = received.split(b"HTTP/1.1 ")[1:]
    assert first.startswith(b"200") and first.endswith(b'{"live":true}')
    assert second.startswith(b"404") and b"nope" in second
