"""uvicorn's h11 protocol with the two bounds it lacks: a deadline for receiving each whole
request, and a cap on open connections.

uvicorn's keep-alive timer is cancelled by the first byte of a request and not armed again
until the answer is sent, so a client that sends half its headers (or half its body) holds
its socket for ever; its limit_concurrency answers 503 only once a request's headers are
complete, and ASGI middleware runs only after that too. So both bounds live here, in the
protocol uvicorn runs per connection (uvicorn.Config(http=...)).

Past the cap, a new connection makes room by closing the connection that has waited longest
for its request to arrive (a slow or idle client); when every connection has a request in
hand, the new one is answered 503 and closed.
"""

from __future__ import annotations

import asyncio
import json
import resource
from collections import OrderedDict

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

LINGER_SECONDS = 1.0  # after an early answer, read and drop what the client still sends, then close


def response_bytes(status: int, reason: str, message: str) -> bytes:
    """A whole HTTP/1.1 response with TF Serving's {"error": ...} body, written before h11 has a request."""
    body = json.dumps({"error": message}).encode()
    head = (f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n")
    return head.encode() + body


class GuardedH11Protocol(H11Protocol):
    """uvicorn's H11Protocol with the two bounds; guarded_protocol sets them (a subclass per server)."""

    request_timeout_s: float = 30.0
    max_connections: int = 1000
    timed_out: bytes = b""  # the 408 answer
    busy: bytes = b""  # the 503 answer
    waiting: OrderedDict  # connections waiting for a request to arrive, oldest first

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.deadline: asyncio.TimerHandle | None = None
        self.lingering = False
        if len(self.connections) > self.max_connections:
            if not self.waiting:
                self.connections.discard(self)
                self.close_with(self.busy, always=True)
                return
            next(iter(self.waiting)).close_with(self.busy)  # the longest wait makes room
        self.arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self.disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self.lingering:
            super().data_received(data)

    def handle_events(self) -> None:
        super().handle_events()
        if self.cycle is not None and not self.cycle.more_body and not self.cycle.response_complete:
            self.disarm()  # the whole request is in: the app has it, however long it takes

    def on_response_complete(self) -> None:
        if not self.transport.is_closing():
            self.arm()  # the clock runs for the next request (pipelined ones disarm it again)
        super().on_response_complete()

    def arm(self) -> None:
        self.disarm()
        self.deadline = self.loop.call_later(self.request_timeout_s, self.expire)
        self.waiting[self] = None

    def disarm(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None
        self.waiting.pop(self, None)

    def expire(self) -> None:
        self.deadline = None
        self.close_with(self.timed_out)

    def receiving(self) -> bool:
        """Part of a request is in and nothing is answered yet: the client is owed a status."""
        if self.cycle is not None and not self.cycle.response_complete:
            return not self.cycle.response_started
        return self.conn.their_state is h11.IDLE and bool(self.conn.trailing_data[0])

    def close_with(self, response: bytes, always: bool = False) -> None:
        """Answers `response` if a request is half in (or always), then lingers a moment and closes."""
        self.disarm()
        if self.transport.is_closing() or self.lingering:
            return
        if always or self.receiving():
            self.transport.write(response)
        self.connections.discard(self)  # it no longer counts toward the cap
        self.lingering = True  # from now on what arrives is dropped, never parsed
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.disconnected = True  # the app's receive() says http.disconnect; its sends go nowhere
            self.cycle.message_event.set()
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.transport.resume_reading()  # so that the client's end of file closes it at once
        self.loop.call_later(LINGER_SECONDS, self.transport.close)


def guarded_protocol(request_timeout_s: float, max_connections: int) -> type[asyncio.Protocol]:
    """An H11Protocol class: each request received whole within request_timeout_s, at most max_connections."""
    return type("GuardedH11Protocol", (GuardedH11Protocol,), {
        "request_timeout_s": request_timeout_s, "max_connections": max_connections,
        "timed_out": response_bytes(408, "Request Timeout", f"request not received within {request_timeout_s:g} s"),
        "busy": response_bytes(503, "Service Unavailable", f"over {max_connections} connections; try again"),
        "waiting": OrderedDict()})


def raise_open_file_limit(connections: int, spare: int = 256) -> int:
    """Lifts the soft open-file limit toward the hard one; returns how many connections fit under it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = connections + spare
    if soft != resource.RLIM_INFINITY and soft < wanted:
        soft = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    if soft == resource.RLIM_INFINITY:
        return connections
    return max(1, min(connections, soft - spare))
