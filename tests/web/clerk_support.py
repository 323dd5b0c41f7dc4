"""Files and rows the clerk's tests share: a ledger CSV (good, or with bad rows), a people file,
a holiday notice as the State Council publishes it."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

HEADER = ["序号", "方面", "问题", "整改措施", "责任领导", "责任部门", "责任人", "完成时限", "整改类型"]
AREA = "一、学习贯彻党的创新理论方面"


def ledger_csv(rows: Sequence[Sequence[str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(HEADER)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def good_rows(leader: str = "Leader", owner: str = "Owner") -> list[list[str]]:
    return [
        ["11", AREA, "理论学习中心组学习不够深入", "制订中心组年度学习计划并严格执行", leader,
         "党委办公室", owner, "2027-03-31", "限期整改"],
        ["12", AREA, "理论学习中心组学习不够深入", "建立学习督查通报制度", leader,
         "党委办公室", owner, "2027-01-15", "限期整改"],
        ["13", "二、落实全面从严治党责任方面", "谈心谈话不经常", "坚持每半年开展一次谈心谈话",
         leader, "组织部", owner, "", "长期坚持"],
    ]


def bad_rows() -> list[list[str]]:
    """Row 3 names an unknown owner 陈新人; row 4 has an impossible date."""
    rows = good_rows()
    rows[1][6] = "陈新人"
    rows[2][7] = "2027-02-30"
    rows[2][8] = "限期整改"
    return rows


NOTICE_2027 = """国务院办公厅关于2027年部分节假日安排的通知
经国务院批准，现将2027年元旦、春节放假调休日期的具体安排通知如下。
一、元旦：1月1日（周五）至3日（周日）放假，共3天。
二、春节：2月6日（农历除夕、周六）至14日（农历正月初八、周日）放假调休，共9天。2月20日（周六）上班。
节假日期间，各地区、各部门要妥善安排好值班和安全、保卫等工作。
"""
