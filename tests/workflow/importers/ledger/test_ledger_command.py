"""Importing a ledger (台账) through ``rectiflow import ledger``: all rows or none.

Files are built in each test, as CSV text and as real .xlsx workbooks, in the wording of the
后勤 巡察 feedback the seeds use. Every refused file must leave every table exactly as it was.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook
from sqlalchemy import func, inspect, select, text
from sqlalchemy.orm import Session, sessionmaker

from workflow import db
from workflow.importers.ledger import parse_deadline
from workflow.models import Area, Campaign, HistoryEntry, Measure, Person, Problem, Unit
from workflow.services.people import add_person

HEADER = ["序号", "方面", "问题", "整改措施", "责任领导", "责任部门", "责任人", "完成时限", "整改类型"]
CAMPAIGN = "十届校党委第五轮巡察反馈问题整改"
NOW = "2026-12-07T09:30:00+08:00"

STUDY = "学习传达有差距"
DUTY = "落实全面从严治党责任有差距"

#: name, email, roles, unit. Two people are called 陈静, so that name is ambiguous.
STAFF = [
    ("王书记", "wang.shuji@example.edu.cn", "leader", "后勤党总支"),
    ("李处长", "li.chuzhang@example.edu.cn", "leader", "后勤处"),
    ("张伟", "zhang.wei@example.edu.cn", "owner", "后勤党总支办公室"),
    ("刘芳", "liu.fang@example.edu.cn", "owner", "饮食服务中心"),
    ("陈静", "chen.jing@example.edu.cn", "owner", "物业管理科"),
    ("陈静", "chen.jing2@example.edu.cn", "owner", "校医院"),
]

#: A good ledger: 2 areas, 4 problems, 6 measures; 膳食科 and 能源管理科 are new units.
#: Dates are ``date`` objects where a spreadsheet would hold a real date cell.
GOOD_ROWS: list[list[Any]] = [
    ["1", STUDY, "组织学习还不到位", "制订《后勤教职工政治理论学习工作规程》，每月组织一次集中学习",
     "王书记", "后勤党总支办公室", "zhang.wei@example.edu.cn", date(2026, 12, 31), "限期整改"],
    ["2", STUDY, "组织学习还不到位", "建立学习台账，按季度通报学习情况",
     "wang.shuji@example.edu.cn", "后勤党总支办公室", "张伟", "", "长期坚持"],
    ["3", STUDY, "传达上级精神不及时", "党总支会议“第一议题”传达学习上级重要会议精神，形成会议纪要",
     "王书记", "后勤党总支办公室", "张伟", "2026年12月31日", "立行立改"],
    ["4", DUTY, "食堂原材料采购监管不严", "修订《饮食服务中心原材料采购管理办法》，实行双人验收",
     "李处长", "膳食科", "刘芳", date(2027, 1, 15), "限期整改"],
    ["5", DUTY, "食堂原材料采购监管不严", "开展供应商资质专项清查，清退不合格供应商",
     "李处长", "膳食科", "Liu.Fang@Example.edu.cn", "2026/12/20", ""],
    ["6", DUTY, "能耗管理制度执行不严", "制定水电能耗月度通报制度，超定额部门约谈整改",
     "李处长", "能源管理科", "刘芳", "2026年12月底", "限期整改"],
]
GOOD_DEADLINES = {"1": date(2026, 12, 31), "2": None, "3": date(2026, 12, 31),
                  "4": date(2027, 1, 15), "5": date(2026, 12, 20), "6": date(2026, 12, 31)}


# ------------------------------------------------------------------ building files


def _cell_text(value: Any) -> str:
    return value.isoformat() if isinstance(value, date) else str(value)


def write_csv(path: Path, rows: Sequence[Sequence[Any]], header: Sequence[str] = HEADER,
              encoding: str = "utf-8") -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows([_cell_text(v) for v in row] for row in rows)
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


def write_xlsx(path: Path, rows: Sequence[Sequence[Any]], header: Sequence[str] = HEADER) -> Path:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "整改台账"
    sheet.append(list(header))
    for row in rows:
        sheet.append([None if v == "" else v for v in row])
    workbook.save(path)
    return path


WRITERS: dict[str, Callable[[Path, Sequence[Sequence[Any]]], Path]] = {
    "csv": write_csv, "xlsx": write_xlsx}


def ledger_file(tmp_path: Path, fmt: str, rows: Sequence[Sequence[Any]],
                name: str = "台账") -> Path:
    return WRITERS[fmt](tmp_path / f"{name}.{fmt}", rows)


def row(seq: str, changes: dict[str, Any] | None = None) -> list[Any]:
    """A good row in area 学习传达有差距, with some columns changed."""
    values: dict[str, Any] = {
        "序号": seq, "方面": STUDY, "问题": "组织学习还不到位",
        "整改措施": f"组织第{seq}次集中学习并形成学习记录", "责任领导": "王书记",
        "责任部门": "后勤党总支办公室", "责任人": "张伟", "完成时限": "2026-12-31",
        "整改类型": "限期整改",
    }
    values.update(changes or {})
    return [values[column] for column in HEADER]


# ------------------------------------------------------------------ looking at the database


def table_counts(sessions: sessionmaker[Session]) -> dict[str, int]:
    """Row count of every table in the database, whoever's model it belongs to."""
    with db.transaction(sessions) as session:
        names = inspect(session.connection()).get_table_names()
        return {name: session.execute(text(f'SELECT count(*) FROM "{name}"')).scalar_one()
                for name in names}


def measures_by_seq(sessions: sessionmaker[Session]) -> dict[str, Measure]:
    with db.transaction(sessions) as session:
        found = session.scalars(select(Measure)).all()
        for measure in found:  # load what the assertions read before the session closes
            _ = (measure.owner, measure.leader, measure.unit, measure.problem.area)
        return {m.seq or "": m for m in found}


def error_lines(err: str) -> list[str]:
    return [line.strip() for line in err.splitlines() if line.strip().startswith("第 ")]


@pytest.fixture
def staff(sessions: sessionmaker[Session]) -> dict[str, Person]:
    with db.transaction(sessions) as session:
        return {email: add_person(session, name=name, email=email, roles=[role], unit=unit)
                for name, email, role, unit in STAFF}


@pytest.fixture
def import_ledger(rectiflow):  # type: ignore[no-untyped-def]
    """``import_ledger(path, "--dry-run")`` runs ``rectiflow import ledger`` into CAMPAIGN."""

    def run(path: Path, *extra: str, campaign: str = CAMPAIGN):  # type: ignore[no-untyped-def]
        return rectiflow("--now", NOW, "import", "ledger", str(path), "--campaign", campaign,
                         "--json", *extra)

    return run


# ------------------------------------------------------------------ a good import


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_good_ledger_is_imported_whole(fmt, tmp_path, sessions, staff, import_ledger):
    # Given six good rows naming people by email and by name, and two units nobody added yet
    path = ledger_file(tmp_path, fmt, GOOD_ROWS)
    units_before = table_counts(sessions)["unit"]

    # When the ledger is imported
    result = import_ledger(path)

    # Then the summary counts areas, problems and measures, in the contract's shape
    assert result.code == 0, result.err
    summary = result.json()
    assert {"campaign_id", "areas", "problems", "measures"} <= summary.keys()
    assert isinstance(summary["campaign_id"], int)
    assert (summary["areas"], summary["problems"], summary["measures"]) == (2, 4, 6)
    with db.transaction(sessions) as session:
        campaign = session.scalars(select(Campaign)).one()
        assert (campaign.id, campaign.title) == (summary["campaign_id"], CAMPAIGN)
        assert session.scalar(select(func.count(Area.id))) == 2
        assert session.scalar(select(func.count(Problem.id))) == 4
        assert set(session.scalars(select(Unit.name))) >= {"膳食科", "能源管理科"}
    assert table_counts(sessions)["unit"] == units_before + 2

    # And people are resolved by email (any case) and by unique name
    measures = measures_by_seq(sessions)
    zhang, wang, liu = (staff[e] for e in ("zhang.wei@example.edu.cn", "wang.shuji@example.edu.cn",
                                           "liu.fang@example.edu.cn"))
    assert (measures["1"].owner_id, measures["1"].leader_id) == (zhang.id, wang.id)
    assert (measures["2"].owner_id, measures["2"].leader_id) == (zhang.id, wang.id)
    assert measures["5"].owner_id == liu.id
    assert measures["4"].unit is not None and measures["4"].unit.name == "膳食科"

    # And dates from date cells, 2026年12月31日, 2026/12/20 and 2026年12月底 all land right
    assert {seq: m.deadline for seq, m in measures.items()} == GOOD_DEADLINES
    assert [str(measures[s].kind) for s in "123456"] == [
        "deadline", "long_term", "immediate", "deadline", "deadline", "deadline"]

    # And every measure starts assigned at version 1 with exactly one "create" history row
    assert {str(m.state) for m in measures.values()} == {"assigned"}
    assert {m.version for m in measures.values()} == {1}
    with db.transaction(sessions) as session:
        history = session.execute(select(HistoryEntry.measure_id, HistoryEntry.action,
                                         HistoryEntry.to_state, HistoryEntry.data)).all()
    assert sorted(h.measure_id for h in history) == sorted(m.id for m in measures.values())
    assert {(h.action, h.to_state) for h in history} == {("create", "assigned")}
    # And each history row belongs to the measure of its own file row (序号 n is on row n + 1)
    row_of = {h.measure_id: h.data["row"] for h in history}
    assert {seq: row_of[m.id] for seq, m in measures.items()} == {
        seq: int(seq) + 1 for seq in measures}


def test_a_ledger_larger_than_one_batch_keeps_every_row_with_its_measure(tmp_path, sessions,
                                                                        staff, import_ledger):
    # Given 1,203 rows over 30 areas and 300 problems: more than one insert batch of each
    rows = [row(str(n), {"方面": f"方面{n % 30:02d}有差距", "问题": f"问题{n % 300:03d}还不到位",
                         "整改措施": f"第{n}项整改措施", "完成时限": date(2026, 12, 31) - timedelta(n % 90)})
            for n in range(1, 1204)]
    # When the ledger is imported
    result = import_ledger(ledger_file(tmp_path, "csv", rows))
    # Then every measure carries its own row's problem, area, deadline and history row
    assert result.code == 0, result.err
    assert (result.json()["areas"], result.json()["problems"]) == (30, 300)
    with db.transaction(sessions) as session:
        found = session.execute(
            select(Measure.seq, Measure.title, Measure.deadline, Measure.position, Problem.text,
                   Area.title.label("area"), HistoryEntry.data)
            .join(Problem, Measure.problem_id == Problem.id).join(Area)
            .join(HistoryEntry, HistoryEntry.measure_id == Measure.id)).all()
    assert len(found) == 1203
    for measure in found:
        n = int(measure.seq)
        assert measure.title == f"第{n}项整改措施"
        assert (measure.area, measure.text) == (f"方面{n % 30:02d}有差距", f"问题{n % 300:03d}还不到位")
        assert measure.deadline == date(2026, 12, 31) - timedelta(n % 90)
        assert measure.data == {"row": n + 1}
        assert measure.position == n


def test_excel_date_cells_with_a_time_part_keep_their_day(tmp_path, sessions, staff,
                                                          import_ledger):
    # Given a workbook whose date cell carries a time, as Excel does after =NOW()
    path = write_xlsx(tmp_path / "台账.xlsx",
                      [row("1", {"完成时限": datetime(2026, 12, 31, 17, 30)})])
    # When it is imported
    result = import_ledger(path)
    # Then the deadline is that day
    assert result.code == 0, result.err
    assert measures_by_seq(sessions)["1"].deadline == date(2026, 12, 31)


def test_dry_run_checks_and_writes_nothing(tmp_path, sessions, staff, import_ledger):
    # Given a good ledger
    path = ledger_file(tmp_path, "csv", GOOD_ROWS)
    before = table_counts(sessions)
    # When it is only checked
    result = import_ledger(path, "--dry-run")
    # Then the counts are reported, no campaign is named, and no table changed
    assert result.code == 0, result.err
    summary = result.json()
    assert (summary["areas"], summary["problems"], summary["measures"]) == (2, 4, 6)
    assert summary["campaign_id"] is None
    assert summary["dry_run"] is True
    assert table_counts(sessions) == before


def test_import_into_an_existing_campaign_appends(tmp_path, sessions, staff, import_ledger):
    # Given a campaign already holding the six measures of the first ledger
    first = import_ledger(ledger_file(tmp_path, "csv", GOOD_ROWS, name="第一批"))
    assert first.code == 0, first.err
    # When a second ledger with new 序号 and one known area is imported into it
    second_rows = [
        row("7", {"方面": STUDY, "问题": "组织学习还不到位", "整改措施": "开展专题研讨，形成研讨纪要"}),
        row("8", {"方面": "基层党组织建设有差距", "问题": "支部“三会一课”记录不规范",
                  "整改措施": "对照《党支部工作条例》规范“三会一课”记录"}),
    ]
    second = import_ledger(ledger_file(tmp_path, "xlsx", second_rows, name="第二批"))
    # Then the measures are added to the same campaign, reusing the known area and problem
    assert second.code == 0, second.err
    assert second.json()["campaign_id"] == first.json()["campaign_id"]
    with db.transaction(sessions) as session:
        assert session.scalar(select(func.count(Campaign.id))) == 1
        assert session.scalar(select(func.count(Measure.id))) == 8
        assert sorted(session.scalars(select(Area.title))) == sorted(
            [STUDY, DUTY, "基层党组织建设有差距"])
        assert session.scalar(select(func.count(Problem.id))) == 5
        positions = session.execute(select(Measure.seq, Measure.position)
                                    .order_by(Measure.position)).all()
    assert [seq for seq, _ in positions] == ["1", "2", "3", "4", "5", "6", "7", "8"]
    assert len({p for _, p in positions}) == 8


# ------------------------------------------------------------------ bad rows: all reported, none written

#: (case, rows, expected errors as (row number, column, words of the reason)).
BAD_ROWS: list[tuple[str, list[list[Any]], list[tuple[int, str, str]]]] = [
    ("unknown leader", [row("1"), row("2", {"责任领导": "周校长"})],
     [(3, "责任领导", "未知人员「周校长」")]),
    ("unknown owner by email", [row("1", {"责任人": "nobody@example.edu.cn"})],
     [(2, "责任人", "未知人员「nobody@example.edu.cn」")]),
    ("unknown owner by name", [row("1"), row("2"), row("3", {"责任人": "李明"})],
     [(4, "责任人", "未知人员「李明」")]),
    ("ambiguous name", [row("1", {"责任人": "陈静"})],
     [(2, "责任人", "有 2 人名为「陈静」，请改用邮箱")]),
    ("missing date", [row("1", {"完成时限": ""})], [(2, "完成时限", "完成时限为空")]),
    ("impossible date", [row("1", {"完成时限": "2026-02-30"})],
     [(2, "完成时限", "日期「2026-02-30」不存在")]),
    ("impossible Chinese date", [row("1", {"完成时限": "2026年13月1日"})],
     [(2, "完成时限", "日期「2026年13月1日」不存在")]),
    ("unparseable date", [row("1", {"完成时限": "年底前"})],
     [(2, "完成时限", "无法识别的日期「年底前」")]),
    ("long-term word on a deadline measure", [row("1", {"完成时限": "长期"})],
     [(2, "完成时限", "「长期」只适用于长期坚持类措施")]),
    ("unknown kind", [row("1", {"整改类型": "马上就改"})],
     [(2, "整改类型", "未知整改类型「马上就改」")]),
    ("empty measure", [row("1", {"整改措施": ""})], [(2, "整改措施", "整改措施为空")]),
    ("empty area", [row("1", {"方面": ""})], [(2, "方面", "方面为空")]),
    ("empty problem", [row("1", {"问题": "  "})], [(2, "问题", "问题为空")]),
    ("duplicate 序号 in the file", [row("1"), row("2"), row("1")],
     [(4, "序号", "序号「1」与第 2 行重复")]),
    ("one row, two faults", [row("1", {"方面": "", "责任领导": "周校长"})],
     [(2, "方面", "方面为空"), (2, "责任领导", "未知人员「周校长」")]),
    ("three bad rows among good ones",
     [row("1"), row("2", {"责任人": "李明"}), row("3"), row("4", {"完成时限": "2026-02-30"}),
      row("5", {"整改类型": "马上就改"}), row("6")],
     [(3, "责任人", "未知人员「李明」"), (5, "完成时限", "不存在"), (6, "整改类型", "未知整改类型")]),
]


def assert_reported(err: str, expected: Sequence[tuple[int, str, str]]) -> None:
    """Every expected error is on its own line of stderr, and there are no others."""
    lines = error_lines(err)
    assert f"有 {len(expected)} 处错误，未导入任何数据" in err
    assert len(lines) == len(expected), err
    for number, column, reason in expected:
        where = f"第 {number} 行「{column}」："
        assert any(line.startswith(where) and reason in line for line in lines), (where, err)


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
@pytest.mark.parametrize(("case", "rows", "expected"), BAD_ROWS, ids=[c[0] for c in BAD_ROWS])
def test_bad_rows_are_all_reported_and_nothing_is_written(case, rows, expected, fmt, tmp_path,
                                                          sessions, staff, import_ledger):
    # Given a ledger with bad rows
    path = ledger_file(tmp_path, fmt, rows)
    before = table_counts(sessions)
    # When it is imported
    result = import_ledger(path)
    # Then it is refused with exit code 2, every bad row named with its column and reason
    assert result.code == 2, (result.out, result.err)
    assert result.out == ""
    assert_reported(result.err, expected)
    # And not one row was written anywhere
    assert table_counts(sessions) == before


def test_duplicate_seq_against_the_existing_campaign(tmp_path, sessions, staff, import_ledger):
    # Given a campaign whose ledger already holds 序号 1 to 6
    assert import_ledger(ledger_file(tmp_path, "csv", GOOD_ROWS, name="第一批")).code == 0
    before = table_counts(sessions)
    # When a later ledger reuses 序号 2 and 5
    rows = [row("7"), row("2"), row("5")]
    result = import_ledger(ledger_file(tmp_path, "csv", rows, name="第二批"))
    # Then both rows are refused and nothing of the file is written
    assert result.code == 2
    assert_reported(result.err, [(3, "序号", "序号「2」在该整改任务中已存在"),
                                 (4, "序号", "序号「5」在该整改任务中已存在")])
    assert table_counts(sessions) == before


def test_inactive_people_are_not_resolved(tmp_path, sessions, staff, import_ledger):
    # Given 刘芳 has left and her account is inactive
    with db.transaction(sessions) as session:
        session.get(Person, staff["liu.fang@example.edu.cn"].id).active = False
    before = table_counts(sessions)
    # When a ledger still names her
    result = import_ledger(ledger_file(tmp_path, "csv", [row("1", {"责任人": "刘芳"})]))
    # Then the row is refused
    assert result.code == 2
    assert_reported(result.err, [(2, "责任人", "未知人员「刘芳」")])
    assert table_counts(sessions) == before


# ------------------------------------------------------------------ bad files


def _csv_without_owner(path: Path) -> None:
    header = [c for c in HEADER if c != "责任人"]
    write_csv(path, [[v for c, v in zip(HEADER, row("1"), strict=True) if c != "责任人"]],
              header=header)


def _empty_workbook(path: Path) -> None:
    Workbook().save(path)


#: (case, file name, how to write it, words stderr must hold).
BAD_FILES: list[tuple[str, str, Callable[[Path], object], list[str]]] = [
    ("missing header column", "台账.csv", _csv_without_owner, ["第 1 行", "表头缺少列：责任人"]),
    ("missing header column in xlsx", "台账.xlsx",
     lambda p: write_xlsx(p, [row("1")[:6]], header=HEADER[:6]),
     ["第 1 行", "表头缺少列：责任人"]),
    ("empty csv", "台账.csv", lambda p: p.write_bytes(b""), ["台账.csv 是空文件"]),
    ("header only", "台账.csv", lambda p: write_csv(p, []), ["没有任何数据行"]),
    ("empty workbook", "台账.xlsx", _empty_workbook, ["第一个工作表是空的"]),
    ("neither UTF-8 nor GB18030", "台账.csv",
     lambda p: p.write_bytes(",".join(HEADER).encode("utf-8") + b"\n1,\xff\xff\n"),
     ["编码无法识别", "GB18030", "CSV UTF-8"]),
    ("unsupported extension", "台账.xls", lambda p: p.write_bytes(b"\xd0\xcf\x11\xe0"),
     ["不支持的文件格式「.xls」", ".xlsx", ".csv"]),
    ("text file", "台账.txt", lambda p: p.write_text("序号,方面\n", encoding="utf-8"),
     ["不支持的文件格式「.txt」"]),
    ("broken workbook", "台账.xlsx", lambda p: p.write_bytes(b"this is not a workbook"),
     ["无法读取 Excel 文件 台账.xlsx"]),
    ("no such file", "台账.csv", lambda p: None, ["文件不存在"]),
]


@pytest.mark.parametrize(("case", "name", "make", "words"), BAD_FILES, ids=[c[0] for c in BAD_FILES])
def test_bad_files_are_refused_and_nothing_is_written(case, name, make, words, tmp_path, sessions,
                                                      staff, import_ledger):
    # Given a file that is not a usable ledger
    path = tmp_path / name
    make(path)
    before = table_counts(sessions)
    # When it is imported
    result = import_ledger(path)
    # Then it is refused with exit code 2 and a message saying why, and nothing is written
    assert result.code == 2, (result.out, result.err)
    assert "错误：" in result.err
    for word in words:
        assert word in result.err
    assert "Traceback" not in result.err
    assert table_counts(sessions) == before


def test_blank_lines_are_skipped_and_row_numbers_stay_true(tmp_path, sessions, staff,
                                                           import_ledger):
    # Given a CSV with a blank line between rows, as hand-edited files have
    path = tmp_path / "台账.csv"
    good = write_csv(tmp_path / "good.csv", [row("1")]).read_text(encoding="utf-8")
    bad = ",".join(row("2", {"责任人": "李明"}))
    path.write_text(good + ",,,,,,,,\n" + bad + "\n", encoding="utf-8")
    # When it is imported
    result = import_ledger(path)
    # Then the bad row is reported under its own line number in the file
    assert result.code == 2
    assert_reported(result.err, [(4, "责任人", "未知人员「李明」")])


# ------------------------------------------------------------------ dates (pure)


@pytest.mark.parametrize(("cell", "expected"), [
    ("2026-12-31", date(2026, 12, 31)),
    ("2026/12/31", date(2026, 12, 31)),
    ("2026.12.31", date(2026, 12, 31)),
    ("2026年12月31日", date(2026, 12, 31)),
    ("2026 年 12 月 31 日", date(2026, 12, 31)),
    ("2026年1月5日", date(2026, 1, 5)),
    ("20261231", date(2026, 12, 31)),
    ("2027年2月底", date(2027, 2, 28)),
    ("2028年2月", date(2028, 2, 29)),
    (datetime(2026, 12, 31, 23, 59), date(2026, 12, 31)),
    (date(2026, 12, 31), date(2026, 12, 31)),
    ("长期坚持", None),
    ("持续推进", None),
])
def test_deadline_cells_that_parse(cell, expected):
    assert parse_deadline(cell) == expected


@pytest.mark.parametrize(("cell", "reason"), [
    ("", "完成时限为空"),
    (None, "完成时限为空"),
    ("2026-02-30", "不存在"),
    ("2026年2月29日", "不存在"),
    ("2026年13月", "不存在"),
    ("12/31/2026", "无法识别"),
    ("下周五", "无法识别"),
])
def test_deadline_cells_that_do_not(cell, reason):
    with pytest.raises(ValueError, match=reason):
        parse_deadline(cell)
