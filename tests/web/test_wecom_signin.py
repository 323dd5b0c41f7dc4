"""WeCom sign-in (企业微信网页授权) over real HTTP: the app served by uvicorn, the local WeCom
server answering ``auth/getuserinfo``, and httpx following each redirect by hand the way WeCom's
browser would (its authorisation page is WeCom's; the test plays it with ``issue_code``)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fakes.wecom_server import FakeWeCom
from live_server import free_port, serving
from sqlalchemy import update

from workflow import db
from workflow.models import Person
from workflow.runtime import Runtime
from workflow.web.app import create_app
from workflow.web.security import LoginLimiter

WXWORK = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
          "(KHTML, like Gecko) Mobile/15E148 wxwork/4.1.30 MicroMessenger/7.0.1 Language/zh")
DESKTOP = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36"
AUTHORIZE = "https://open.weixin.qq.com/connect/oauth2/authorize"


@pytest.fixture
def wecom() -> Iterator[FakeWeCom]:
    with FakeWeCom(users={"owner-wx", "leader-wx"}) as server:
        yield server


@pytest.fixture
def wx_people(cast: Any, sessions: Any) -> Any:
    """The owner and the leader have WeCom ids; the outsider has one but has left (inactive)."""
    with db.transaction(sessions) as session:
        for person, wecom_id in ((cast.owner, "owner-wx"), (cast.leader, "leader-wx"),
                                 (cast.outsider, "outsider-wx")):
            session.execute(update(Person).where(Person.id == person.id)
                            .values(wecom_id=wecom_id))
        session.execute(update(Person).where(Person.id == cast.outsider.id).values(active=False))
    return cast


@pytest.fixture
def base(database: Any, web_settings: Any, clock: Any, wecom: FakeWeCom, wx_people: Any
         ) -> Iterator[str]:
    port = free_port()
    settings = replace(web_settings, base_url=f"http://127.0.0.1:{port}",
                       wecom_api_base=wecom.url, wecom_corp_id=wecom.corp_id,
                       wecom_secret=wecom.secret, wecom_agent_id=wecom.agent_id)
    app = create_app(Runtime(settings, engine=database.engine, clock=clock),
                     limiter=LoginLimiter())
    with serving(app, port) as url:
        yield url


def phone(base: str) -> httpx.Client:
    return httpx.Client(base_url=base, headers={"User-Agent": WXWORK}, timeout=10)


def start(client: httpx.Client, path: str) -> tuple[str, str]:
    """Open ``path`` without a session inside WeCom: the app sends the browser to WeCom's
    authorisation. Returns (redirect_uri, state) from that address, checked."""
    answer = client.get(path)
    assert answer.status_code == 302, answer.text
    where = urlsplit(answer.headers["location"])
    assert f"{where.scheme}://{where.netloc}{where.path}" == AUTHORIZE
    assert where.fragment == "wechat_redirect"
    assert [k for k, _ in (p.split("=", 1) for p in where.query.split("&"))] == [
        "appid", "redirect_uri", "response_type", "scope", "state"]  # WeCom checks the order
    query = {k: v[0] for k, v in parse_qs(where.query).items()}
    assert query["appid"] == "ww-test-corp"
    assert query["response_type"] == "code" and query["scope"] == "snsapi_base"
    assert re.fullmatch(r"[a-zA-Z0-9]{1,128}", query["state"])
    return query["redirect_uri"], query["state"]


def signed_in_as(client: httpx.Client) -> str | None:
    """The name the /my page greets, or None when it is not shown (no session)."""
    answer = client.get("/my")
    if answer.status_code != 200:
        return None
    return answer.text


def test_a_wecom_member_opens_a_message_link_signed_in(base: str, wx_people: Any,
                                                       wecom: FakeWeCom) -> None:
    # Given the owner taps a WeCom message's link to their measure, without a session
    path = f"/measures/{wx_people.measure.id}"
    with phone(base) as client:
        redirect_uri, state = start(client, path)
        assert redirect_uri == f"{base}/wecom/callback"
        # When WeCom's page sends the browser back with a code for the owner's WeCom id
        back = client.get(redirect_uri, params={"code": wecom.issue_code(userid="owner-wx"),
                                                "state": state})
        # Then the owner is signed in and lands on the page first asked for
        assert back.status_code == 303, back.text
        assert back.headers["location"] == path
        page = client.get(path)
        assert page.status_code == 200
        assert "修订食堂原材料采购管理办法" in page.text and "Owner" in page.text
        assert wecom.userinfo_calls == 1 and wecom.gettoken_calls == 1


def test_password_login_stays_outside_wecom(base: str) -> None:
    with httpx.Client(base_url=base, headers={"User-Agent": DESKTOP}) as desktop:
        answer = desktop.get("/my")
        assert answer.status_code == 303
        assert answer.headers["location"] == "/login?next=/my"


def test_without_wecom_configured_the_wecom_browser_gets_the_login_form(
        app: Any, with_passwords: Any) -> None:
    with serving(app) as url, phone(url) as client:
        answer = client.get("/my")
        assert answer.status_code == 303 and answer.headers["location"] == "/login?next=/my"
        assert client.get("/wecom/login").headers["location"] == "/login?next=/my"


def refused(answer: httpx.Response, status: int, words: str) -> None:
    assert answer.status_code == status, answer.text
    assert "企业微信登录未成功" in answer.text and words in answer.text


def test_a_state_is_single_use_and_bound_to_the_browser(base: str, wecom: FakeWeCom) -> None:
    with phone(base) as victim, phone(base) as attacker:
        redirect_uri, state = start(victim, "/my")
        # A state made in one browser does nothing in another
        refused(attacker.get(redirect_uri, params={"code": wecom.issue_code(userid="owner-wx"),
                                                   "state": state}), 400, "不是从本浏览器发起")
        assert signed_in_as(attacker) is None
        # It works once in its own browser ...
        good = victim.get(redirect_uri, params={"code": wecom.issue_code(userid="owner-wx"),
                                                "state": state})
        assert good.status_code == 303
        victim.cookies.clear()
        # ... and never again, even from a browser that started its own sign-in
        start(victim, "/my")
        refused(victim.get(redirect_uri, params={"code": wecom.issue_code(userid="owner-wx"),
                                                 "state": state}), 400, "已失效")
        assert signed_in_as(victim) is None


def test_a_forged_state_signs_nobody_in_and_spends_the_real_one(base: str,
                                                               wecom: FakeWeCom) -> None:
    with phone(base) as client:
        redirect_uri, state = start(client, "/my")
        refused(client.get(redirect_uri, params={"code": wecom.issue_code(userid="owner-wx"),
                                                 "state": "a" * 32}), 400, "已失效")
        refused(client.get(redirect_uri, params={"code": wecom.issue_code(userid="owner-wx"),
                                                 "state": state}), 400, "已失效")
        assert signed_in_as(client) is None
    assert wecom.userinfo_calls == 0  # refused before WeCom was asked


def test_a_code_is_single_use(base: str, wecom: FakeWeCom) -> None:
    code = wecom.issue_code(userid="owner-wx")
    with phone(base) as first, phone(base) as second:
        redirect_uri, state = start(first, "/my")
        assert first.get(redirect_uri, params={"code": code, "state": state}).status_code == 303
        redirect_uri, state = start(second, "/my")
        refused(second.get(redirect_uri, params={"code": code, "state": state}), 400,
                "已被使用")
        assert signed_in_as(second) is None
    assert ("auth/getuserinfo", 40029) in wecom.errors


def test_an_old_sign_in_request_is_refused(base: str, wecom: FakeWeCom, clock: Any) -> None:
    with phone(base) as client:
        redirect_uri, state = start(client, "/my")
        clock.now += timedelta(minutes=11)
        refused(client.get(redirect_uri, params={"code": wecom.issue_code(userid="owner-wx"),
                                                 "state": state}), 400, "已失效")
        assert signed_in_as(client) is None


@pytest.mark.parametrize(("who", "status", "words"), [
    ({"userid": "stranger-wx"}, 403, "尚未登记在整改台账系统中"),
    ({"userid": "outsider-wx"}, 403, "已停用"),
    ({"openid": "oAbCdEf-non-member"}, 403, "不是本单位企业微信的成员"),
])
def test_people_rectiflow_does_not_know_get_a_clear_page(base: str, wecom: FakeWeCom,
                                                         who: dict[str, str], status: int,
                                                         words: str) -> None:
    with phone(base) as client:
        redirect_uri, state = start(client, "/my")
        refused(client.get(redirect_uri, params={"code": wecom.issue_code(**who),
                                                 "state": state}), status, words)
        assert signed_in_as(client) is None


def test_a_missing_or_malformed_code_is_refused(base: str, wecom: FakeWeCom) -> None:
    with phone(base) as client:
        for code in ("", "bad code<script>"):
            redirect_uri, state = start(client, "/my")
            refused(client.get(redirect_uri, params={"code": code, "state": state}), 400,
                    "没有带回登录凭据")
    assert wecom.userinfo_calls == 0


def test_an_expired_token_is_fetched_again_once(base: str, wecom: FakeWeCom, wx_people: Any
                                                ) -> None:
    with phone(base) as first:
        redirect_uri, state = start(first, "/my")
        first.get(redirect_uri, params={"code": wecom.issue_code(userid="owner-wx"),
                                        "state": state})
    wecom.expire_tokens()
    with phone(base) as second:
        redirect_uri, state = start(second, "/my")
        back = second.get(redirect_uri, params={"code": wecom.issue_code(userid="leader-wx"),
                                                "state": state})
        assert back.status_code == 303, back.text
        assert "Leader" in (signed_in_as(second) or "")
    assert ("auth/getuserinfo", 42001) in wecom.errors
    assert wecom.gettoken_calls == 2 and wecom.userinfo_calls == 3


def test_wecom_refusing_is_explained(base: str, wecom: FakeWeCom) -> None:
    wecom.fail_next("auth/getuserinfo", 60020)
    with phone(base) as client:
        redirect_uri, state = start(client, "/my")
        refused(client.get(redirect_uri, params={"code": wecom.issue_code(userid="owner-wx"),
                                                 "state": state}), 502, "错误码 60020")
        assert signed_in_as(client) is None


def test_only_a_local_path_follows_the_sign_in(base: str, wecom: FakeWeCom) -> None:
    with phone(base) as client:
        answer = client.get("/wecom/login", params={"next": "https://evil.example/steal"})
        query = {k: v[0] for k, v in parse_qs(urlsplit(answer.headers["location"]).query).items()}
        back = client.get(query["redirect_uri"], params={
            "code": wecom.issue_code(userid="owner-wx"), "state": query["state"]})
        assert back.status_code == 303 and back.headers["location"] == "/my"
