"""回头看, 三方验收 and 协办单位 as the people receive them (issue 15): the real deliverer sends
by SMTP to aiosmtpd on this machine, and the mails are read here."""

from __future__ import annotations

from datetime import date
from typing import Any

import test_messages
from test_messages import Office, at, bring_to_submitted

from workflow import db
from workflow.lifecycle import Action
from workflow.models import Campaign

# the message tests' fixtures: the local SMTP server and the office
smtp = test_messages.smtp
office = test_messages.office


def _closed(office: Office, **row: Any) -> Any:
    measure = office.measure(deadline=date(2026, 12, 31), **row)
    bring_to_submitted(office, measure)
    office.act(measure, Action.VERIFY, office.reviewer)
    office.act(measure, Action.CLOSE, office.leader)
    office.deliver()
    office.mails()
    return measure


def test_a_relapse_tells_owner_and_leader_why(office: Office) -> None:
    measure = _closed(office)
    office.act(measure, Action.RECHECK, office.reviewer, result="relapse",
               comment="食堂采购台账又出现未登记情况")
    office.deliver()
    [(subject, text)] = office.mail_to(office.owner)
    assert subject == "【整改督办】回头看发现问题反弹，措施已重新打开，请继续整改"
    assert "【回头看发现反弹】" in text
    assert "理由：食堂采购台账又出现未登记情况（ZhaoZhuren 2026-12-08 10:00）" in text
    [(subject, text)] = office.mail_to(office.leader)
    assert "回头看发现问题反弹" in subject and "食堂采购台账又出现未登记情况" in text
    assert office.mail_to(office.reviewer) == []


def test_an_ok_recheck_sends_nothing(office: Office) -> None:
    measure = _closed(office)
    office.act(measure, Action.RECHECK, office.reviewer, result="ok")
    office.deliver()
    assert office.mails() == []


def test_the_reviewer_is_asked_to_recheck_six_months_after_closing(office: Office) -> None:
    measure = _closed(office)
    office.sweep()  # plans the re-check
    office.clock.now = at("2027-06-08 09:00")
    office.sweep()
    office.deliver()
    [(subject, text)] = office.mail_to(office.reviewer)
    assert "回头看" in subject
    assert "【回头看】" in text and measure.title in text
    assert "已于 2026-12-08 周二 销号，请开展回头看" in text


def test_each_acceptor_is_asked_and_the_leader_only_after_the_last(office: Office) -> None:
    with db.transaction(office.runtime.sessions) as session:
        session.get_one(Campaign, office.campaign.id).acceptors = [
            "reviewer", office.secretary.id]
    measure = office.measure(deadline=date(2026, 12, 31))
    office.act(measure, Action.START, office.owner)
    office.act(measure, Action.SUBMIT, office.owner, comment="已制订管理办法并印发")
    office.deliver()
    [(_, text)] = office.mail_to(office.secretary)
    assert "请作为验收人核验" in text
    assert office.mail_to(office.reviewer)  # as the 整改办
    office.act(measure, Action.VERIFY, office.secretary)
    office.deliver()
    assert office.mail_to(office.leader) == []  # one of two: nobody asked to sign off
    office.act(measure, Action.VERIFY, office.reviewer)
    office.deliver()
    [(subject, _)] = office.mail_to(office.leader)
    assert "待您审阅并销号" in subject


def test_an_assisting_unit_gets_copies_of_the_owners_reminders(office: Office) -> None:
    helper = office.ledger.person("ChenXiezhu", "owner", unit="采购管理办公室")
    office.measure(deadline=date(2026, 12, 3), assisting=["采购管理办公室"])
    office.deliver()
    office.mails()
    office.sweep()  # three working days overdue
    office.deliver()
    [(subject, text)] = office.mail_to(helper)
    assert "（协办抄送）" in text
    assert office.mail_to(office.owner)
