"""Retry a whole request when its transaction lost a serialization race or a deadlock.

A serialization failure (40001) or a deadlock (40P01) aborts the request's transaction: everything
it did is rolled back, so running the request again is safe and usually succeeds. The error
handler (app/core/errors.py) marks such a response as retryable with `mark_retryable`;
`run_with_retries` then swallows that response (nothing has reached the client yet), waits a
little (jittered) and replays the buffered request body through the app again. After `ATTEMPTS`
tries the last response (a 503 `transaction_conflict` with `Retry-After`) is what the client gets.
The edge middleware (app/core/edge.py) calls it inside its body-size limit.

Only responses the handler marks are retried: any other status, and any response whose start has
already been forwarded, goes to the client unchanged. Bodies are buffered in memory up to
`max_body_bytes` (the body-size limit is applied before, so a larger body never gets here); a
larger or interrupted body is passed through once, without retry.
"""

import asyncio
import logging
import random

from prometheus_client import Counter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("motomind.retry")

RETRY_SCOPE_KEY = "motomind.retry"
ATTEMPTS = 3
BACKOFF_S = 0.02

RETRIES = Counter(
    "motomind_request_retries_total",
    "Requests run again after a serialization failure or deadlock",
    ["outcome"],
)


class _Attempt:
    """One run of the request through the app; the error handler flags it as safe to run again.

    An object in the request's own scope, not `scope["state"]` (a test harness may share that dict
    between requests) and not a flag copied by value (middleware may copy the scope dict).
    """

    __slots__ = ("retryable",)

    def __init__(self) -> None:
        self.retryable = False


def mark_retryable(scope: Scope) -> None:
    """Called by the error handler: this response may be replaced by running the request again."""
    attempt = scope.get(RETRY_SCOPE_KEY)
    if isinstance(attempt, _Attempt):
        attempt.retryable = True


async def run_with_retries(
    app: ASGIApp,
    scope: Scope,
    receive: Receive,
    send: Send,
    *,
    max_body_bytes: int,
) -> None:
    """Run an HTTP request through `app`, again (bounded, jittered) while its transaction fails
    with 40001 or 40P01 and nothing of the response has reached the client."""
    buffered, replayable = await _buffer(receive, max_body_bytes)
    if not replayable:
        await app(scope, _replay(buffered, receive), send)
        return
    body = b"".join(m.get("body", b"") for m in buffered)
    for attempt in range(1, ATTEMPTS + 1):
        last = attempt == ATTEMPTS
        current = scope[RETRY_SCOPE_KEY] = _Attempt()
        swallowed = False

        async def guarded_send(
            message: Message, *, _last: bool = last, _current: _Attempt = current
        ) -> None:
            nonlocal swallowed
            if message["type"] == "http.response.start" and not _last and _current.retryable:
                swallowed = True
            if swallowed and message["type"].startswith("http.response."):
                return
            await send(message)

        request_message: Message = {"type": "http.request", "body": body, "more_body": False}
        await app(scope, _replay([request_message], receive), guarded_send)
        if not swallowed:
            if attempt > 1:
                outcome = "gave_up" if current.retryable else "succeeded"
                RETRIES.labels(outcome).inc()
                log.info("request retried: %s after %d attempts", outcome, attempt)
            return
        delay = BACKOFF_S * (2 ** (attempt - 1)) * random.uniform(0.5, 1.5)  # noqa: S311
        log.info("transaction conflict; running the request again in %.3fs", delay)
        await asyncio.sleep(delay)


async def _buffer(receive: Receive, max_body_bytes: int) -> tuple[list[Message], bool]:
    """The request's body messages, and whether they can be replayed (complete, small)."""
    messages: list[Message] = []
    size = 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            return messages, False  # a disconnect: let the app see it, once
        size += len(message.get("body", b""))
        if size > max_body_bytes:
            return messages, False
        if not message.get("more_body", False):
            return messages, True


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """A receive that hands out `messages` first, then defers to the real one (disconnects)."""
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay
