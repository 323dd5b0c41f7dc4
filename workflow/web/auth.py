"""Who is asking: the signed session cookie for pages, bearer tokens for the API, CSRF for forms,
and the login and logout pages."""

from __future__ import annotations

from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from workflow.errors import RectiflowError
from workflow.models import Person
from workflow.services.people import end_sessions
from workflow.web.context import Web, web_of
from workflow.web.security import client_address as forwarded_client
from workflow.web.security import (
    csrf_matches,
    new_csrf_token,
    password_matches,
    password_stamp,
)

router = APIRouter(include_in_schema=False)


class LoginRequired(Exception):
    """Raised by a page that needs a signed-in person; answered with a redirect to /login."""

    def __init__(self, next_path: str) -> None:
        self.next_path = next_path
        super().__init__(next_path)


class CsrfRefused(RectiflowError):
    """Raised when a form arrives without the CSRF token of the session that showed it."""

    http_status = 403

    def __init__(self) -> None:
        super().__init__("表单已失效或来源不明（缺少有效的安全令牌），请刷新页面后重新提交。")


class TooManyAttempts(RectiflowError):
    """Raised when an email and address failed to log in too often in a short time."""

    http_status = 429

    def __init__(self, seconds: float) -> None:
        self.retry_after = int(seconds) + 1
        minutes = max(1, round(seconds / 60))
        super().__init__(f"登录失败次数过多，请约 {minutes} 分钟后再试。")


class BadCredentials(RectiflowError):
    """Raised when the email and password do not match an active account."""

    http_status = 401

    def __init__(self) -> None:
        super().__init__("邮箱或密码不正确。")


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not isinstance(token, str) or not token:
        token = new_csrf_token()
        request.session["csrf"] = token
    return token


def check_csrf(request: Request, given: object) -> None:
    if not csrf_matches(request.session.get("csrf"), given):
        raise CsrfRefused()


def client_address(request: Request) -> str:
    """The client's address: the peer's, or from ``X-Forwarded-For`` when the peer is one of
    ``RECTIFLOW_TRUSTED_PROXIES``."""
    peer = request.client.host if request.client else None
    return forwarded_client(peer, request.headers.get("x-forwarded-for"),
                            web_of(request).settings.trusted_proxies)


def authenticate(web: Web, session: Session, email: str, password: str, address: str) -> Person:
    """The active person with this email and password; failures count towards the limit."""
    wait = web.limiter.blocked_for(email, address)
    if wait:
        raise TooManyAttempts(wait)
    person = (None if "\x00" in email else session.scalar(
        select(Person).where(func.lower(Person.email) == email.strip().lower())))
    # The password is checked (or a stand-in hash is) whoever asks: equal time either way.
    matched = password_matches(person, password)
    if person is None or not person.active or not matched:
        web.limiter.failed(email, address)
        raise BadCredentials()
    web.limiter.succeeded(email, address)
    return person


def session_person(request: Request, session: Session) -> Person | None:
    person_id = request.session.get("pid")
    if not isinstance(person_id, int):
        return None
    person = session.get(Person, person_id)
    if (person is None or not person.active
            or request.session.get("stamp") != password_stamp(person)
            or request.session.get("sv") != person.session_version):
        return None
    return person


def start_session(request: Request, person: Person) -> None:
    """Sign ``person`` in on this browser: a fresh session (no fixation) with a new CSRF token.
    Used by the WeCom sign-in (workflow/web/wecom_signin.py)."""
    _begin_session(request, person.id, password_stamp(person), person.session_version)


def _begin_session(request: Request, person_id: int, stamp: str, version: int) -> None:
    request.session.clear()
    request.session.update({"pid": person_id, "stamp": stamp, "sv": version,
                            "csrf": new_csrf_token()})


def page_person(request: Request, session: Session) -> Person:
    person = session_person(request, session)
    if person is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(target)
    return person


def safe_next(value: object) -> str:
    """Only a local path may follow a login (no open redirect)."""
    if not isinstance(value, str) or not value.startswith("/") or value.startswith("//"):
        return "/my"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or "\\" in value:
        return "/my"
    return value


@router.get("/login")
def login_form(request: Request, next: str = "/my") -> Response:
    web = web_of(request)
    target = safe_next(next)
    return web.render(request, "login.html", {"csrf": csrf_token(request), "next": target,
                                              "error": None, "email": "", "person": None,
                                              "for_link": target.startswith("/approve/")})


@router.post("/login")
async def login(request: Request) -> Response:
    web = web_of(request)
    form = await request.form()
    check_csrf(request, form.get("csrf_token"))
    email = str(form.get("email") or "")
    password = str(form.get("password") or "")
    target = safe_next(form.get("next"))
    try:
        with web.transaction() as session:
            person = authenticate(web, session, email, password, client_address(request))
            person_id, stamp, version = person.id, password_stamp(person), person.session_version
    except (BadCredentials, TooManyAttempts) as exc:
        response = web.render(request, "login.html", {
            "csrf": csrf_token(request), "next": target, "error": str(exc), "email": email,
            "person": None, "for_link": target.startswith("/approve/")},
            status_code=exc.http_status)
        if isinstance(exc, TooManyAttempts):
            response.headers["Retry-After"] = str(exc.retry_after)
        return response
    _begin_session(request, person_id, stamp, version)
    return RedirectResponse(target, status_code=303)


@router.post("/logout")
async def logout(request: Request) -> Response:
    form = await request.form()
    check_csrf(request, form.get("csrf_token"))
    web = web_of(request)
    # The cookie is signed, not stored: a copy of it would still open pages after clear().
    # Bumping the person's session version ends every session made before, copies included.
    with web.transaction() as session:
        person = session_person(request, session)
        if person is not None:
            end_sessions(person)
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


def login_redirect(next_path: str) -> RedirectResponse:
    return RedirectResponse(f"/login?next={quote(next_path, safe='/')}", status_code=303)
