"""延期申请 and 催办 as the people receive them (issue 15): the real deliverer sends by SMTP to
aiosmtpd on this machine (or to the local WeCom server), and the mails are read here."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
import test_messages
from test_messages import BASE_URL, Office, at

from workflow.errors import TooSoon
from workflow.lifecycle import Action, OutboxStatus

# the message tests' fixtures: the local SMTP server, the office, the office on WeCom
smtp = test_messages.smtp
office = test_messages.office
wecom_office = test_messages.wecom_office


def _request(office: Office, measure: Any) -> None:
    office.act(measure, Action.REQUEST_EXTENSION, office.owner, deadline=date(2027, 1, 29),
               comment="招标延后，需跨年度完成")


def test_a_request_asks_the_leader_with_a_link_and_the_approval_tells_the_owner(
        office: Office) -> None:
    # Given a measure due Thursday 2026-12-31
    measure = office.measure(deadline=date(2026, 12, 31))
    # When the owner asks for a later date and the deliverer runs
    _request(office, measure)
    office.deliver()
    # Then the leader reads who asks for which date and why, with a link to approve
    [(subject, text)] = office.mail_to(office.leader)
    assert subject == "【整改督办】责任人申请延期，请审批"
    assert "【延期申请待审批】" in text
    assert ("完成时限由 2026-12-31（周四） 延至 2027-01-29（周五）。理由：招标延后，需跨年度完成"
            "（WangXiaoming 2026-12-08 10:00）") in text
    assert f"审批延期：{BASE_URL}/approve/" in text
    assert office.mail_to(office.owner) == []
    # When the leader approves it
    office.act(measure, Action.APPROVE_EXTENSION, office.leader)
    office.deliver()
    # Then the owner hears the decision with the new date and the reason
    [(subject, text)] = office.mail_to(office.owner)
    assert subject == "【整改督办】您的延期申请已批准，请按新时限推进"
    assert "【延期已批准】" in text
    assert "完成时限由 2026-12-31（周四） 延至 2027-01-29（周五）。理由：招标延后，需跨年度完成" in text


def test_a_declined_request_tells_the_owner_why(office: Office) -> None:
    measure = office.measure(deadline=date(2026, 12, 31))
    _request(office, measure)
    office.deliver()
    office.mail_to(office.leader)
    office.act(measure, Action.DECLINE_EXTENSION, office.leader, comment="采购可先行启动，按期完成")
    office.deliver()
    [(subject, text)] = office.mail_to(office.owner)
    assert subject == "【整改督办】您的延期申请未获批准，请按原时限推进"
    assert "【延期未获批准】" in text
    assert "理由：采购可先行启动，按期完成（ZhangJuzhang 2026-12-08 10:00）" in text


def test_a_request_decided_before_its_message_went_out_is_not_sent(office: Office) -> None:
    # Given the owner asks at 19:00, after the send window: the leader's mail waits for morning
    office.clock.now = at("2026-12-08 19:00")
    measure = office.measure(deadline=date(2026, 12, 31))
    _request(office, measure)
    # When the leader, having seen it on the page, approves it at 20:00
    office.clock.now = at("2026-12-08 20:00")
    office.act(measure, Action.APPROVE_EXTENSION, office.leader)
    # Then next morning the leader is not asked about a request already decided; the owner
    # hears of the approval
    office.clock.now = at("2026-12-09 08:30")
    office.deliver()
    assert office.mail_to(office.leader) == []
    [(_, text)] = office.mail_to(office.owner)
    assert "【延期已批准】" in text
    statuses = {m.payload["items"][0]["rule"]: m.status for m in office.rows()}
    assert statuses["extension_request"] == OutboxStatus.CANCELLED
    assert statuses["extension_approved"] == OutboxStatus.SENT


def test_an_urge_reaches_the_owner_now_and_the_leader_from_the_second_on(office: Office) -> None:
    measure = office.measure(deadline=date(2026, 12, 31))
    # When the 整改办 urges with a text
    office.act(measure, Action.URGE, office.reviewer, comment="请于本周五前报送整改进展")
    office.deliver()
    # Then the owner has it at once, with the text; the leader is not told of a first urge
    [(subject, text)] = office.mail_to(office.owner)
    assert subject == "【整改督办】催办：请抓紧推进整改"
    assert "【催办】" in text and "请于本周五前报送整改进展（ZhaoZhuren 2026-12-08 10:00）" in text
    assert office.mail_to(office.leader) == []
    # And a second urge within four hours is refused
    office.clock.now = at("2026-12-08 13:00")
    with pytest.raises(TooSoon, match="2026-12-08 14:00 之后才能再次催办"):
        office.act(measure, Action.URGE, office.reviewer, comment="再催")
    # When the first responsible urges again after the cool-down
    office.clock.now = at("2026-12-08 14:00")
    office.act(measure, Action.URGE, office.secretary, comment="书记过问：务必本周完成")
    office.deliver()
    # Then the owner and, this time, the leader hear it
    [(_, text)] = office.mail_to(office.owner)
    assert "书记过问：务必本周完成" in text
    [(subject, text)] = office.mail_to(office.leader)
    assert subject == "【整改督办】再次催办：该措施已被多次催办，请督促责任人"
    assert "书记过问：务必本周完成（WangShuji 2026-12-08 14:00）" in text


def test_a_leader_urging_again_gets_no_copy_of_their_own_urge(office: Office) -> None:
    measure = office.measure(deadline=date(2026, 12, 31))
    office.act(measure, Action.URGE, office.leader, comment="请抓紧")
    office.clock.now = at("2026-12-08 15:00")
    office.act(measure, Action.URGE, office.leader, comment="第二次催办")
    office.deliver()
    assert len(office.mail_to(office.owner)) == 2
    assert office.mail_to(office.leader) == []


def test_an_urge_goes_by_wecom_to_an_owner_with_a_wecom_id(wecom_office: Any) -> None:
    office, server = wecom_office
    [measure] = office.ledger.measures(office.campaign, [
        {"leader": office.leader, "owner": office.owner, "title": "规范公务接待审批流程"}])
    office.act(measure, Action.URGE, office.reviewer, comment="请今天下班前补报进展")
    office.deliver()
    [got] = server.delivered_to("zhangsan")
    body = got.body[got.msgtype]
    content = str(body.get("description") or body.get("content"))
    assert "请今天下班前补报进展" in content and "规范公务接待审批流程" in content
