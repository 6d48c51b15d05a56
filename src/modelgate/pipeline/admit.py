"""Admit: who is calling, and is the call well formed?

The first stage of the chain, and the only place a request is authenticated and its body
read: the door's own checks on the path, the caller's credentials (in the door's places,
refused in the door's words), the body (never more than ``max_body_bytes`` of it), then the
door's parsing and protocol checks. Tenancy's key, limit and budget checks go here too,
once the caller is known and before anything reaches an upstream.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import ClientDisconnect, Request

from modelgate.errors import AuthenticationFailed, RequestTooLarge
from modelgate.pipeline.context import Call, Operation, RequestContext
from modelgate.pipeline.streaming import ClientDisconnected
from modelgate.policy.auth import Authenticator, Principal

if TYPE_CHECKING:
    from modelgate.frontdoors.base import FrontDoor


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing more than ``limit`` bytes before reading them all."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestTooLarge(f"Request exceeds the maximum allowed number of bytes ({limit})")
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            if not chunk:
                continue  # the server's end-of-body marker: skipping it spares a copy of one-chunk bodies
            size += len(chunk)
            if size > limit:
                raise RequestTooLarge(f"Request exceeds the maximum allowed number of bytes ({limit})")
            chunks.append(chunk)
    except ClientDisconnect:
        raise ClientDisconnected() from None
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class Admission:
    """The admit stage: authentication and reading, the same for every door."""

    def __init__(self, authenticator: Authenticator, max_body_bytes: int) -> None:
        self.authenticator = authenticator
        self.max_body_bytes = max_body_bytes

    async def authenticate(self, request: Request, door: FrontDoor) -> Principal:
        """The caller, from the credentials in the door's places; refusals in the door's words."""
        credentials = door.credentials(request)
        try:
            return await self.authenticator.authenticate(credentials)
        except AuthenticationFailed as e:
            raise door.authentication_error(e, credentials) from None

    async def admit(self, ctx: RequestContext, request: Request, door: FrontDoor, operation: Operation) -> Call:
        door.check_path(request)
        ctx.caller = await self.authenticate(request, door)
        raw = await read_body(request, self.max_body_bytes)
        ctx.call = call = door.parse(request, raw, operation)
        return call
