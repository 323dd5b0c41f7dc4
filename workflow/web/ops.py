"""For operators and their tools: ``/healthz`` (the process answers), ``/readyz`` (the
database, and the broker when one is configured, answer too), ``/metrics`` (Prometheus), and the
request id every request carries through the logs.

None of these is in the OpenAPI schema: they are for load balancers and Prometheus, not for
programs using the API.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from workflow import logs
from workflow.ops.probes import ANSWER_TIMEOUT, check_broker, check_database

log = logging.getLogger("rectiflow.web.ops")
access = logging.getLogger("rectiflow.web.access")

router = APIRouter(include_in_schema=False)

#: A dependency that does not answer within this many seconds counts as down.
CHECK_TIMEOUT = ANSWER_TIMEOUT
#: Incoming request ids we keep: short, and only characters safe in a log line or a header.
_SANE_ID = re.compile(r"[A-Za-z0-9._:@/+=-]{1,128}")
#: Paths logged at DEBUG only: probes and scrapes come every few seconds.
QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
_checks = ThreadPoolExecutor(max_workers=4, thread_name_prefix="rectiflow-readyz")


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is alive and serving requests; nothing else is checked."""
    return {"status": "ok"}


def _probe(name: str, check: Callable[[], None]) -> dict[str, str]:
    """``{"status": "ok"}`` or ``{"status": "down", "error": <exception class>}``; the detail
    goes to the log, not to whoever asked."""
    started = time.perf_counter()
    future = _checks.submit(check)
    try:
        future.result(timeout=CHECK_TIMEOUT)
    except FutureTimeout:
        log.warning("readiness: %s did not answer within %s s", name, CHECK_TIMEOUT,
                    extra={"component": name})
        return {"status": "down", "error": "timeout"}
    except Exception as exc:
        log.warning("readiness: %s is down: %s", name, exc, extra={"component": name})
        return {"status": "down", "error": type(exc).__name__}
    return {"status": "ok", "ms": f"{(time.perf_counter() - started) * 1000:.1f}"}


@router.get("/readyz")
def readyz(request: Request) -> JSONResponse:
    """200 when every dependency answers; 503 naming the ones that do not."""
    web = request.app.state.web
    checks = {"database": _probe("database", lambda: check_database(web.sessions))}
    broker_url = web.settings.broker_url
    if broker_url:
        checks["broker"] = _probe("broker", lambda: check_broker(broker_url))
    ready = all(c["status"] == "ok" for c in checks.values())
    return JSONResponse({"status": "ok" if ready else "unavailable", "checks": checks},
                        status_code=200 if ready else 503)


@router.get("/metrics")
def metrics(request: Request) -> Response:
    """This process's counters and the ledger's gauges, in Prometheus' text format."""
    token = request.app.state.web.settings.metrics_token
    if token:
        given = request.headers.get("authorization", "")
        if not secrets.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return JSONResponse({"detail": "需要 Authorization: Bearer <RECTIFLOW_METRICS_TOKEN>"},
                                status_code=401, headers={"WWW-Authenticate": "Bearer"})
    registry: CollectorRegistry = request.app.state.metrics
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def loggable_path(path: str) -> str:
    """The path without secrets: an approval link's token is the key to act as its person."""
    if path.startswith("/approve/"):
        return "/approve/***"
    return path


class RequestIdMiddleware:
    """Gives each request an id (a sane incoming ``X-Request-ID``, else a new one), puts it in
    ``logs.request_id`` for every log line written while serving it, echoes it in the response,
    and writes one access log line (method, path, status, milliseconds)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = _header(scope, b"x-request-id")
        rid = incoming if incoming and _SANE_ID.fullmatch(incoming) else uuid.uuid4().hex
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message).append("X-Request-ID", rid)
            await send(message)

        token = logs.request_id.set(rid)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            path = scope.get("path", "")
            access.log(logging.DEBUG if path in QUIET_PATHS else logging.INFO,
                       "%s %s %s %.1fms", scope.get("method"), loggable_path(path), status,
                       (time.perf_counter() - started) * 1000,
                       extra={"method": scope.get("method"), "path": loggable_path(path),
                              "status": status})
            logs.request_id.reset(token)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            try:
                return bytes(value).decode("latin-1")
            except (UnicodeDecodeError, ValueError):
                return None
    return None


def install(app: Any, registry: CollectorRegistry) -> None:
    """Wire the operator endpoints and the request-id middleware into ``app``."""
    app.state.metrics = registry
    app.include_router(router)
    app.add_middleware(RequestIdMiddleware)
