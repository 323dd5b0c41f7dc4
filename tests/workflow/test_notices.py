"""督办 documents: issued by the sweep at the escalation stages that name them, numbered per kind
and year and never twice, linked from the escalation message, exported as Word in the form of
an official document, answered with a 回执; and the refusals (unknown, not permitted, bad input)
that change nothing."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from docx import Document
from officialdoc import artefacts_dir, assert_official_form, render_first_page
from sqlalchemy import select

from notifications.render import render
from workflow import db
from workflow.lifecycle import DocumentKind, Kind
from workflow.models import OfficialNotice, OutboxMessage
from workflow.policy import PolicyError, load_policy_file, parse_policy
from workflow.services import notices as notices_service
from workflow.services.notices import allocate_number
from workflow.services.sweep import reminder_context, sweep
from workflow.timeutil import SHANGHAI

Run = Callable[..., Any]
DEADLINE = date(2026, 10, 9)  # a Friday; Saturday 2026-10-10 is a 调休 working day


def iso(text: str) -> str:
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=SHANGHAI).isoformat()


@pytest.fixture
def overdue(ledger):  # type: ignore[no-untyped-def]
    """Three measures of 饮食服务中心 due 2026-10-09, one of 物业管理科; imported in September."""
    ledger.now = datetime(2026, 9, 1, 10, 0, tzinfo=SHANGHAI)
    secretary = ledger.person("Secretary", "leader")
    leader = ledger.person("Leader", "leader")
    owner = ledger.person("Owner", "owner", unit="饮食服务中心")
    other = ledger.person("Other", "owner", unit="物业管理科")
    reviewer = ledger.person("Reviewer", "reviewer")
    outsider = ledger.person("Outsider", "owner", unit="保卫处")
    campaign = ledger.campaign(first_responsible=secretary)
    rows = [{"leader": leader, "owner": owner, "unit": "饮食服务中心", "deadline": DEADLINE,
             "title": f"修订食堂管理制度{i}"} for i in range(3)]
    rows.append({"leader": leader, "owner": other, "unit": "物业管理科", "deadline": DEADLINE,
                 "title": "建立维修回访制度"})
    measures = ledger.measures(campaign, rows)
    return {"campaign": campaign, "measures": [m.id for m in measures], "owner": owner,
            "other": other, "leader": leader, "reviewer": reviewer, "outsider": outsider}


def notices(rectiflow: Run, *args: str) -> list[dict[str, Any]]:
    result = rectiflow("notice", "list", "--json", *args)
    assert result.code == 0, result.err
    return result.json()


def test_the_sweep_issues_one_numbered_document_per_stage(overdue, rectiflow: Run,
                                                          sessions) -> None:
    ids = overdue["measures"]
    # Given four measures two working days overdue, a dry run issues nothing
    preview = rectiflow("sweep", "--dry-run", "--json", "--now", iso("2026-10-12 09:00"))
    assert preview.code == 0 and preview.json()["documents"] == 4
    assert notices(rectiflow) == []
    # When the sweep runs
    swept = rectiflow("sweep", "--json", "--now", iso("2026-10-12 09:00"))
    assert swept.code == 0 and swept.json()["documents"] == 4
    # Then each gets a 督办通知书 (stage overdue:1), numbered 1 to 4 in 2026
    first = notices(rectiflow)
    assert [(n["measure_id"], n["kind"], n["number"], n["stage"]) for n in first] == [
        (mid, "notice", f"〔2026〕{i}号", "overdue:1") for i, mid in enumerate(ids, start=1)]
    assert set(first[0]) >= {"id", "measure_id", "kind", "number", "stage", "created_at"}
    assert first[0]["kind_label"] == "督办通知书" and first[0]["unit"] == "饮食服务中心"
    # And the escalation messages link to them
    with db.transaction(sessions) as session:
        message = session.scalar(select(OutboxMessage).where(
            OutboxMessage.recipient == "owner@example.edu.cn"))
        assert message is not None
        linked = {i["document"]["id"] for i in message.payload["items"] if "document" in i}
        assert linked == {n["id"] for n in first[:3]}
        shown = render(session, message, "https://rf.example.edu.cn")
    assert "督办文书：督办通知书〔2026〕1号" in shown.text
    assert f"https://rf.example.edu.cn/notices/{first[0]['id']}" in shown.text
    assert f"/notices/{first[0]['id']}" in shown.html
    # When the sweep runs again the same day, nothing new is issued
    again = rectiflow("sweep", "--json", "--now", iso("2026-10-12 15:00"))
    assert again.code == 0 and again.json()["documents"] == 0
    assert notices(rectiflow) == first
    # At three working days overdue the 督办提醒书 follow, numbered on their own from 1
    assert rectiflow("sweep", "--now", iso("2026-10-13 09:00")).code == 0
    second = notices(rectiflow)[4:]
    assert [(n["kind"], n["number"], n["stage"]) for n in second] == [
        ("reminder", f"〔2026〕{i}号", "overdue:3") for i in range(1, 5)]
    # The repeats of the last stage (overdue:8) issue none
    assert rectiflow("sweep", "--now", iso("2026-10-20 09:00")).code == 0
    assert len(notices(rectiflow)) == 8
    # and a campaign filter lists the campaign's own
    assert len(notices(rectiflow, "--campaign", str(overdue["campaign"].id))) == 8


def test_a_sweep_read_in_batches_links_every_message_to_its_document(overdue, sessions,
                                                                     monkeypatch) -> None:
    # Given four measures two working days overdue, swept one measure a batch (as a burst is
    # read): the documents are issued once the batches are written, for all of them at once,
    # looking them up a few at a time (a burst's would not fit in one statement)
    monkeypatch.setattr(notices_service, "CHUNK", 3)
    with db.transaction(sessions, write_lock=True) as session:
        ctx = reminder_context(session, load_policy_file(None), frozenset())
        result = sweep(session, ctx, now=datetime(2026, 10, 12, 9, 0, tzinfo=SHANGHAI), batch=1)
        assert result.measures == 4 and result.documents == 4
        issued = {n.measure_id: (n.id, n.number) for n in session.scalars(
            select(OfficialNotice).order_by(OfficialNotice.id))}
        # numbered in the measures' order, whatever order the batches came in
        assert [issued[mid][1] for mid in overdue["measures"]] == [
            f"〔2026〕{i}号" for i in range(1, 5)]
        # and every escalation item of every message links to its measure's document, as the
        # last of the item's fields (where a one-batch sweep puts it)
        linked = 0
        for message in result.messages:
            for item in message.payload["items"]:
                if item["rule"] == "overdue:1":
                    assert list(item)[-1] == "document"
                    assert (item["document"]["id"], item["document"]["number"]) == \
                        issued[item["measure_id"]]
                    linked += 1
                else:
                    assert "document" not in item
        assert linked >= 4


def test_a_document_is_an_official_word_file(overdue, rectiflow: Run, tmp_path: Path,
                                            tmp_path_factory: pytest.TempPathFactory) -> None:
    # Given a supervising office named for the campaign, and the first stage reached
    campaign_id = str(overdue["campaign"].id)
    assert rectiflow("campaign", "set", campaign_id, "--supervising-office",
                     "校党委巡察整改工作领导小组办公室").code == 0
    assert rectiflow("sweep", "--now", iso("2026-10-12 09:00")).code == 0
    first = notices(rectiflow)[0]
    # When it is exported
    out = tmp_path / "通知书.docx"
    result = rectiflow("notice", "get", str(first["id"]), "--out", str(out))
    assert result.code == 0, result.err
    # Then it is in the form of an official document
    document = Document(str(out))
    assert_official_form(document)
    texts = [p.text for p in document.paragraphs]
    assert texts[:4] == ["督办通知书", "〔2026〕1号", "", "饮食服务中心："]
    body = "\n".join(texts)
    assert "你单位承担的第五轮巡察反馈问题整改措施“修订食堂管理制度0”（台账序号1）" in body
    assert "原定完成时限为2026年10月9日" in body
    assert "截至2026年10月12日，该措施已逾期2个工作日" in body
    # the reply (回执) is due three working days after issue, to the supervising office
    assert "于2026年10月15日前" in body and "报送校党委巡察整改工作领导小组办公室（回执）" in body
    assert "责任领导：Leader；责任人：Owner。" in body
    assert texts[-2:] == ["校党委巡察整改工作领导小组办公室", "2026年10月12日"]
    # the title is 二号 方正小标宋 centred; the body 三号 仿宋 indented two characters
    title, number = document.paragraphs[0], document.paragraphs[1]
    assert title.runs[0].font.size.pt == 22 and title.alignment.name == "CENTER"
    assert number.runs[0].font.size.pt == 16
    facts = document.paragraphs[4]
    assert facts.paragraph_format.first_line_indent.pt == 32
    render_first_page(out, artefacts_dir(tmp_path_factory), "notice-督办通知书")


def test_every_kind_of_document_renders(overdue, rectiflow: Run, tmp_path: Path,
                                        tmp_path_factory: pytest.TempPathFactory,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a policy whose four stages name the four kinds (五书制)
    policy = tmp_path / "policy.toml"
    policy.write_text("\n".join(
        f'[[escalation]]\noverdue = {n}\nto = ["owner", "leader"]\ncolour = "red"\n'
        f'document = "{kind}"\n'
        for n, kind in ((1, "督办通知书"), (2, "reminder"), (3, "督办告诫书"), (4, "问责建议书"))),
        encoding="utf-8")
    monkeypatch.setenv("RECTIFLOW_CONFIG", str(policy))
    # When the sweep reaches each stage
    for day in ("2026-10-10 09:00", "2026-10-12 09:00", "2026-10-13 09:00", "2026-10-14 09:00"):
        assert rectiflow("sweep", "--now", iso(day)).code == 0
    issued = notices(rectiflow)
    kinds = [n["kind"] for n in issued if n["measure_id"] == overdue["measures"][0]]
    assert kinds == ["notice", "reminder", "warning", "accountability"]
    folder = artefacts_dir(tmp_path_factory)
    for n in [n for n in issued if n["measure_id"] == overdue["measures"][0]]:
        out = tmp_path / f"{n['kind']}.docx"
        assert rectiflow("notice", "get", str(n["id"]), "--out", str(out)).code == 0
        document = Document(str(out))
        assert_official_form(document)
        assert document.paragraphs[0].text == n["kind_label"]
        assert document.paragraphs[1].text == n["number"] == "〔2026〕1号"
        render_first_page(out, folder, f"notice-{n['kind_label']}")


def test_documents_can_be_switched_off_per_campaign_and_per_kind(overdue, rectiflow: Run) -> None:
    campaign_id = str(overdue["campaign"].id)
    assert rectiflow("campaign", "set", campaign_id, "--notices", "off").code == 0
    assert rectiflow("sweep", "--now", iso("2026-10-13 09:00")).code == 0
    assert notices(rectiflow) == []
    # per kind, in the policy file: long-term measures without documents
    policies = parse_policy({"kind": {"long_term": {"documents": {"enabled": False}}}})
    assert policies.effective(Kind.LONG_TERM).document_at(1) is None
    assert policies.effective(Kind.DEADLINE).document_at(1) is DocumentKind.NOTICE
    with pytest.raises(PolicyError, match=r"escalation\[0\]\.document.*未知督办文书 '催办单'"):
        parse_policy({"escalation": [{"overdue": 1, "to": ["owner"], "document": "催办单"}]})
    with pytest.raises(PolicyError, match=r"documents\.reply_days"):
        parse_policy({"documents": {"reply_days": 0}})


def test_a_reply_is_recorded_once_by_someone_who_may(overdue, rectiflow: Run) -> None:
    assert rectiflow("sweep", "--now", iso("2026-10-12 09:00")).code == 0
    notice_id = str(notices(rectiflow)[0]["id"])
    # Someone of another unit may not
    refused = rectiflow("notice", "reply", notice_id, "--as", "outsider@example.edu.cn",
                        "--comment", "已整改")
    assert refused.code == 3 and "Outsider 无权对措施" in refused.err and "登记回执" in refused.err
    # An empty reply is bad input
    empty = rectiflow("notice", "reply", notice_id, "--as", "owner@example.edu.cn",
                      "--comment", "  ")
    assert empty.code == 2 and "回执内容不能为空" in empty.err
    assert notices(rectiflow)[0]["reply"] is None
    # The owner replies
    done = rectiflow("notice", "reply", notice_id, "--as", "owner@example.edu.cn",
                     "--comment", "已于10月14日完成制度修订，逾期原因为节假日顺延",
                     "--now", iso("2026-10-14 10:00"))
    assert done.code == 0, done.err
    reply = notices(rectiflow)[0]["reply"]
    assert reply["by"] == "owner@example.edu.cn" and reply["text"].startswith("已于10月14日")
    # and a second reply is refused, the first kept
    again = rectiflow("notice", "reply", notice_id, "--as", "reviewer@example.edu.cn",
                      "--comment", "补充")
    assert again.code == 2 and "已于 2026-10-14 登记回执" in again.err
    assert notices(rectiflow)[0]["reply"] == reply


def test_bad_input_is_refused_and_writes_nothing(overdue, rectiflow: Run, tmp_path: Path) -> None:
    out = tmp_path / "x.docx"
    missing = rectiflow("notice", "get", "999", "--out", str(out))
    assert missing.code == 2 and "找不到督办文书：999" in missing.err
    assert not out.exists()
    unknown_campaign = rectiflow("notice", "list", "--campaign", "999", "--json")
    assert unknown_campaign.code == 2 and "找不到整改任务：999" in unknown_campaign.err
    reply = rectiflow("notice", "reply", "999", "--as", "owner@example.edu.cn", "--comment", "x")
    assert reply.code == 2 and "找不到督办文书：999" in reply.err


def test_numbers_are_never_given_twice_under_concurrency(sessions) -> None:
    # Given eight transactions taking a number of the same kind and year at once
    taken: list[int] = []
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def take() -> None:
        try:
            start.wait()
            with db.transaction(sessions, write_lock=True) as session:
                number = allocate_number(session, DocumentKind.WARNING, 2026)
                time.sleep(0.05)  # hold the row while the others queue
            taken.append(number)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=take) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    # Then each got its own number, and together they are 1 to 8
    assert errors == []
    assert sorted(taken) == list(range(1, 9))
    # and a rolled-back transaction's number is taken again (its document never existed)
    with pytest.raises(RuntimeError), db.transaction(sessions) as session:
        assert allocate_number(session, DocumentKind.WARNING, 2026) == 9
        raise RuntimeError("rolled back")
    with db.transaction(sessions) as session:
        assert allocate_number(session, DocumentKind.WARNING, 2026) == 9
        assert allocate_number(session, DocumentKind.WARNING, 2027) == 1
        assert session.scalar(select(OfficialNotice.id)) is None
