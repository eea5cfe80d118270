"""Checks every request passes before any work is done: Host (for loopback servers), token, body size.

An ASGI middleware, so a refused request costs no decoding and no model time.
A body declared too large is read and dropped (up to a cap) before the 413, so
that simple clients, which send the whole body before reading the answer, see
the 413 instead of a reset connection; clients that send ``Expect: 100-continue``
(curl does, for big bodies) are answered before they send it. A body that
passes the limit without declaring it (chunked) is cut off there. A body must
keep coming: a client that sends nothing for BODY_IDLE_S, or has not finished
after BODY_TOTAL_S, gets a 408 and its connection is closed, so slow clients
cannot hold the server's memory or its callers' places. All bodies held at once
(arriving, or waiting for the model) share a byte budget; past it a request is
answered 503 before its body is read, so memory stays bounded however many
clients connect.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Callable

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from desktop_app.serve.access import is_loopback

DRAIN_CAP = 64 * 1024 * 1024  # a declared body larger than this is not read at all; the connection closes
BODY_IDLE_S = 15.0  # longest pause inside a request body
BODY_TOTAL_S = 120.0  # longest a whole body may take (16 MiB at ~140 KB/s)
BODIES_BUDGET = 256 * 1024 * 1024  # bytes of request bodies held at once (at least 4 uploads at the limit)


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message, "status": status}, status_code=status, headers=headers)


class UploadTooLarge(HTTPException):
    def __init__(self, limit: int):
        super().__init__(413, f"the upload is over this server's limit of {limit / 2**20:g} MiB "
                              "(start it with a larger --max-upload-mb, or caption the file by path)",
                         headers={"Connection": "close"})


class SlowUpload(HTTPException):
    def __init__(self, seconds: float):
        super().__init__(408, f"the request body stopped coming or came too slowly (limit {seconds:g} s); "
                              "send it again in one go", headers={"Connection": "close"})


class BodiesBusy(HTTPException):
    def __init__(self):
        super().__init__(503, "the server is busy receiving other uploads; try again in a moment",
                         headers={"Retry-After": "1", "Connection": "close"})


class RequestGuard:
    def __init__(self, app: ASGIApp, token: str | None, max_body: int, loopback_only: bool,
                 open_paths: tuple[str, ...] = (), bodies_budget: int | None = None):
        self.app, self.token, self.max_body = app, token, max_body
        self.loopback_only, self.open_paths = loopback_only, open_paths
        self.bodies_budget = bodies_budget or max(BODIES_BUDGET, 4 * max_body)
        self.bodies_held = 0  # bytes reserved by the requests in hand (one event loop: no lock needed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        refusal = self._refusal(scope, headers)
        length = headers.get("content-length", "")
        if refusal is None:
            if length.isdigit() and int(length) > self.max_body:
                if headers.get("expect", "").lower() != "100-continue" and int(length) <= DRAIN_CAP:
                    await _drain(receive, DRAIN_CAP)
                exc = UploadTooLarge(self.max_body)
                refusal = error_response(exc.status_code, exc.detail, {"Connection": "close"})
        reserved = 0

        def reserve(total: int) -> None:
            """This body has reached (or declared) ``total`` bytes: hold them in the budget, or refuse."""
            nonlocal reserved
            if total > reserved:
                if self.bodies_held + total - reserved > self.bodies_budget:
                    raise BodiesBusy()
                self.bodies_held += total - reserved
                reserved = total

        if refusal is None:
            try:
                reserve(int(length) if length.isdigit() else 0)
            except BodiesBusy as exc:
                refusal = error_response(exc.status_code, exc.detail, exc.headers)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        try:
            await self.app(scope, self._counted(receive, reserve), send)
        finally:
            self.bodies_held -= reserved

    def _refusal(self, scope: Scope, headers: Headers) -> JSONResponse | None:
        if self.loopback_only and not is_loopback(_host_name(headers.get("host", ""))):
            # A web page whose name resolves to 127.0.0.1 (DNS rebinding) must not reach this server.
            return error_response(400, "this server answers only requests addressed to localhost or 127.0.0.1")
        origin = headers.get("origin")
        if origin is not None and origin != f"{scope.get('scheme', 'http')}://{headers.get('host', '')}":
            # Browsers name the page a request comes from; API clients send no Origin. A form on any web
            # page can post here (even with --no-token), so requests from other pages are refused.
            return error_response(403, f"requests from web pages are refused (this one came from {origin[:100]})")
        if self.token is None or scope["path"] in self.open_paths:
            return None
        scheme, _, given = headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not given:
            return error_response(401, "an API token is needed: send the header 'Authorization: Bearer TOKEN' "
                                       "(the token is in the serve-token file the server named when it started)",
                                  {"WWW-Authenticate": "Bearer"})
        if not hmac.compare_digest(given.strip().encode(), self.token.encode()):
            return error_response(401, "wrong API token", {"WWW-Authenticate": "Bearer"})
        return None

    def _counted(self, receive: Receive, reserve: Callable[[int], None]) -> Receive:
        """``receive`` that holds the body's bytes in the budget (``reserve``) and stops it once it passes the
        limit (chunked, or lying about its length), or stalls (BODY_IDLE_S), or takes too long (BODY_TOTAL_S)."""
        total, complete = 0, False
        deadline = asyncio.get_running_loop().time() + BODY_TOTAL_S

        async def counted() -> Message:
            nonlocal total, complete
            if complete:  # after the body: only a disconnect can come, whenever it comes
                return await receive()
            left = deadline - asyncio.get_running_loop().time()
            try:
                message = await asyncio.wait_for(receive(), min(BODY_IDLE_S, max(left, 0.0)))
            except asyncio.TimeoutError:
                raise SlowUpload(BODY_IDLE_S if left > BODY_IDLE_S else BODY_TOTAL_S) from None
            if message["type"] == "http.request":
                total += len(message.get("body", b""))
                complete = not message.get("more_body", False)
                if total > self.max_body:
                    raise UploadTooLarge(self.max_body)  # read no further: the connection closes
                reserve(total)
            return message

        return counted


async def _drain(receive: Receive, budget: int) -> None:
    """Read and drop the rest of a body, up to ``budget`` bytes, as long as it keeps coming."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + BODY_TOTAL_S
    while budget > 0:
        try:
            message = await asyncio.wait_for(receive(), min(BODY_IDLE_S, max(deadline - loop.time(), 0.0)))
        except asyncio.TimeoutError:
            return
        if message["type"] != "http.request" or not message.get("more_body", False):
            return
        budget -= len(message.get("body", b""))


def _host_name(host: str) -> str:
    """'127.0.0.1:8765' -> '127.0.0.1', '[::1]:8765' -> '::1', 'localhost' -> 'localhost'."""
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host
