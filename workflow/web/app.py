"""The FastAPI app factory: pages for people (Jinja2, server-rendered, Chinese), the JSON API
for programs, one-time approval links, and for operators ``/healthz``, ``/readyz`` and
``/metrics`` (workflow/web/ops.py)."""

from __future__ import annotations

import logging
import secrets
from datetime import datetime

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from starlette.middleware.sessions import SessionMiddleware
from starlette.staticfiles import StaticFiles

from config.settings import Settings
from workflow import db, metrics
from workflow.errors import RectiflowError
from workflow.runtime import Runtime
from workflow.web import (
    admin,
    api,
    approve,
    auth,
    clerk,
    clerk_api,
    dashboard,
    notices,
    ops,
    pages,
    stats_api,
    wecom_signin,
)
from workflow.web.context import Web, make_templates
from workflow.web.headers import SecurityHeaders
from workflow.web.security import ApiTokens, LoginLimiter, load_secret

log = logging.getLogger("rectiflow.web")


def _secret(settings: Settings, sessions: sessionmaker[Session], now: datetime) -> str:
    try:
        with db.transaction(sessions) as session:
            return load_secret(session, settings.secret_key, now)
    except SQLAlchemyError:
        log.warning("数据库尚未建立（请运行 rectiflow db upgrade）；本进程暂用临时密钥签名会话")
        return secrets.token_urlsafe(48)


def create_app(runtime: Runtime, *, limiter: LoginLimiter | None = None) -> FastAPI:
    """The web app over ``runtime``: its database, policies, channels and clock. Actions write
    the notifications they cause in the request's transaction (the runtime's sessions)."""
    settings, sessions, clock = runtime.settings, runtime.sessions, runtime.clock
    secret = _secret(settings, sessions, clock())
    web = Web(runtime=runtime, tokens=ApiTokens(secret), limiter=limiter or LoginLimiter(),
              templates=make_templates())

    # /api/docs is served below from files shipped in the package: no CDN, works on an intranet.
    app = FastAPI(title="rectiflow", version="0.1.0", docs_url=None, redoc_url=None,
                  description="整改台账与督办：网页与 JSON 接口。令牌由 POST /api/token 取得。")
    app.state.settings = settings
    app.state.web = web
    app.add_middleware(SessionMiddleware, secret_key=secret, session_cookie="rectiflow_session",
                       max_age=12 * 3600, same_site="lax", https_only=web.secure_cookies)
    app.add_middleware(SecurityHeaders, https=web.secure_cookies)
    app.mount("/static", StaticFiles(packages=[("workflow.web", "static")]), name="static")
    # Outermost: every log line of a request, the session's included, carries its id.
    ops.install(app, metrics.web_registry(sessions, clock))
    metrics.start_series(settings)

    @app.get("/", include_in_schema=False)
    def home() -> Response:
        return RedirectResponse("/my", status_code=303)

    @app.get("/api/docs", include_in_schema=False)
    def api_docs(request: Request) -> Response:
        return web.render(request, "api_docs.html", {"openapi_url": app.openapi_url})

    @app.exception_handler(auth.LoginRequired)
    def login_required(request: Request, exc: auth.LoginRequired) -> Response:
        if wecom_signin.wanted(request):  # inside WeCom's browser: sign in through WeCom
            return wecom_signin.authorize_redirect(request, exc.next_path)
        return auth.login_redirect(exc.next_path)

    @app.exception_handler(RectiflowError)
    def refused(request: Request, exc: RectiflowError) -> Response:
        headers = {}
        if exc.http_status == 401:
            headers["WWW-Authenticate"] = "Bearer"
        if isinstance(exc, auth.TooManyAttempts):
            headers["Retry-After"] = str(exc.retry_after)
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": str(exc), "field": getattr(exc, "field", None)},
                                status_code=exc.http_status, headers=headers)
        return pages.error_page(request, exc)

    for module in (auth, wecom_signin, api, clerk_api, stats_api, approve, pages, dashboard,
                   notices, admin, clerk):
        app.include_router(module.router)
    return app
