"""One-time approval links: minted at send time and stored hashed; GET changes nothing; POST
acts once as the person the link was made for; used, expired, stale and altered links get a
clear page with a 4xx status."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta
from html import unescape
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from web_support import CSRF_RE, PASSWORD, bring, csrf_of, state_of

from notifications.channels.base import MemoryChannel
from notifications.deliverer import Deliverer
from workflow import db
from workflow.lifecycle import Action, State
from workflow.models import ApprovalLink, HistoryEntry, OutboxMessage
from workflow.services.approvals import mint
from workflow.services.measures import ActionRequest, load_measure, perform

LINK_RE = re.compile(r"http://testserver/approve/([A-Za-z0-9_-]+)")


def sent_link(app: Any, sessions: Any, clock: Any) -> tuple[str, list[Any]]:
    """Deliver what is due through a memory channel; return the approval token in it."""
    channel = MemoryChannel("file")
    deliverer = Deliverer(sessions, {"file": channel}, base_url="http://testserver",
                          link_maker=app.state.web.runtime.link_maker)
    deliverer.run(clock)
    tokens = [m for r in channel.sent for m in LINK_RE.findall(r.html + r.text)]
    assert tokens, "no approval link in the sent messages"
    return tokens[0], channel.sent


@pytest.fixture
def verified(app: Any, cast: Any, sessions: Any, now: Any) -> Any:
    """The cast's measure verified by the reviewer: its leader has a to_close message."""
    bring(sessions, cast.measure.id, State.SUBMITTED, cast.admin, now)
    with db.transaction(sessions) as session:
        perform(session, ActionRequest(measure_id=cast.measure.id, action=Action.VERIFY,
                                       actor=cast.reviewer.email), now=now)
    return cast


@pytest.fixture
def link(app: Any, verified: Any, sessions: Any, clock: Any) -> str:
    token, _sent = sent_link(app, sessions, clock)
    return token


def signed_in(app: Any, person: Any) -> TestClient:
    """A client with ``person``'s session (销号 links ask for one by default)."""
    client = TestClient(app)
    token = csrf_of(client.get("/login").text)
    response = client.post("/login", data={"email": person.email, "password": PASSWORD,
                                           "csrf_token": token}, follow_redirects=False)
    assert response.status_code == 303, response.text
    return client


def confirm(client: TestClient, token: str) -> tuple[Any, str | None]:
    page = client.get(f"/approve/{token}")
    found = CSRF_RE.search(page.text)
    return page, found.group(1) if found else None


def test_the_leader_is_sent_a_link_and_only_its_hash_is_stored(app: Any, verified: Any,
                                                              sessions: Any, clock: Any) -> None:
    token, sent = sent_link(app, sessions, clock)
    [to_leader] = [r for r in sent if r.recipient == "leader@example.edu.cn"]
    assert to_leader.url == f"http://testserver/approve/{token}"  # the WeCom textcard's link
    assert all(token not in r.html for r in sent if r is not to_leader)
    with db.transaction(sessions) as session:
        [row] = session.scalars(select(ApprovalLink)).all()
        assert row.token_sha256 == hashlib.sha256(token.encode()).hexdigest()
        assert (row.measure_id, row.action, row.person_id, row.version) == (
            verified.measure.id, "close", verified.leader.id, 4)
        assert row.expires_at == clock() + timedelta(hours=72)
        stored = " ".join(str(m.payload) + str(m.info) for m in session.scalars(
            select(OutboxMessage)))
    assert token not in stored


def test_get_shows_a_confirmation_and_changes_nothing(app: Any, link: str, verified: Any,
                                                      sessions: Any, with_passwords: Any) -> None:
    scanner = TestClient(app)
    assert scanner.get(f"/approve/{link}", follow_redirects=False).status_code == 303
    client = signed_in(app, verified.leader)
    for _ in range(3):  # a preview, the person, again
        page, csrf = confirm(client, link)
        assert page.status_code == 200
        assert "确认销号" in page.text and verified.measure.title in page.text
        assert 'name="viewport"' in page.text and csrf
    assert state_of(sessions, verified.measure.id) == "verified"
    with db.transaction(sessions) as session:
        assert session.scalars(select(ApprovalLink.used_at)).one() is None


def test_post_closes_as_the_leader_once(app: Any, link: str, verified: Any,
                                        sessions: Any, with_passwords: Any) -> None:
    client = signed_in(app, verified.leader)
    _page, csrf = confirm(client, link)
    done = client.post(f"/approve/{link}", data={"csrf_token": csrf})
    assert done.status_code == 200, done.text
    assert "已销号" in done.text
    assert state_of(sessions, verified.measure.id) == "closed"
    with db.transaction(sessions) as session:
        last = session.scalars(select(HistoryEntry).order_by(HistoryEntry.id.desc())).first()
        assert last is not None and last.actor_id == verified.leader.id
        assert last.action == "close"
    # The link is used up: a second POST and a later GET are refused with 410
    again = client.post(f"/approve/{link}", data={"csrf_token": csrf})
    assert again.status_code == 410 and "已使用" in again.text
    assert client.get(f"/approve/{link}").status_code == 410


def test_expired_link_is_410(app: Any, link: str, verified: Any, clock: Any,
                             sessions: Any) -> None:
    client = TestClient(app)
    _page, csrf = confirm(client, link)
    clock.now = clock.now + timedelta(hours=72, seconds=1)
    page = client.get(f"/approve/{link}")
    assert page.status_code == 410 and "已过期" in page.text
    assert client.post(f"/approve/{link}", data={"csrf_token": csrf}).status_code == 410
    assert state_of(sessions, verified.measure.id) == "verified"


def test_expiry_follows_settings(database: Any, web_settings: Any, sessions: Any, clock: Any, cast: Any,
                                 now: Any) -> None:
    from dataclasses import replace

    from workflow.runtime import Runtime
    from workflow.web.app import create_app

    app = create_app(Runtime(replace(web_settings, approval_link_hours=2),
                             engine=database.engine, clock=clock))
    bring(sessions, cast.measure.id, State.VERIFIED, cast.admin, now)
    token, _ = sent_link(app, sessions, clock)
    clock.now = clock.now + timedelta(hours=2)
    assert TestClient(app).get(f"/approve/{token}").status_code == 410


def test_stale_link_is_409_when_the_measure_changed(app: Any, link: str, verified: Any,
                                                    sessions: Any, now: Any) -> None:
    client = TestClient(app)
    _page, csrf = confirm(client, link)
    # Someone reopens the measure after the link was sent
    with db.transaction(sessions) as session:
        perform(session, ActionRequest(measure_id=verified.measure.id, action=Action.REOPEN,
                                       actor=verified.admin.email, comment="材料有误"), now=now)
    page = client.get(f"/approve/{link}")
    assert page.status_code == 409 and "已有变动" in page.text
    assert client.post(f"/approve/{link}", data={"csrf_token": csrf}).status_code == 409
    assert state_of(sessions, verified.measure.id) == "in_progress"


def test_stale_link_is_409_even_back_in_the_same_state(app: Any, link: str, verified: Any,
                                                       sessions: Any, now: Any) -> None:
    # Reopened, resubmitted and verified again: same state, a newer version
    with db.transaction(sessions) as session:
        for action, actor, comment in ((Action.REOPEN, verified.admin, "补充材料"),
                                       (Action.SUBMIT, verified.owner, "已补充"),
                                       (Action.VERIFY, verified.reviewer, None)):
            perform(session, ActionRequest(measure_id=verified.measure.id, action=action,
                                           actor=actor.email, comment=comment), now=now)
    assert state_of(sessions, verified.measure.id) == "verified"
    assert TestClient(app).get(f"/approve/{link}").status_code == 409


@pytest.mark.parametrize("alter", [
    lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),
    lambda t: t[:-5],
    lambda t: t + "x",
    lambda t: "0" * 43,
])
def test_altered_link_is_404(app: Any, link: str, verified: Any, sessions: Any,
                             alter: Any) -> None:
    client = TestClient(app)
    page = client.get(f"/approve/{alter(link)}")
    assert page.status_code == 404 and "链接无效" in page.text
    csrf = CSRF_RE.search(client.get(f"/approve/{link}").text)
    assert csrf
    assert client.post(f"/approve/{alter(link)}",
                       data={"csrf_token": csrf.group(1)}).status_code == 404
    assert state_of(sessions, verified.measure.id) == "verified"


def test_post_without_csrf_token_is_refused(app: Any, link: str, verified: Any,
                                            sessions: Any) -> None:
    client = TestClient(app)
    confirm(client, link)
    assert client.post(f"/approve/{link}", data={}).status_code == 403
    assert state_of(sessions, verified.measure.id) == "verified"


def test_a_link_is_made_only_while_the_measure_awaits_the_action(
        app: Any, verified: Any, sessions: Any, clock: Any, now: Any) -> None:
    # The leader closes in the app before the message goes out: the message has no link
    with db.transaction(sessions) as session:
        perform(session, ActionRequest(measure_id=verified.measure.id, action=Action.CLOSE,
                                       actor=verified.leader.email), now=now)
    channel = MemoryChannel("file")
    Deliverer(sessions, {"file": channel}, base_url="http://testserver",
              link_maker=app.state.web.runtime.link_maker).run(clock)
    assert any(r.recipient == "leader@example.edu.cn" for r in channel.sent)
    assert not any(LINK_RE.search(r.html) for r in channel.sent)
    with db.transaction(sessions) as session:
        assert session.scalars(select(ApprovalLink)).all() == []


def test_rectiflow_deliver_writes_the_link_into_the_mail(rectiflow: Any, cast: Any,
                                                         sessions: Any, now: Any,
                                                         tmp_path: Any) -> None:
    # Given a measure verified through the CLI, so its outbox writer queues the to_close message
    bring(sessions, cast.measure.id, State.SUBMITTED, cast.admin, now)
    pinned = now.isoformat()
    assert rectiflow("--now", pinned, "measure", "do", str(cast.measure.id), "verify",
                     "--as", cast.reviewer.email).code == 0
    # When rectiflow deliver sends it through the file channel
    assert rectiflow("--now", pinned, "deliver").code == 0
    import email
    from email.policy import default

    bodies = []
    for path in (tmp_path / "outbox").glob("*.eml"):
        mail = email.message_from_bytes(path.read_bytes(), policy=default)
        part = mail.get_body(preferencelist=("plain",))  # type: ignore[attr-defined]
        bodies.append((str(mail["To"]), part.get_content()))
    # Then the mail to the leader carries a one-time link whose hash alone is stored
    [text] = [body for to, body in bodies if "leader@example.edu.cn" in to]
    found = re.search(r"/approve/([A-Za-z0-9_-]{40,})", text)
    assert found, text
    with db.transaction(sessions) as session:
        [row] = session.scalars(select(ApprovalLink)).all()
    assert row.token_sha256 == hashlib.sha256(found.group(1).encode()).hexdigest()


# ------------------------------------------------------------------ the sign-in policy


def test_without_a_session_the_link_asks_for_login_and_comes_back(app: Any, link: str,
                                                                 verified: Any, sessions: Any,
                                                                 with_passwords: Any) -> None:
    client = TestClient(app)
    # Given the leader opens the link on a device without a session
    first = client.get(f"/approve/{link}", follow_redirects=False)
    assert first.status_code == 303
    assert first.headers["location"] == f"/login?next=/approve/{link}"
    login = client.get(first.headers["location"])
    assert "登录后将回到确认页面" in login.text
    # A POST without a session acts for nobody either
    assert client.post(f"/approve/{link}", data={"csrf_token": csrf_of(login.text)},
                       follow_redirects=False).status_code == 303
    assert state_of(sessions, verified.measure.id) == "verified"
    # When the leader logs in, the login returns to the link's confirmation
    back = client.post("/login", data={"email": verified.leader.email, "password": PASSWORD,
                                       "csrf_token": csrf_of(login.text),
                                       "next": f"/approve/{link}"}, follow_redirects=False)
    assert back.status_code == 303 and back.headers["location"] == f"/approve/{link}"
    page, csrf = confirm(client, link)
    assert page.status_code == 200 and "确认销号" in page.text
    # And the button closes the measure as the leader
    assert client.post(f"/approve/{link}", data={"csrf_token": csrf}).status_code == 200
    assert state_of(sessions, verified.measure.id) == "closed"


def test_a_forwarded_link_does_not_act_for_someone_else(app: Any, link: str, verified: Any,
                                                       sessions: Any,
                                                       with_passwords: Any) -> None:
    # Given the leader forwarded the message to the owner, who is signed in
    client = signed_in(app, verified.owner)
    page = client.get(f"/approve/{link}")
    assert page.status_code == 403
    assert "这个链接是发给 Leader 的" in page.text and "当前登录的是 Owner" in page.text
    csrf = csrf_of(client.get("/my").text)
    assert client.post(f"/approve/{link}", data={"csrf_token": csrf}).status_code == 403
    # Then nothing happened and the link is still the leader's to use
    assert state_of(sessions, verified.measure.id) == "verified"
    with db.transaction(sessions) as session:
        assert session.scalars(select(ApprovalLink.used_at)).one() is None
    leader = signed_in(app, verified.leader)
    _page, csrf = confirm(leader, link)
    assert leader.post(f"/approve/{link}", data={"csrf_token": csrf}).status_code == 200


def test_the_leaders_delegate_may_confirm_and_history_names_both(app: Any, link: str,
                                                                verified: Any, sessions: Any,
                                                                with_passwords: Any,
                                                                now: Any) -> None:
    from workflow.models import Person
    from workflow.services.people import set_delegate

    with db.transaction(sessions) as session:
        set_delegate(session, session.get(Person, verified.leader.id),
                     session.get(Person, verified.reviewer.id), (now + timedelta(days=7)).date())
    # (the reviewer may not close in their own right: only as the leader's delegate)
    client = signed_in(app, verified.reviewer)
    page, csrf = confirm(client, link)
    assert page.status_code == 200 and "代理人身份" in page.text
    assert client.post(f"/approve/{link}", data={"csrf_token": csrf}).status_code == 200
    with db.transaction(sessions) as session:
        last = session.scalars(select(HistoryEntry).order_by(HistoryEntry.id.desc())).first()
        assert last is not None and last.action == "close"
        assert (last.actor_id, last.on_behalf_of_id) == (verified.reviewer.id,
                                                         verified.leader.id)


def test_with_the_policy_off_the_holder_of_the_link_acts(database: Any, web_settings: Any,
                                                        clock: Any, cast: Any, now: Any,
                                                        tmp_path: Any) -> None:
    from dataclasses import replace

    from workflow.runtime import Runtime
    from workflow.web.app import create_app

    policy = tmp_path / "policy.toml"
    policy.write_text("[approval_link]\nrequire_sign_in = []\n", encoding="utf-8")
    runtime = Runtime(replace(web_settings, config_file=policy), engine=database.engine,
                      clock=clock)
    app = create_app(runtime)
    sessions = runtime.sessions
    bring(sessions, cast.measure.id, State.SUBMITTED, cast.admin, now)
    with db.transaction(sessions) as session:
        perform(session, ActionRequest(measure_id=cast.measure.id, action=Action.VERIFY,
                                       actor=cast.reviewer.email), now=now)
    token, _sent = sent_link(app, sessions, clock)
    client = TestClient(app)
    page, csrf = confirm(client, token)
    assert page.status_code == 200
    assert client.post(f"/approve/{token}", data={"csrf_token": csrf}).status_code == 200
    assert state_of(sessions, cast.measure.id) == "closed"


@pytest.mark.parametrize("text,where", [
    ('[approval_link]\nrequire_sign_in = "close"\n', "approval_link.require_sign_in"),
    ('[approval_link]\nrequire_sign_in = ["shut"]\n', "approval_link.require_sign_in"),
    ('[approval_link]\nsign_in = ["close"]\n', "approval_link.sign_in"),
])
def test_a_bad_sign_in_policy_is_refused_with_its_place(tmp_path: Any, text: str,
                                                       where: str) -> None:
    from workflow.policy import PolicyError, approval_sign_in, load_policy_file

    assert approval_sign_in(load_policy_file(None)) == {Action.CLOSE}
    path = tmp_path / "policy.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PolicyError, match=re.escape(where)):
        load_policy_file(path)


# ------------------------------------------------------------------ 退回 from the link's page
# The page offers 销号 and 退回 (重新打开, the lifecycle's way back from 待销号) with a required
# reason, each named on its button. The refusal follows the link's rules: one use, bound to
# measure, version and person, offered only where the lifecycle lets the link's person take it;
# a refused reason keeps what was typed and answers 422.


def refuse(client: Any, token: str, csrf: str, reason: str) -> Any:
    return client.post(f"/approve/{token}", data={"csrf_token": csrf, "decision": "refuse",
                                                  "reason": reason})


def test_the_page_names_both_actions_on_their_buttons(
        app: Any, with_passwords: Any, link: str, verified: Any) -> None:
    page, csrf = confirm(signed_in(app, verified.leader), link)
    assert page.status_code == 200 and csrf
    buttons = re.findall(r"<button[^>]*>([^<]+)</button>", page.text)
    assert "确认销号" in buttons and "退回整改" in buttons
    assert "一键办理" not in page.text
    assert re.search(r'<textarea id="reason" name="reason" required', page.text)


def test_the_leader_sends_it_back_with_a_reason_once(
        app: Any, with_passwords: Any, link: str, verified: Any,
                                                     sessions: Any) -> None:
    # Given the leader on the link's page
    client = signed_in(app, verified.leader)
    _page, csrf = confirm(client, link)
    assert csrf
    # When they send it back with a reason
    done = refuse(client, link, csrf, "佐证材料缺少党总支会议纪要，请补充后重新提交")
    # Then the measure is back with the owner, the history says why, and the owner is told
    assert done.status_code == 200, done.text
    assert "已退回整改" in done.text
    assert state_of(sessions, verified.measure.id) == State.IN_PROGRESS.value
    with db.transaction(sessions) as session:
        last = session.scalars(select(HistoryEntry).where(
            HistoryEntry.measure_id == verified.measure.id)
            .order_by(HistoryEntry.seq.desc())).first()
        assert (last.action, last.actor_id, last.comment) == (
            Action.REOPEN.value, verified.leader.id, "佐证材料缺少党总支会议纪要，请补充后重新提交")
        told = session.scalars(select(OutboxMessage).where(
            OutboxMessage.recipient_id == verified.owner.id)).all()
        assert any(item.rule == "reopened" for m in told for item in m.items), told
        assert session.scalar(select(ApprovalLink.used_at)) is not None
    # And the link is used up: neither action can follow
    again = client.get(f"/approve/{link}")
    assert again.status_code == 410 and "已使用" in again.text


def test_an_empty_reason_is_422_and_changes_nothing(
        app: Any, with_passwords: Any, link: str, verified: Any,
                                                    sessions: Any) -> None:
    client = signed_in(app, verified.leader)
    _page, csrf = confirm(client, link)
    answer = refuse(client, link, csrf or "", "   ")
    assert answer.status_code == 422
    assert 'id="refusal-error"' in answer.text and "理由" in unescape(answer.text)
    assert state_of(sessions, verified.measure.id) == State.VERIFIED.value
    with db.transaction(sessions) as session:
        assert session.scalar(select(ApprovalLink.used_at)) is None
    # the link still works afterwards
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', answer.text).group(1)
    assert refuse(client, link, csrf, "请补充会议纪要").status_code == 200


def test_a_too_long_reason_is_422_and_keeps_what_was_typed(
        app: Any, with_passwords: Any, link: str, verified: Any,
                                                           sessions: Any) -> None:
    client = signed_in(app, verified.leader)
    _page, csrf = confirm(client, link)
    typed = "请补充<会议纪要>。" + "详" * 2000
    answer = refuse(client, link, csrf or "", typed)
    assert answer.status_code == 422
    assert "理由不能超过 2000 字" in answer.text
    kept = re.search(r'<textarea id="reason"[^>]*>(.*?)</textarea>', answer.text, re.S)
    assert kept and unescape(kept.group(1)) == typed
    assert state_of(sessions, verified.measure.id) == State.VERIFIED.value


def test_a_first_responsibles_close_link_offers_no_return(
        app: Any, with_passwords: Any, verified: Any,
                                                          sessions: Any, now: Any) -> None:
    # The lifecycle lets the first responsible close but not send back (重新打开 is the leader's)
    with db.transaction(sessions) as session:
        token = mint(session, measure=load_measure(session, verified.measure.id),
                     action=Action.CLOSE, person_id=verified.secretary.id, now=now)
    client = signed_in(app, verified.secretary)
    page, csrf = confirm(client, token)
    assert "确认销号" in page.text and "退回整改" not in page.text
    # A refusal posted anyway is refused (403), names the rule, and leaves the link usable
    answer = refuse(client, token, csrf or "", "不同意")
    assert answer.status_code == 403
    assert "无权" in answer.text
    assert state_of(sessions, verified.measure.id) == State.VERIFIED.value
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', answer.text).group(1)
    done = client.post(f"/approve/{token}", data={"csrf_token": csrf, "decision": "accept"})
    assert done.status_code == 200 and "已销号" in done.text
    assert state_of(sessions, verified.measure.id) == State.CLOSED.value


def test_a_forwarded_link_cannot_send_it_back_either(
        app: Any, with_passwords: Any, link: str, verified: Any,
                                                     sessions: Any) -> None:
    client = signed_in(app, verified.outsider)
    assert client.get(f"/approve/{link}").status_code == 403
    token = re.search(r'name="csrf_token" value="([^"]+)"',
                      client.get("/login").text)
    answer = refuse(client, link, token.group(1) if token else "", "不同意")
    assert answer.status_code == 403
    assert state_of(sessions, verified.measure.id) == State.VERIFIED.value
