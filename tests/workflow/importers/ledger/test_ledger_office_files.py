"""Ledgers as offices keep them: title rows, two-row headers, merged cells, section and footer
rows, both date styles, and CSV files saved by Chinese Excel (GB18030, UTF-8 with BOM).

Workbooks are built in each test with openpyxl. Each case asserts the exact rows imported or the
exact refusal, and that a refused file leaves every table as it was.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook, load_workbook
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from test_ledger_command import CAMPAIGN, GOOD_ROWS, HEADER, NOW, error_lines, table_counts

from workflow import db
from workflow.importers.ledger.sheets import MergedRange, read_merged_ranges
from workflow.models import Area, Measure, Person, Problem, ProgressReport, Unit

STUDY = "学习传达有差距"
DUTY = "落实全面从严治党责任有差距"
TITLE = "后勤处巡察反馈问题整改台账"
FILLED_BY = "填报单位：后勤处    填报日期：2026年12月1日"

#: Columns A–J of the office workbook; rows 3 and 4 form its header.
TOP = ["序号", "问题类别", "存在问题", "整改任务", "责任主体", None, None, "整改时限", "整改方式",
       "完成情况"]
UNDER = [None, None, None, None, "牵头领导", "牵头单位", "具体责任人", None, None, None]

#: Body rows 5–14: (row, cells A–J). None where a merged block above supplies the value.
BODY: list[tuple[int, list[Any]]] = [
    (5, ["一、学习传达有差距"] + [None] * 9),
    (6, ["1", None, "组织学习还不到位", "制订《后勤教职工政治理论学习工作规程》，每月组织一次集中学习",
         "王书记", "后勤党总支办公室", "张伟", date(2026, 12, 31), "限期整改", "已制订规程初稿"]),
    (7, ["2", None, None, "建立学习台账，按季度通报学习情况",
         None, None, "zhang.wei@example.edu.cn", "长期坚持", None, None]),
    (8, ["3", None, "传达上级精神不及时", "党总支会议“第一议题”传达学习上级重要会议精神",
         None, None, "张伟", "2026年12月底", "立行立改", None]),
    (9, ["二、落实全面从严治党责任有差距"] + [None] * 9),
    (10, ["4", None, "食堂原材料采购监管不严", "修订《饮食服务中心原材料采购管理办法》，实行双人验收",
          "李处长", "膳食科", "刘芳", "12月底", None, None]),
    (11, ["5", None, None, "开展供应商资质专项清查，清退不合格供应商",
          None, None, "liu.fang@example.edu.cn", 46402, "限期整改", None]),
    (12, ["6", None, "能耗管理制度执行不严", "制定水电能耗月度通报制度，超定额部门约谈整改",
          None, "能源管理科", "刘芳", "3月31日", None, None]),
    (13, ["填表人：张伟    审核人：王书记"] + [None] * 9),
    (14, ["合计", None, None, "6项"] + [None] * 6),
]
MERGES = ["A1:J1", "A2:J2", "A3:A4", "B3:B4", "C3:C4", "D3:D4", "E3:G3", "H3:H4", "I3:I4",
          "J3:J4", "A5:J5", "C6:C7", "E6:E8", "F6:F8", "A9:J9", "C10:C11", "E10:E12", "F10:F11",
          "A13:J13"]

#: What the office workbook imports as: (序号, 方面, 问题, 整改措施, leader, unit, owner, deadline, kind).
EXPECTED = [
    ("1", STUDY, "组织学习还不到位", "制订《后勤教职工政治理论学习工作规程》，每月组织一次集中学习",
     "王书记", "后勤党总支办公室", "张伟", date(2026, 12, 31), "deadline"),
    ("2", STUDY, "组织学习还不到位", "建立学习台账，按季度通报学习情况",
     "王书记", "后勤党总支办公室", "张伟", None, "long_term"),
    ("3", STUDY, "传达上级精神不及时", "党总支会议“第一议题”传达学习上级重要会议精神",
     "王书记", "后勤党总支办公室", "张伟", date(2026, 12, 31), "immediate"),
    ("4", DUTY, "食堂原材料采购监管不严", "修订《饮食服务中心原材料采购管理办法》，实行双人验收",
     "李处长", "膳食科", "刘芳", date(2026, 12, 31), "deadline"),
    ("5", DUTY, "食堂原材料采购监管不严", "开展供应商资质专项清查，清退不合格供应商",
     "李处长", "膳食科", "刘芳", date(2027, 1, 15), "deadline"),
    ("6", DUTY, "能耗管理制度执行不严", "制定水电能耗月度通报制度，超定额部门约谈整改",
     "李处长", "能源管理科", "刘芳", date(2027, 3, 31), "deadline"),
]


def office_workbook(path: Path, changes: dict[tuple[int, int], Any] | None = None) -> Path:
    """The office ledger above; ``changes`` overwrites cells by (row, column), 1-based."""
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "整改台账"
    rows = [(1, [TITLE] + [None] * 9), (2, [FILLED_BY] + [None] * 9), (3, TOP), (4, UNDER), *BODY]
    for number, cells in rows:
        for column, value in enumerate(cells, start=1):
            if value is not None:
                sheet.cell(number, column, value)
    for (number, column), value in (changes or {}).items():
        sheet.cell(number, column).value = value
    for block in MERGES:
        sheet.merge_cells(block)
    workbook.save(path)
    return path


def imported(sessions: sessionmaker[Session]) -> list[tuple[Any, ...]]:
    with db.transaction(sessions) as session:
        measures = session.scalars(select(Measure).order_by(Measure.position)).all()
        return [(m.seq, m.problem.area.title, m.problem.text, m.title, m.leader.name,
                 m.unit.name if m.unit else None, m.owner.name, m.deadline, str(m.kind))
                for m in measures]


# ------------------------------------------------------------------ the office workbook


def test_an_office_ledger_with_merged_cells_is_imported_row_by_row(tmp_path, sessions, staff,
                                                                   import_ledger):
    # Given a ledger under two title rows, with a two-row header whose group cell 责任主体 spans
    # 牵头领导/牵头单位/具体责任人, merged 问题/领导/单位 blocks, section rows giving the 方面,
    # deadlines in both styles (date cells, serial numbers, 年月底, 12月底, 长期坚持) and a footer
    path = office_workbook(tmp_path / "台账.xlsx")

    # When it is imported
    result = import_ledger(path)

    # Then every measure row comes in with the values of its merged blocks and its section
    assert result.code == 0, result.err
    summary = result.json()
    assert (summary["areas"], summary["problems"], summary["measures"]) == (2, 4, 6)
    assert imported(sessions) == EXPECTED
    # And the summary says what the layout did
    assert summary["merged_cells"] == {"问题": 2, "责任领导": 4, "责任部门": 3}
    assert summary["sections"] == ["一、学习传达有差距", "二、落实全面从严治党责任有差距"]
    assert summary["skipped_rows"] == [13, 14]
    assert summary["encoding"] is None
    # And each history row names the measure's own sheet row; the 完成情况 cell is a progress note
    with db.transaction(sessions) as session:
        rows = {m.seq: m.history[0].data["row"] for m in session.scalars(select(Measure))}
        notes = session.execute(select(Measure.seq, ProgressReport.text).join(Measure)).all()
    assert rows == {"1": 6, "2": 7, "3": 8, "4": 10, "5": 11, "6": 12}
    assert [tuple(n) for n in notes] == [("1", "已制订规程初稿")]


def test_the_dry_run_preview_reads_like_the_ledger(tmp_path, sessions, staff, rectiflow):
    # Given the office ledger
    path = office_workbook(tmp_path / "台账.xlsx")
    before = table_counts(sessions)
    # When it is only previewed
    result = rectiflow("--now", NOW, "import", "ledger", str(path), "--campaign", CAMPAIGN,
                       "--dry-run")
    # Then the clerk sees areas → problems → measures, the first rows as they will be imported,
    # how the dates were read and which merged cells were filled; nothing is written
    assert result.code == 0, result.err
    lines = [line.strip() for line in result.out.splitlines()]
    assert lines[:12] == [
        "导入预览（台账.xlsx，未写入）：",
        "方面 → 问题 → 措施：2 个方面、4 个问题、6 项整改措施",
        "学习传达有差距：2 个问题、3 项措施",
        "落实全面从严治党责任有差距：2 个问题、3 项措施",
        "前 5 行将导入为：",
        "第 6 行 1｜学习传达有差距｜组织学习还不到位｜制订《后勤教职工政治理论学习工作规程》，每月组织一次"
        "集中学习｜领导 王书记｜后勤党总支办公室｜责任人 张伟｜2026-12-31｜限期整改",
        "第 7 行 2｜学习传达有差距｜组织学习还不到位｜建立学习台账，按季度通报学习情况｜领导 王书记｜"
        "后勤党总支办公室｜责任人 张伟｜无完成时限（长期坚持）｜长期坚持",
        "第 8 行 3｜学习传达有差距｜传达上级精神不及时｜党总支会议“第一议题”传达学习上级重要会议精神｜"
        "领导 王书记｜后勤党总支办公室｜责任人 张伟｜2026-12-31（按月底）｜立行立改",
        "第 10 行 4｜落实全面从严治党责任有差距｜食堂原材料采购监管不严｜修订《饮食服务中心原材料采购"
        "管理办法》，实行双人验收｜领导 李处长｜膳食科｜责任人 刘芳｜2026-12-31（按月底，2026年）｜限期整改",
        "第 11 行 5｜落实全面从严治党责任有差距｜食堂原材料采购监管不严｜开展供应商资质专项清查，清退"
        "不合格供应商｜领导 李处长｜膳食科｜责任人 刘芳｜2027-01-15（Excel 日期序号 46402）｜限期整改",
        "完成时限的读法：",
        "Excel 日期：1 行，如「Excel 日期单元格 2026-12-31」→ 2026-12-31",
    ]
    assert lines[12:] == [
        "长期：1 行，如「长期坚持」→ 无完成时限（长期坚持）",
        "年月（月底）：1 行，如「2026年12月底」→ 2026-12-31（按月底）",
        "月底（整改年度）：1 行，如「12月底」→ 2026-12-31（按月底，2026年）",
        "Excel 日期序号：1 行，如「46402」→ 2027-01-15（Excel 日期序号 46402）",
        "月日（整改年度）：1 行，如「3月31日」→ 2027-03-31（按2027年）",
        f"表头上方的标题行（未导入）：{TITLE}；{FILLED_BY}",
        "合并单元格（19 处）已按块填入每一行：问题 2 格、责任领导 4 格、责任部门 3 格",
        "第 5 行是分节标题「一、学习传达有差距」：作为其下各行的方面",
        "第 9 行是分节标题「二、落实全面从严治党责任有差距」：作为其下各行的方面",
        "第 13 行是表尾「填表人：张伟    审核人：王书记」：已跳过",
        "第 14 行是表尾「合计」：已跳过",
        "检查通过，可导入：2 个方面、4 个问题、6 项整改措施",
    ]
    assert table_counts(sessions) == before


def test_merged_area_blocks_under_a_title_row_and_a_one_row_header(tmp_path, sessions, staff,
                                                                  import_ledger):
    # Given the usual header under one title row, 方面 merged over three rows and 问题 over two
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append([TITLE])
    sheet.append(HEADER)
    for values in GOOD_ROWS[:3]:
        sheet.append([None if v == "" else v for v in values])
    sheet["B4"] = sheet["B5"] = sheet["C4"] = None
    sheet.merge_cells("B3:B5")
    sheet.merge_cells("C3:C4")
    path = tmp_path / "台账.xlsx"
    workbook.save(path)
    # When it is imported
    result = import_ledger(path)
    # Then the three rows share the area, the first two the problem
    assert result.code == 0, result.err
    assert [row[:3] for row in imported(sessions)] == [
        ("1", STUDY, "组织学习还不到位"), ("2", STUDY, "组织学习还不到位"),
        ("3", STUDY, "传达上级精神不及时")]


# ------------------------------------------------------------------ bad office files


def test_a_bad_date_is_named_by_row_column_and_value(tmp_path, sessions, staff, import_ledger):
    # Given the office ledger with a deadline nobody can read on row 11
    path = office_workbook(tmp_path / "台账.xlsx", {(11, 8): "明年春节前"})
    before = table_counts(sessions)
    # When it is imported
    result = import_ledger(path)
    # Then it is refused with that row, column and value, and nothing is written
    assert result.code == 2
    assert error_lines(result.err) == [
        "第 11 行「完成时限」：无法识别的日期「明年春节前」（可写作 2026-12-31、2026年12月31日、"
        "2026年12月底、12月底、长期坚持 或 立即）"]
    assert table_counts(sessions) == before


def test_a_blank_owner_inside_a_merged_block_is_not_filled(tmp_path, sessions, staff,
                                                          import_ledger):
    # Given row 7 lies inside the merged 问题/领导/单位 blocks but its own 责任人 cell is blank
    path = office_workbook(tmp_path / "台账.xlsx", {(7, 7): None})
    before = table_counts(sessions)
    # When it is imported
    result = import_ledger(path)
    # Then the row is refused (a blank cell is only filled inside a merged range), saying why
    assert result.code == 2
    assert error_lines(result.err) == [
        "第 7 行「责任人」：责任人为空（本行的问题、责任领导、责任部门来自合并单元格，"
        "责任人不在合并范围内，须逐行填写）"]
    assert table_counts(sessions) == before


def test_a_sheet_that_is_not_a_ledger_is_refused_with_what_was_looked_for(tmp_path, sessions,
                                                                         staff, import_ledger):
    # Given a sign-in sheet saved as xlsx
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["后勤处党总支理论学习签到表"])
    sheet.append(["姓名", "单位", "签到时间"])
    sheet.append(["张伟", "后勤党总支办公室", "9:00"])
    path = tmp_path / "签到表.xlsx"
    workbook.save(path)
    before = table_counts(sessions)
    # When it is imported as a ledger
    result = import_ledger(path)
    # Then it is refused, naming the columns looked for and their spellings
    assert result.code == 2
    assert result.err.splitlines()[-1] == (
        "错误：签到表.xlsx 不是整改台账：前 10 行中找不到表头。查找的列："
        "问题（或 问题表现、存在问题、反馈问题具体表现、具体问题、问题描述）；"
        "整改措施（或 整改任务、措施、具体整改措施）；"
        "责任领导（或 牵头领导、分管领导、责任校领导）；"
        "责任人（或 具体责任人、具体负责人）")
    assert table_counts(sessions) == before


# ------------------------------------------------------------------ CSV saved by Chinese Excel


def csv_bytes(rows: Sequence[Sequence[Any]], encoding: str) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(HEADER)
    writer.writerows([v.isoformat() if isinstance(v, date) else v for v in row] for row in rows)
    return buffer.getvalue().encode(encoding)


@pytest.mark.parametrize(("encoding", "shown"), [
    ("gb18030", "GB18030"), ("gbk", "GB18030"), ("utf-8-sig", "UTF-8 BOM"), ("utf-8", "UTF-8")])
def test_csv_encodings_are_detected_and_named(encoding, shown, tmp_path, sessions, staff,
                                              rectiflow):
    # Given the good ledger saved as CSV in the encoding Chinese Excel chose
    path = tmp_path / "台账.csv"
    path.write_bytes(csv_bytes(GOOD_ROWS, encoding))
    # When it is imported
    as_json = rectiflow("--now", NOW, "import", "ledger", str(path), "--campaign", CAMPAIGN,
                        "--dry-run", "--json")
    as_text = rectiflow("--now", NOW, "import", "ledger", str(path), "--campaign", CAMPAIGN)
    # Then it is read, and the encoding used is said in the JSON document and the summary
    assert as_json.code == 0, as_json.err
    assert as_json.json()["encoding"] == shown
    assert as_text.code == 0, as_text.err
    assert f"文件编码：{shown}" in as_text.out.splitlines()
    with db.transaction(sessions) as session:
        titles = set(session.scalars(select(Measure.title)))
        assert titles == {str(r[3]) for r in GOOD_ROWS}
        assert set(session.scalars(select(Area.title))) == {STUDY, DUTY}
        assert session.scalar(select(Unit.id).where(Unit.name == "膳食科")) is not None
        assert len(session.scalars(select(Problem)).all()) == 4
        assert session.scalar(select(Person.id).where(Person.name == "张伟")) is not None


# ------------------------------------------------------------------ merged ranges, read apart


def test_merged_ranges_are_read_from_the_sheet_xml(tmp_path):
    # Given the office workbook
    path = office_workbook(tmp_path / "台账.xlsx")
    # When its merged ranges are read by scanning the sheet's XML
    found = read_merged_ranges(path)
    # Then they are the ones openpyxl sees when it loads the whole sheet
    loaded = load_workbook(path).worksheets[0].merged_cells.ranges
    assert sorted(found, key=lambda r: (r.min_row, r.min_col)) == sorted(
        (MergedRange(r.min_row, r.min_col, r.max_row, r.max_col) for r in loaded),
        key=lambda r: (r.min_row, r.min_col))
    assert len(found) == len(MERGES)
