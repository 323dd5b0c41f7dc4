"""WeCom sign-in (企业微信网页授权登录): inside WeCom's own browser a page opened without a
session goes to WeCom's authorisation, which comes back to ``/wecom/callback`` with a ``code``;
``auth/getuserinfo`` says whose it is, and the active person with that WeCom id is signed in.

``state`` is a random value kept in this browser's signed session with the page first asked
for; the callback takes it out (single use) and refuses a state it does not hold, so a link
forged elsewhere or replayed signs nobody in. A code is single-use at WeCom (40029 the second
time). Password login stays for every other browser.
"""

from __future__ import annotations

import re
import secrets
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select

from notifications.channels.base import DeliveryError
from notifications.channels.wecom.api import errcode
from workflow.errors import RectiflowError
from workflow.models import Person
from workflow.web.auth import login_redirect, safe_next, start_session
from workflow.web.context import Web, web_of
from workflow.web.security import csrf_matches

router = APIRouter(include_in_schema=False)

AUTHORIZE_URL = "https://open.weixin.qq.com/connect/oauth2/authorize"
CALLBACK_PATH = "/wecom/callback"
SESSION_KEY = "wecom_signin"
#: How long a sign-in started in this browser may take to come back (WeCom's codes last 5 min).
STATE_SECONDS = 10 * 60
#: WeCom's codes are short tokens of letters, digits, - and _; anything else is not one.
_CODE = re.compile(r"[A-Za-z0-9_-]{1,512}")
#: WeCom's answers for a code that is bad, already used or expired.
BAD_CODE_ERRORS = frozenset({40029, 41008})


class WeComSignInRefused(RectiflowError):
    """Raised when a WeCom sign-in cannot sign anyone in; the message says why and what to do."""

    title = "企业微信登录未成功"

    def __init__(self, message: str, http_status: int = 400) -> None:
        self.http_status = http_status
        super().__init__(message)


def in_wecom(request: Request) -> bool:
    """Whether the request comes from WeCom's own browser (its user agent says ``wxwork``)."""
    return "wxwork" in request.headers.get("user-agent", "").lower()


def wanted(request: Request) -> bool:
    """Whether a page asked for without a session should go to WeCom's authorisation."""
    return (request.method in ("GET", "HEAD") and in_wecom(request)
            and web_of(request).settings.wecom_configured)


def authorize_url(web: Web, state: str) -> str:
    """WeCom's authorisation address; its parameters in the documented order."""
    query = urlencode({"appid": web.settings.wecom_corp_id or "",
                       "redirect_uri": f"{web.settings.base_url}{CALLBACK_PATH}",
                       "response_type": "code", "scope": "snsapi_base", "state": state})
    return f"{AUTHORIZE_URL}?{query}#wechat_redirect"


def authorize_redirect(request: Request, next_path: str) -> RedirectResponse:
    """Send the browser to WeCom's authorisation, remembering a fresh state and where to go
    afterwards in its session."""
    web = web_of(request)
    state = secrets.token_hex(16)  # a-z0-9 only, as WeCom's state must be
    request.session[SESSION_KEY] = {"state": state, "next": safe_next(next_path),
                                    "at": int(web.now().timestamp())}
    return RedirectResponse(authorize_url(web, state), status_code=302)


@router.get("/wecom/login")
def wecom_login(request: Request, next: str = "/my") -> Response:
    """Start a WeCom sign-in by hand (a link on the login page); without WeCom, the login form."""
    if not web_of(request).settings.wecom_configured:
        return login_redirect(safe_next(next))
    return authorize_redirect(request, next)


@router.get(CALLBACK_PATH)
def wecom_callback(request: Request, code: str = "", state: str = "") -> Response:
    web = web_of(request)
    pending = request.session.pop(SESSION_KEY, None)  # single use, whatever happens next
    target = _checked_state(web, pending, state)
    channel = web.runtime.wecom_app()
    if channel is None:
        raise WeComSignInRefused("本系统未配置企业微信，请使用邮箱和密码登录。", 404)
    if not _CODE.fullmatch(code):
        raise WeComSignInRefused("企业微信没有带回登录凭据（code），请从企业微信重新打开链接。")
    try:
        answer = channel.user_of_code(code)
    except DeliveryError as exc:
        raise WeComSignInRefused(f"暂时无法向企业微信确认您的身份（{exc.reason}），请稍后重试，"
                                 "或使用邮箱和密码登录。", 502) from None
    failure = errcode(answer)
    if failure in BAD_CODE_ERRORS:
        raise WeComSignInRefused("企业微信登录凭据无效、已被使用或已过期（5 分钟内有效，只能使用一次），"
                                 "请从企业微信重新打开链接。")
    if failure != 0:
        raise WeComSignInRefused(f"企业微信拒绝了身份确认（错误码 {failure}），请稍后重试或联系管理员。",
                                 502)
    userid = answer.get("userid") or answer.get("UserId")
    if not isinstance(userid, str) or not userid:
        raise WeComSignInRefused("您不是本单位企业微信的成员，无法用企业微信登录整改台账系统。"
                                 "如需使用，请联系整改办。", 403)
    with web.transaction() as session:
        person = session.scalar(select(Person).where(Person.wecom_id == userid,
                                                     Person.active.is_(True)))
        if person is None:
            raise WeComSignInRefused(f"您的企业微信账号（{userid}）尚未登记在整改台账系统中，或账号已停用。"
                                     "请联系整改办在“人员”中登记您的企业微信账号后再试。", 403)
        start_session(request, person)
    return RedirectResponse(target, status_code=303)


def _checked_state(web: Web, pending: object, state: str) -> str:
    """The page to return to, if ``state`` is the one this browser's session holds and is
    recent; otherwise the sign-in is refused."""
    if (not isinstance(pending, dict) or not csrf_matches(pending.get("state"), state)
            or not isinstance(pending.get("at"), int)
            or not 0 <= web.now().timestamp() - pending["at"] <= STATE_SECONDS):
        raise WeComSignInRefused("这个企业微信登录请求已失效，或不是从本浏览器发起的。"
                                 "请回到企业微信，重新打开要查看的链接。")
    return safe_next(pending.get("next"))
