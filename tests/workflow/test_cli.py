"""The command-line contract of design.md: commands, JSON shapes, exit codes, the pinned clock,
and evidence uploads. Everything runs in-process through ``main()`` except one test that starts
the real ``rectiflow`` console script.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, inspect, select, text
from sqlalchemy.orm import Session, sessionmaker

from workflow import db
from workflow.models import Evidence, HistoryEntry, Measure, Person, ProgressReport
from workflow.passwords import verify_password

NOW = "2026-12-07T09:30:00+08:00"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
MEASURE_KEYS = {"id", "campaign_id", "area", "problem", "title", "kind", "state", "deadline",
                "owner", "leader", "unit", "overdue", "version"}
PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


def table_counts(sessions: sessionmaker[Session]) -> dict[str, int]:
    """Row count of every table in the database."""
    with db.transaction(sessions) as session:
        names = inspect(session.connection()).get_table_names()
        return {name: session.execute(text(f'SELECT count(*) FROM "{name}"')).scalar_one()
                for name in names}


def stored_files(root: Path) -> list[Path]:
    """Evidence files (the folders' ``.lock`` files, like uploads in progress, are not)."""
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith(".")) \
        if root.exists() else []


def measure_row(sessions: sessionmaker[Session], measure_id: int) -> tuple[str, int, int]:
    """(state, version, history rows) of one measure."""
    with db.transaction(sessions) as session:
        measure = session.get(Measure, measure_id)
        assert measure is not None
        rows = session.scalar(select(func.count(HistoryEntry.id))
                              .where(HistoryEntry.measure_id == measure_id))
        return str(measure.state), measure.version, rows or 0


# ------------------------------------------------------------------ user add / import / delegate


def test_user_add_stores_the_person_and_their_unit(rectiflow, sessions):
    # When an owner is added with a unit nobody has created yet
    result = rectiflow("user", "add", "--name", "张伟", "--email", "Zhang.Wei@Example.edu.cn",
                       "--wecom-id", "zhangw", "--unit", "后勤党总支办公室", "--role", "owner",
                       "--json")
    # Then the person is stored, the email lower-cased, and the unit created
    assert result.code == 0, result.err
    shown = result.json()
    assert isinstance(shown["id"], int)
    assert (shown["name"], shown["email"], shown["roles"], shown["unit"], shown["wecom_id"]) == (
        "张伟", "zhang.wei@example.edu.cn", ["owner"], "后勤党总支办公室", "zhangw")
    with db.transaction(sessions) as session:
        person = session.scalars(select(Person)).one()
        assert person.unit is not None and person.unit.name == "后勤党总支办公室"
        assert person.password_hash is None


@pytest.mark.parametrize(("args", "reason"), [
    (["--email", "WANG.SHUJI@example.edu.cn", "--role", "leader"], "邮箱 wang.shuji@example.edu.cn 已被使用"),
    (["--email", "li.chuzhang@example.edu.cn", "--role", "boss"], "未知角色「boss」"),
    (["--email", "li.chuzhang@example.edu.cn", "--role", "leader", "--role", "书记"], "未知角色「书记」"),
    (["--email", "li.chuzhang", "--role", "leader"], "邮箱格式不正确"),
    (["--email", "li chuzhang@example.edu.cn", "--role", "leader"], "邮箱格式不正确"),
], ids=["duplicate email", "bad role", "one bad role of two", "email without domain",
        "email with a space"])
def test_user_add_refuses_bad_input_and_writes_nothing(args, reason, rectiflow, sessions):
    # Given 王书记 is already known
    assert rectiflow("user", "add", "--name", "王书记", "--email", "wang.shuji@example.edu.cn",
                     "--role", "leader").code == 0
    before = table_counts(sessions)
    # When someone is added with a bad email or role, in a unit that does not exist yet
    result = rectiflow("user", "add", "--name", "李处长", "--unit", "后勤处", *args)
    # Then it is refused with exit code 2 and the reason, and nothing (not even the unit) is written
    assert result.code == 2, result.err
    assert reason in result.err
    assert table_counts(sessions) == before


def test_user_add_without_a_role_is_a_usage_error(rectiflow, sessions):
    result = rectiflow("user", "add", "--name", "李处长", "--email", "li.chuzhang@example.edu.cn")
    assert result.code == 2
    assert "--role" in result.err
    assert table_counts(sessions)["person"] == 0


def test_password_from_stdin_is_stored_as_an_argon2_hash(rectiflow, sessions):
    # When an admin is added with a password piped on stdin
    result = rectiflow("user", "add", "--name", "孙管理", "--email", "admin@example.edu.cn",
                       "--role", "admin", "--password-stdin", stdin="整改办2026!\n")
    # Then only an argon2 hash of it is stored, and it verifies
    assert result.code == 0, result.err
    assert "整改办2026!" not in result.out + result.err
    with db.transaction(sessions) as session:
        stored = session.scalars(select(Person.password_hash)).one()
    assert stored is not None and stored.startswith("$argon2")
    assert verify_password(stored, "整改办2026!")
    assert not verify_password(stored, "整改办2026")


def test_too_short_password_is_refused(rectiflow, sessions):
    # When the piped password is too short
    result = rectiflow("user", "add", "--name", "孙管理", "--email", "admin@example.edu.cn",
                       "--role", "admin", "--password-stdin", stdin="abc123\n")
    # Then nothing is added and the rule is named
    assert result.code == 2
    assert "密码至少需要 8 个字符" in result.err
    assert table_counts(sessions)["person"] == 0


def test_user_import_adds_everyone_from_the_example(rectiflow):
    # When the example people list is imported
    result = rectiflow("user", "import", str(EXAMPLES / "people.csv"), "--json")
    # Then all seven are there with their roles and units
    assert result.code == 0, result.err
    assert result.json() == {"people": 7}
    people = {p["email"]: p for p in rectiflow("user", "list", "--json").json()}
    assert len(people) == 7
    assert people["zhao.zhuren@example.edu.cn"]["roles"] == ["reviewer"]
    assert people["liu.fang@example.edu.cn"]["unit"] == "饮食服务中心"
    assert people["admin@example.edu.cn"]["wecom_id"] is None


def test_user_import_reports_every_bad_row_and_writes_nothing(rectiflow, sessions, tmp_path):
    # Given a people list with three bad rows among good ones
    path = tmp_path / "people.csv"
    path.write_text(
        "姓名,邮箱,企业微信,手机,部门,角色\n"
        "王书记,wang.shuji@example.edu.cn,wangsj,,后勤党总支,leader\n"
        "李处长,li.chuzhang-at-example.edu.cn,,,后勤处,leader\n"
        "赵主任,zhao.zhuren@example.edu.cn,,,整改办,检查员\n"
        "王书记,WANG.SHUJI@example.edu.cn,,,后勤党总支,责任领导\n"
        "刘芳,liu.fang@example.edu.cn,,,饮食服务中心,责任人\n",
        encoding="utf-8")
    # When it is imported
    result = rectiflow("user", "import", str(path))
    # Then each bad row is named with its column, and nobody is added
    assert result.code == 2
    assert "有 3 处错误" in result.err
    assert re.search(r"第 3 行「邮箱」：邮箱格式不正确", result.err), result.err
    assert re.search(r"第 4 行「角色」：未知角色「检查员」", result.err), result.err
    assert re.search(r"第 5 行「邮箱」：邮箱 wang.shuji@example.edu.cn 已被使用", result.err), result.err
    assert table_counts(sessions)["person"] == 0
    assert table_counts(sessions)["unit"] == 0


def test_user_import_reads_a_gbk_file_as_excel_saves_it(rectiflow, sessions, tmp_path):
    path = tmp_path / "people.csv"
    path.write_bytes("姓名,邮箱,角色\n张伟,zhang.wei@example.edu.cn,责任人\n".encode("gbk"))
    assert rectiflow("user", "import", str(path)).code == 0
    assert table_counts(sessions)["person"] == 1


@pytest.mark.parametrize(("content", "reason"), [
    ("姓名,邮箱\n张伟,zhang.wei@example.edu.cn\n".encode(), "表头缺少列：角色"),
    ("姓名,邮箱,角色\n张伟,".encode() + b"\xff\xff\x80\n", "UTF-8 或 GBK"),
], ids=["missing column", "neither UTF-8 nor GBK"])
def test_user_import_refuses_bad_files(content, reason, rectiflow, sessions, tmp_path):
    path = tmp_path / "people.csv"
    path.write_bytes(content)
    result = rectiflow("user", "import", str(path))
    assert result.code == 2
    assert reason in result.err
    assert table_counts(sessions)["person"] == 0


def test_delegate_acts_for_a_person_away(rectiflow, cast):
    # Given the owner is away and names someone from another unit as delegate
    result = rectiflow("--now", NOW, "user", "delegate", "owner@example.edu.cn",
                       "--to", "outsider@example.edu.cn", "--until", "2026-12-31")
    assert result.code == 0, result.err
    owner = next(p for p in rectiflow("user", "list", "--json").json()
                 if p["email"] == "owner@example.edu.cn")
    assert (owner["delegate"], owner["delegate_until"]) == ("outsider@example.edu.cn", "2026-12-31")
    # When the delegate starts the owner's measure
    started = rectiflow("measure", "do", str(cast.measure.id), "start",
                        "--as", "outsider@example.edu.cn", "--now", NOW)
    # Then it is done on the owner's behalf, and history names both
    assert started.code == 0, started.err
    last = rectiflow("measure", "show", str(cast.measure.id), "--json").json()["history"][-1]
    assert (last["action"], last["actor"], last["on_behalf_of"]) == (
        "start", "outsider@example.edu.cn", "owner@example.edu.cn")


def test_after_the_delegation_ends_the_delegate_may_not_act(rectiflow, cast):
    assert rectiflow("--now", NOW, "user", "delegate", "owner@example.edu.cn",
                     "--to", "outsider@example.edu.cn", "--until", "2026-12-31").code == 0
    result = rectiflow("measure", "do", str(cast.measure.id), "start",
                       "--as", "outsider@example.edu.cn", "--now", "2027-01-04T09:00:00+08:00")
    assert result.code == 3


@pytest.mark.parametrize(("args", "reason"), [
    (["--until", "2026-12-31"], "请用 --to 指定代理人"),
    (["--to", "owner@example.edu.cn", "--until", "2026-12-31"], "不能把自己设为代理人"),
    (["--to", "outsider@example.edu.cn"], "须给出截止日期"),
    (["--to", "outsider@example.edu.cn", "--until", "2026-12-01"], "已过"),
    (["--to", "outsider@example.edu.cn", "--until", "2026-13-01"], "日期「2026-13-01」无效"),
    (["--to", "nobody@example.edu.cn", "--until", "2026-12-31"], "找不到人员"),
], ids=["no delegate", "self", "no end date", "end date past", "bad date", "unknown delegate"])
def test_bad_delegations_are_refused(args, reason, rectiflow, cast):
    result = rectiflow("--now", NOW, "user", "delegate", "owner@example.edu.cn", *args)
    assert result.code == 2, result.err
    assert reason in result.err
    owner = next(p for p in rectiflow("user", "list", "--json").json()
                 if p["email"] == "owner@example.edu.cn")
    assert owner["delegate"] is None


def test_delegation_can_be_cleared(rectiflow, cast):
    rectiflow("--now", NOW, "user", "delegate", "owner@example.edu.cn",
              "--to", "outsider@example.edu.cn", "--until", "2026-12-31")
    assert rectiflow("user", "delegate", "owner@example.edu.cn", "--clear").code == 0
    owner = next(p for p in rectiflow("user", "list", "--json").json()
                 if p["email"] == "owner@example.edu.cn")
    assert (owner["delegate"], owner["delegate_until"]) == (None, None)


# ------------------------------------------------------------------ campaigns


def test_campaign_add_and_list(rectiflow, cast):
    # When a second campaign is added with its first responsible and feedback date
    result = rectiflow("campaign", "add", "2026年度食品安全专项治理",
                       "--first-responsible", "Secretary", "--feedback-date", "2026-11-20",
                       "--json")
    # Then it is listed next to the first, with its counts
    assert result.code == 0, result.err
    added = result.json()
    assert isinstance(added["id"], int)
    assert (added["title"], added["first_responsible"], added["feedback_date"]) == (
        "2026年度食品安全专项治理", "secretary@example.edu.cn", "2026-11-20")
    listed = rectiflow("campaign", "list", "--json").json()
    assert [c["title"] for c in listed] == ["第五轮巡察反馈问题整改", "2026年度食品安全专项治理"]
    assert (listed[0]["areas"], listed[0]["problems"], listed[0]["measures"]) == (1, 1, 1)
    assert (listed[1]["areas"], listed[1]["problems"], listed[1]["measures"]) == (0, 0, 0)


@pytest.mark.parametrize(("args", "reason"), [
    (["第五轮巡察反馈问题整改"], "已存在"),
    (["  "], "名称不能为空"),
    (["第六轮巡察", "--feedback-date", "2026-02-30"], "日期「2026-02-30」无效"),
    (["第六轮巡察", "--first-responsible", "周校长"], "找不到人员"),
], ids=["duplicate", "blank title", "bad date", "unknown person"])
def test_campaign_add_refuses_bad_input(args, reason, rectiflow, cast, sessions):
    before = table_counts(sessions)
    result = rectiflow("campaign", "add", *args)
    assert result.code == 2, result.err
    assert reason in result.err
    assert table_counts(sessions) == before


# ------------------------------------------------------------------ measure list


@pytest.fixture
def four_measures(ledger, cast) -> list[int]:
    """Besides the cast's measure (deadline 2026-12-31): one due 2026-12-01, one long-term
    without a deadline, one immediate due 2026-12-04."""
    added = ledger.measures(cast.campaign, [
        {"seq": "2", "leader": cast.leader, "owner": cast.owner, "unit": "饮食服务中心",
         "area": "落实全面从严治党责任有差距", "problem": "食堂原材料采购监管不严",
         "title": "开展供应商资质专项清查", "deadline": date(2026, 12, 1)},
        {"seq": "3", "leader": cast.leader, "owner": cast.outsider, "unit": "物业管理科",
         "area": "落实全面从严治党责任有差距", "problem": "物业服务合同履约考核流于形式",
         "title": "建立物业服务质量月度考核机制", "deadline": None, "kind": "long_term"},
        {"seq": "4", "leader": cast.leader, "owner": cast.owner, "unit": "饮食服务中心",
         "title": "立即清退无证供应商", "deadline": date(2026, 12, 4), "kind": "immediate"},
    ])
    return [cast.measure.id] + [m.id for m in added if m.id != cast.measure.id]


def test_measure_list_json_has_the_contract_keys(rectiflow, cast, four_measures):
    result = rectiflow("measure", "list", "--json", "--now", NOW)
    assert result.code == 0, result.err
    listed = result.json()
    assert [m["id"] for m in listed] == four_measures
    for shown in listed:
        assert MEASURE_KEYS <= shown.keys()
        assert all(isinstance(shown[k], int) for k in ("id", "campaign_id", "version"))
        assert shown["kind"] in {"immediate", "deadline", "long_term"}
        assert shown["deadline"] is None or re.fullmatch(r"\d{4}-\d{2}-\d{2}", shown["deadline"])
        assert isinstance(shown["overdue"], bool)
    first = listed[0]
    assert first == first | {
        "campaign_id": cast.campaign.id, "area": "学习传达有差距", "problem": "组织学习还不到位",
        "title": "修订食堂原材料采购管理办法", "kind": "deadline", "state": "assigned",
        "deadline": "2026-12-31", "owner": "owner@example.edu.cn",
        "leader": "leader@example.edu.cn", "unit": "饮食服务中心", "overdue": False,
        "version": 1}
    assert listed[2]["deadline"] is None and listed[2]["kind"] == "long_term"


def test_measure_list_filters_by_state(rectiflow, cast, four_measures):
    # Given one measure has been started
    started = four_measures[1]
    assert rectiflow("measure", "do", str(started), "start", "--as", "owner@example.edu.cn",
                     "--now", NOW).code == 0
    # When measures are listed by state
    in_progress = rectiflow("measure", "list", "--state", "in_progress", "--json").json()
    assigned = rectiflow("measure", "list", "--state", "assigned", "--json").json()
    # Then each list holds only its state
    assert [m["id"] for m in in_progress] == [started]
    assert [m["id"] for m in assigned] == [i for i in four_measures if i != started]
    assert rectiflow("measure", "list", "--state", "closed", "--json").json() == []


def test_measure_list_refuses_an_unknown_state(rectiflow, cast):
    result = rectiflow("measure", "list", "--state", "done", "--json")
    assert result.code == 2
    assert "done" in result.err


def test_measure_list_filters_by_campaign(rectiflow, cast, ledger):
    other = ledger.campaign("2026年度食品安全专项治理")
    [added] = ledger.measures(other, [{"seq": "1", "leader": cast.leader, "owner": cast.owner}])
    listed = rectiflow("measure", "list", "--campaign", str(other.id), "--json").json()
    assert [m["id"] for m in listed] == [added.id]


@pytest.mark.parametrize(("moment", "expected"), [
    ("2026-12-01T18:00:00+08:00", []),                 # the due day itself is not overdue
    ("2026-12-02T08:00:00+08:00", [1]),                # Beijing's 12-02, UTC's 12-02 00:00
    ("2026-12-01T17:00:00+00:00", [1]),                # UTC 12-01 is already 12-02 in Beijing
    (NOW, [1, 3]),
    ("2027-01-04T09:00:00+08:00", [0, 1, 3]),
], ids=["on the due day", "next morning", "UTC evening", "a week on", "next year"])
def test_overdue_follows_the_pinned_clock(moment, expected, rectiflow, cast, four_measures):
    # When overdue measures are listed at a pinned time
    result = rectiflow("measure", "list", "--overdue", "--json", "--now", moment)
    # Then exactly those past their deadline (in Beijing) and still open are listed
    assert result.code == 0, result.err
    assert [m["id"] for m in result.json()] == [four_measures[i] for i in expected]
    assert all(m["overdue"] for m in result.json())
    flags = {m["id"]: m["overdue"] for m in
             rectiflow("measure", "list", "--json", "--now", moment).json()}
    assert [i for i, m in enumerate(four_measures) if flags[m]] == expected


def test_submitted_measures_are_not_overdue(rectiflow, cast, four_measures):
    # Given the measure due 2026-12-01 was submitted late
    late = str(four_measures[1])
    for action, extra in (("start", []), ("submit", ["--comment", "已完成供应商资质清查"])):
        assert rectiflow("measure", "do", late, action, "--as", "owner@example.edu.cn",
                         "--now", NOW, *extra).code == 0
    # Then it waits for the reviewer, and the owner is no longer overdue
    listed = rectiflow("measure", "list", "--overdue", "--json", "--now", NOW).json()
    assert [m["id"] for m in listed] == [four_measures[3]]


# ------------------------------------------------------------------ measure show


def test_measure_show_has_history_oldest_first_and_progress(rectiflow, cast, tmp_path):
    # Given the owner started, then submitted with a PDF, on two later days
    report = tmp_path / "采购管理办法（修订稿）.pdf"
    report.write_bytes(PDF)
    mid = str(cast.measure.id)
    assert rectiflow("measure", "do", mid, "start", "--as", "owner@example.edu.cn",
                     "--now", "2026-12-08T09:00:00+08:00").code == 0
    submitted = rectiflow("measure", "do", mid, "submit", "--as", "owner@example.edu.cn",
                          "--comment", "已修订并印发采购管理办法", "--evidence", str(report),
                          "--now", "2026-12-09T10:00:00+08:00")
    assert submitted.code == 0, submitted.err
    # When the measure is shown as JSON
    shown = rectiflow("measure", "show", mid, "--json").json()
    # Then it has the list keys, state and version
    assert MEASURE_KEYS <= shown.keys()
    assert (shown["state"], shown["version"]) == ("submitted", 3)
    # And its history, oldest first
    history = shown["history"]
    for entry in history:
        assert {"action", "from", "to", "actor", "comment", "at"} <= entry.keys()
    assert [(h["action"], h["from"], h["to"], h["actor"]) for h in history] == [
        ("create", None, "assigned", None),
        ("start", "assigned", "in_progress", "owner@example.edu.cn"),
        ("submit", "in_progress", "submitted", "owner@example.edu.cn"),
    ]
    assert history[2]["comment"] == "已修订并印发采购管理办法"
    moments = [datetime.fromisoformat(h["at"]) for h in history]
    assert moments == sorted(moments)
    assert moments[2] == datetime.fromisoformat("2026-12-09T10:00:00+08:00")
    # And its progress, with the evidence file
    [progress] = shown["progress"]
    assert {"text", "author", "at", "evidence"} <= progress.keys()
    assert (progress["text"], progress["author"]) == ("已修订并印发采购管理办法",
                                                      "owner@example.edu.cn")
    assert datetime.fromisoformat(progress["at"]) == moments[2]
    [evidence] = progress["evidence"]
    assert evidence["filename"] == report.name
    assert evidence["sha256"] == hashlib.sha256(PDF).hexdigest()
    assert evidence["size"] == len(PDF)


def test_measure_show_of_an_unknown_measure(rectiflow, cast):
    result = rectiflow("measure", "show", "9999", "--json")
    assert result.code == 2
    assert "找不到措施：9999" in result.err
    assert result.out == ""


def test_measure_show_prints_a_readable_page(rectiflow, cast):
    result = rectiflow("measure", "show", str(cast.measure.id))
    assert result.code == 0, result.err
    assert "修订食堂原材料采购管理办法" in result.out
    assert "已交办" in result.out and "系统导入" in result.out
    # the creation is labelled as the lifecycle table labels it, like every other history row
    assert "  交办  已交办  系统导入" in result.out


# ------------------------------------------------------------------ measure do: exit codes

#: (case, arguments after ``measure do ID``, exit code, words on stderr). Run on a fresh measure.
DO_CASES: list[tuple[str, list[str], int, str]] = [
    ("owner starts", ["start", "--as", "owner@example.edu.cn"], 0, ""),
    ("owner starts by name", ["start", "--as", "Owner"], 0, ""),
    ("Chinese action name", ["开始整改", "--as", "owner@example.edu.cn"], 0, ""),
    ("unit colleague starts", ["start", "--as", "colleague@example.edu.cn"], 0, ""),
    ("right version", ["start", "--as", "owner@example.edu.cn", "--version", "1"], 0, ""),
    ("leader extends", ["extend", "--as", "leader@example.edu.cn", "--deadline", "2027-01-31",
                        "--comment", "招标延后"], 0, ""),
    ("close before verified", ["close", "--as", "leader@example.edu.cn"], 2,
     "该操作只能在「待销号」状态下进行"),
    ("submit before started", ["submit", "--as", "owner@example.edu.cn", "--comment", "已完成"], 2,
     "不能执行「提交」"),
    ("unknown action", ["approve", "--as", "leader@example.edu.cn"], 2, "未知操作「approve」"),
    ("unknown person", ["start", "--as", "nobody@example.edu.cn"], 2, "找不到人员"),
    ("extend without a reason", ["extend", "--as", "leader@example.edu.cn",
                                 "--deadline", "2027-01-31"], 2, "需要提供：说明/理由"),
    ("extend to an impossible date", ["extend", "--as", "leader@example.edu.cn",
                                      "--deadline", "2027-02-30", "--comment", "招标延后"], 2,
     "日期「2027-02-30」无效"),
    ("extend into the past", ["extend", "--as", "leader@example.edu.cn",
                              "--deadline", "2026-12-01", "--comment", "招标延后"], 2, "早于今天"),
    ("outsider starts", ["start", "--as", "outsider@example.edu.cn"], 3, "无权"),
    ("viewer starts", ["start", "--as", "viewer@example.edu.cn"], 3, "无权"),
    ("owner closes", ["close", "--as", "owner@example.edu.cn"], 3, "只有"),
    ("stale version", ["start", "--as", "owner@example.edu.cn", "--version", "7"], 4,
     "已被他人修改"),
]


@pytest.mark.parametrize(("case", "args", "code", "words"), DO_CASES, ids=[c[0] for c in DO_CASES])
def test_measure_do_exit_codes(case, args, code, words, rectiflow, cast, sessions):
    # Given a measure just assigned
    mid = cast.measure.id
    state, version, rows = measure_row(sessions, mid)
    before = table_counts(sessions)
    # When someone acts on it
    result = rectiflow("measure", "do", str(mid), *args, "--now", NOW)
    # Then the exit code says how it went
    assert result.code == code, (result.out, result.err)
    if code == 0:
        assert measure_row(sessions, mid)[1:] == (version + 1, rows + 1)
        return
    # And a refusal says why on stderr and changes nothing
    assert words in result.err
    assert result.out == ""
    assert measure_row(sessions, mid) == (state, version, rows)
    assert table_counts(sessions) == before


def test_measure_do_json_prints_the_measure(rectiflow, cast):
    result = rectiflow("measure", "do", str(cast.measure.id), "start", "--as", "Owner",
                       "--json", "--now", NOW)
    assert result.code == 0, result.err
    shown = result.json()
    assert MEASURE_KEYS <= shown.keys()
    assert (shown["state"], shown["version"]) == ("in_progress", 2)


def test_the_second_of_two_actions_on_the_same_version_conflicts(rectiflow, cast, sessions):
    # Given two people read the measure at version 1
    mid = str(cast.measure.id)
    # When both act, each expecting version 1
    first = rectiflow("measure", "do", mid, "start", "--as", "owner@example.edu.cn",
                      "--version", "1", "--now", NOW)
    second = rectiflow("measure", "do", mid, "extend", "--as", "leader@example.edu.cn",
                       "--deadline", "2027-01-31", "--comment", "招标延后", "--version", "1",
                       "--now", NOW)
    # Then the first wins and the second gets a conflict, changing nothing
    assert (first.code, second.code) == (0, 4)
    assert measure_row(sessions, cast.measure.id) == ("in_progress", 2, 2)


# ------------------------------------------------------------------ the pinned clock


def test_now_option_is_announced_on_stderr(rectiflow, cast):
    result = rectiflow("measure", "list", "--json", "--now", "2026-12-07T01:30:00+00:00")
    assert result.code == 0
    assert "当前时间已由 --now 固定为 2026-12-07 09:30（北京时间）" in result.err
    assert result.json()  # stdout stays one clean JSON document


def test_global_now_option_is_announced_too(rectiflow, cast):
    result = rectiflow("--now", NOW, "measure", "list", "--json")
    assert result.code == 0
    assert "当前时间已由 --now 固定为 2026-12-07 09:30" in result.err


def test_rectiflow_now_is_announced_and_used(rectiflow, cast, monkeypatch):
    # Given the clock is pinned a month after the measure's deadline
    monkeypatch.setenv("RECTIFLOW_NOW", "2027-01-31T10:00:00+08:00")
    # When measures are listed
    result = rectiflow("measure", "list", "--json")
    # Then the program says so, and judges overdue by the pinned time
    assert result.code == 0, result.err
    assert "当前时间已由 RECTIFLOW_NOW 固定为 2027-01-31 10:00（北京时间）" in result.err
    assert [m["overdue"] for m in result.json()] == [True]


def test_now_option_beats_rectiflow_now(rectiflow, cast, monkeypatch):
    monkeypatch.setenv("RECTIFLOW_NOW", "2027-01-31T10:00:00+08:00")
    result = rectiflow("measure", "list", "--json", "--now", NOW)
    assert "由 --now 固定" in result.err
    assert [m["overdue"] for m in result.json()] == [False]


def test_an_unpinned_clock_is_not_announced(rectiflow, cast):
    result = rectiflow("measure", "list", "--json")
    assert result.code == 0
    assert "固定" not in result.err


@pytest.mark.parametrize(("value", "reason"), [
    ("tomorrow", "应为带时区的 ISO 8601 时间"),
    ("2026-12-07T09:30:00", "缺少时区偏移"),
    ("2026-02-30T09:30:00+08:00", "应为带时区的 ISO 8601 时间"),
])
def test_a_bad_rectiflow_now_is_refused(value, reason, rectiflow, cast, monkeypatch):
    monkeypatch.setenv("RECTIFLOW_NOW", value)
    result = rectiflow("measure", "list", "--json")
    assert result.code == 2
    assert "RECTIFLOW_NOW" in result.err and reason in result.err
    assert "Traceback" not in result.err
    assert result.out == ""


@pytest.mark.parametrize("value", ["tomorrow", "2026-12-07T09:30:00"])
def test_a_bad_now_option_is_refused(value, rectiflow, cast, sessions):
    before = table_counts(sessions)
    result = rectiflow("measure", "do", str(cast.measure.id), "start",
                       "--as", "owner@example.edu.cn", "--now", value)
    assert result.code == 2
    assert "--now" in result.err
    assert table_counts(sessions) == before


# ------------------------------------------------------------------ evidence


@pytest.fixture
def started(rectiflow, cast) -> str:
    """The cast's measure, started by its owner."""
    assert rectiflow("measure", "do", str(cast.measure.id), "start",
                     "--as", "owner@example.edu.cn", "--now", NOW).code == 0
    return str(cast.measure.id)


@pytest.fixture
def evidence_dir(cli_env: dict[str, str]) -> Path:
    return Path(cli_env["RECTIFLOW_EVIDENCE_DIR"])


def submit(rectiflow, measure_id: str, *files: Path) -> Any:  # type: ignore[no-untyped-def]
    evidence = [a for f in files for a in ("--evidence", str(f))]
    return rectiflow("measure", "do", measure_id, "submit", "--as", "owner@example.edu.cn",
                     "--comment", "已修订并印发采购管理办法", *evidence, "--now", NOW)


def test_evidence_is_stored_by_sha256(rectiflow, started, evidence_dir, tmp_path, sessions):
    # Given a PDF and a photo
    pdf, png = tmp_path / "整改报告.PDF", tmp_path / "现场照片.png"
    pdf.write_bytes(PDF)
    png.write_bytes(PNG)
    # When they are submitted as evidence
    result = submit(rectiflow, started, pdf, png)
    # Then each is stored once under its SHA-256, with the original name kept in the database
    assert result.code == 0, result.err
    expected = []
    for content, ext in ((PDF, ".pdf"), (PNG, ".png")):
        sha = hashlib.sha256(content).hexdigest()
        expected.append(evidence_dir / sha[:2] / f"{sha}{ext}")
        assert (evidence_dir / sha[:2] / f"{sha}{ext}").read_bytes() == content
    assert stored_files(evidence_dir) == sorted(expected)
    with db.transaction(sessions) as session:
        rows = session.execute(select(Evidence.filename, Evidence.content_type, Evidence.size)
                               .order_by(Evidence.id)).all()
    assert [tuple(r) for r in rows] == [("整改报告.PDF", "application/pdf", len(PDF)),
                                        ("现场照片.png", "image/png", len(PNG))]


def test_the_same_file_twice_is_stored_once(rectiflow, started, evidence_dir, tmp_path):
    first, second = tmp_path / "报告.pdf", tmp_path / "报告（副本）.pdf"
    first.write_bytes(PDF)
    second.write_bytes(PDF)
    assert submit(rectiflow, started, first).code == 0
    assert rectiflow("measure", "progress", started, "--as", "owner@example.edu.cn",
                     "--text", "补充材料", "--evidence", str(second), "--now", NOW).code == 0
    assert len(stored_files(evidence_dir)) == 1
    shown = rectiflow("measure", "show", started, "--json").json()
    assert [p["evidence"][0]["filename"] for p in shown["progress"]] == ["报告.pdf", "报告（副本）.pdf"]


#: (case, file name, content, extra environment, words on stderr).
BAD_EVIDENCE: list[tuple[str, str, bytes, dict[str, str], str]] = [
    ("wrong extension", "通知.exe", b"MZ\x90\x00\x03", {}, "不支持的文件类型「.exe」"),
    ("no extension", "整改报告", PDF, {}, "不支持的文件类型「无扩展名」"),
    ("content not a PNG", "现场照片.png", PDF, {}, "文件内容与扩展名不符"),
    ("content not a PDF", "整改报告.pdf", b"<html>not a pdf</html>", {}, "文件内容与扩展名不符"),
    ("too large", "整改报告.pdf", PDF + b"0" * 2048, {"RECTIFLOW_EVIDENCE_MAX_BYTES": "1024"},
     "超过大小上限"),
    ("empty", "整改报告.pdf", b"", {}, "文件为空"),
]


@pytest.mark.parametrize(("case", "name", "content", "env", "words"), BAD_EVIDENCE,
                         ids=[c[0] for c in BAD_EVIDENCE])
def test_bad_evidence_is_refused_and_leaves_nothing(case, name, content, env, words, rectiflow,
                                                    started, evidence_dir, tmp_path, sessions,
                                                    monkeypatch):
    # Given a bad file
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    bad = tmp_path / name
    bad.write_bytes(content)
    before = table_counts(sessions)
    # When it is submitted as evidence
    result = submit(rectiflow, started, bad)
    # Then the submission is refused with the reason, the measure is untouched, and no file stays
    assert result.code == 2, (result.out, result.err)
    assert f"佐证材料「{name}」被拒绝" in result.err and words in result.err
    assert measure_row(sessions, int(started))[:2] == ("in_progress", 2)
    assert table_counts(sessions) == before
    assert stored_files(evidence_dir) == []


def test_size_limit_is_stated_readably(rectiflow, started, tmp_path, monkeypatch):
    monkeypatch.setenv("RECTIFLOW_EVIDENCE_MAX_BYTES", str(2 * 1024 * 1024))
    big = tmp_path / "整改报告.pdf"
    big.write_bytes(PDF + b"0" * (2 * 1024 * 1024))
    result = submit(rectiflow, started, big)
    assert result.code == 2
    assert "超过大小上限 2 MB" in result.err


def test_a_good_file_next_to_a_bad_one_is_not_kept(rectiflow, started, evidence_dir, tmp_path,
                                                   sessions):
    # Given a good PDF and a file of a refused type
    good, bad = tmp_path / "整改报告.pdf", tmp_path / "通知.exe"
    good.write_bytes(PDF)
    bad.write_bytes(b"MZ\x90\x00")
    before = table_counts(sessions)
    # When both are submitted
    result = submit(rectiflow, started, good, bad)
    # Then the whole submission is refused and the good file was not left behind either
    assert result.code == 2
    assert table_counts(sessions) == before
    assert stored_files(evidence_dir) == []


def test_evidence_of_a_refused_action_is_not_kept(rectiflow, cast, evidence_dir, tmp_path,
                                                  sessions):
    # Given a measure not yet started
    good = tmp_path / "整改报告.pdf"
    good.write_bytes(PDF)
    # When its owner submits with a good file, too early
    result = submit(rectiflow, str(cast.measure.id), good)
    # Then the action is refused and the file is not kept either
    assert result.code == 2
    assert stored_files(evidence_dir) == []


def test_evidence_already_stored_survives_a_refused_upload(rectiflow, started, evidence_dir,
                                                           tmp_path, cast):
    # Given a file already kept as evidence of an earlier report
    good = tmp_path / "整改报告.pdf"
    good.write_bytes(PDF)
    assert rectiflow("measure", "progress", started, "--as", "owner@example.edu.cn",
                     "--text", "已起草修订稿", "--evidence", str(good), "--now", NOW).code == 0
    kept = stored_files(evidence_dir)
    # When someone without permission uploads the same file
    result = rectiflow("measure", "progress", started, "--as", "outsider@example.edu.cn",
                       "--text", "代为报送", "--evidence", str(good), "--now", NOW)
    # Then they are refused and the earlier evidence is still there
    assert result.code == 3
    assert stored_files(evidence_dir) == kept


def test_missing_evidence_file(rectiflow, started, tmp_path, sessions):
    before = table_counts(sessions)
    result = submit(rectiflow, started, tmp_path / "不存在.pdf")
    assert result.code == 2
    assert "无法读取佐证材料" in result.err
    assert table_counts(sessions) == before


def test_evidence_only_goes_with_submit(rectiflow, started, tmp_path, evidence_dir):
    good = tmp_path / "整改报告.pdf"
    good.write_bytes(PDF)
    result = rectiflow("measure", "do", started, "extend", "--as", "leader@example.edu.cn",
                       "--deadline", "2027-01-31", "--comment", "招标延后",
                       "--evidence", str(good), "--now", NOW)
    assert result.code == 2
    assert "只有「提交」可以附佐证材料" in result.err
    assert stored_files(evidence_dir) == []


# ------------------------------------------------------------------ measure progress


def test_progress_is_recorded_without_a_state_change(rectiflow, started, tmp_path, sessions):
    # Given a photo of the new signage
    photo = tmp_path / "公示栏照片.png"
    photo.write_bytes(PNG)
    # When the owner reports progress with it
    result = rectiflow("measure", "progress", started, "--as", "Owner",
                       "--text", "已完成修订稿起草，正在征求意见", "--evidence", str(photo),
                       "--now", NOW)
    # Then the report is listed with its evidence, and the state and version stay
    assert result.code == 0, result.err
    shown = rectiflow("measure", "show", started, "--json").json()
    assert (shown["state"], shown["version"]) == ("in_progress", 2)
    [progress] = shown["progress"]
    assert (progress["text"], progress["author"]) == ("已完成修订稿起草，正在征求意见",
                                                      "owner@example.edu.cn")
    assert [e["filename"] for e in progress["evidence"]] == ["公示栏照片.png"]
    assert datetime.fromisoformat(progress["at"]) == datetime.fromisoformat(NOW)


def test_progress_keeps_the_history_chain_whole(rectiflow, started):
    # Given the owner reports progress between two actions
    assert rectiflow("measure", "progress", started, "--as", "owner@example.edu.cn",
                     "--text", "已完成修订稿起草", "--now", NOW).code == 0
    assert rectiflow("measure", "do", started, "submit", "--as", "owner@example.edu.cn",
                     "--comment", "已印发", "--now", NOW).code == 0
    # Then the history still verifies, and versions count actions only
    shown = rectiflow("measure", "show", started, "--json").json()
    assert shown["version"] == len(shown["history"]) == 3
    assert rectiflow("audit", "verify").code == 0


@pytest.mark.parametrize(("actor", "text_", "code", "words"), [
    ("outsider@example.edu.cn", "代为报送", 3, "无权"),
    ("viewer@example.edu.cn", "代为报送", 3, "无权"),
    ("owner@example.edu.cn", "   ", 2, "进展说明不能为空"),
    ("nobody@example.edu.cn", "代为报送", 2, "找不到人员"),
], ids=["outsider", "viewer", "blank text", "unknown person"])
def test_bad_progress_reports_are_refused(actor, text_, code, words, rectiflow, started, sessions):
    before = table_counts(sessions)
    result = rectiflow("measure", "progress", started, "--as", actor, "--text", text_,
                       "--now", NOW)
    assert result.code == code, result.err
    assert words in result.err
    assert table_counts(sessions) == before


def test_no_progress_on_a_closed_measure(rectiflow, started, sessions):
    steps = [("submit", "owner@example.edu.cn", ["--comment", "已完成"]),
             ("verify", "reviewer@example.edu.cn", []), ("close", "leader@example.edu.cn", [])]
    for action, actor, extra in steps:
        assert rectiflow("measure", "do", started, action, "--as", actor, *extra,
                         "--now", NOW).code == 0
    result = rectiflow("measure", "progress", started, "--as", "owner@example.edu.cn",
                       "--text", "补充", "--now", NOW)
    assert result.code == 2
    assert "已销号" in result.err
    with db.transaction(sessions) as session:
        assert session.scalar(select(func.count(ProgressReport.id))) == 1


# ------------------------------------------------------------------ the real console script


def test_console_script_runs_in_a_subprocess(database, cast, tmp_path):
    # Given the installed console script and only this test's database in its environment
    script = shutil.which("rectiflow")
    assert script is not None, "the rectiflow console script is not installed (pip install -e .)"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("RECTIFLOW_") or k.startswith("RECTIFLOW_TEST_")}
    env["RECTIFLOW_DATABASE_URL"] = database.url
    workdir = tmp_path / "workdir"
    workdir.mkdir()

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([script, *args], env=env, cwd=workdir, capture_output=True,
                              text=True, timeout=120, check=False)

    # When the schema is upgraded and the measures listed
    upgraded = run("db", "upgrade")
    listed = run("measure", "list", "--json")
    # Then both succeed, and the list is the one measure, as JSON on stdout
    assert upgraded.returncode == 0, upgraded.stderr
    assert "数据库已是最新结构" in upgraded.stdout
    assert listed.returncode == 0, listed.stderr
    shown = json.loads(listed.stdout)
    assert [m["title"] for m in shown] == ["修订食堂原材料采购管理办法"]
    assert MEASURE_KEYS <= shown[0].keys()
    # And nothing was written in the working folder (no stray default database)
    assert list(workdir.iterdir()) == []
    # And a refused action exits with its code from the real process too
    refused = run("measure", "do", str(cast.measure.id), "start", "--as", "outsider@example.edu.cn")
    assert refused.returncode == 3
    assert "无权" in refused.stderr

