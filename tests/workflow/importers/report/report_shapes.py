"""Documents in the other shapes offices write, for the report importer's tests; none is a seed.

* ``HEAD_RESULTS``: a narrative report whose results stand at the head of each account
  ("整改情况：已完成整改。…"), with four account labels, 1、 and （1） numbering, "一是…二是…"
  lists, long-term items counted among the completed ("其中需长期坚持的2项") and a stated rate.
* ``AREA_HEADINGS``: areas as "一、…方面存在的问题", problems as "（一）", sub-problems as "①②",
  results counted per problem with long-term items apart ("长期建设2项"), "2个大方面5个大项".
* ``NOTICE``: a meeting notice that talks about rectification and lists no results.
* ``build_problem_list_docx``: a Word 问题清单 table with a merged 方面 column and a 完成情况 column.
* ``build_letter_docx``: a Word letter with no list at all.
"""

from __future__ import annotations

from pathlib import Path

HEAD_RESULTS = """\
关于区审计局审计反馈问题整改情况的报告

区委：
　　根据区委统一部署，区审计局于2024年11月对我局开展了预算执行审计，并于2025年1月反馈了审计意见。现将整改情况报告如下。

一、整改工作总体情况
　　局党组对审计反馈的3个方面、6项问题照单全收，细化为7项整改任务，逐项明确责任领导和完成时限。截至目前，已整改到位6项，其中需长期坚持的2项；正在推进1项。整改完成率85.7%。

二、具体问题整改情况
（一）预算执行方面
1、部分项目预算执行进度偏慢。
整改情况：已完成整改。2025年3月对12个项目逐一督导，执行率提升至92%。
2、结转资金未及时清理。
整改进展：已整改到位并长期坚持。一是建立结转资金季度清理机制；二是2025年4月清理结转资金86万元。
（二）资产管理方面
1、固定资产账实不符。
（1）办公设备未入账。
落实情况：已完成整改。2025年2月补记入账设备41台。
（2）报废资产未核销。
落实情况：正在推进。已向区财政局提交核销申请，待批复。
2、公务用车登记不全。
完成情况：已办结。2025年2月补齐车辆使用登记台账。
（三）内部控制方面
1、合同审核流程不规范。
整改情况：已完成并长期坚持。修订《合同管理办法》，实行法律顾问审核制。
2、内控制度更新滞后。
整改情况：已完成整改。2025年5月印发内控制度汇编。

三、下一步工作打算
（一）巩固整改成果。对已完成的事项开展“回头看”。
（二）健全长效机制。
"""

#: The same report with every full-width colon and parenthesis written half-width.
HEAD_RESULTS_HALF_WIDTH = HEAD_RESULTS.translate(str.maketrans("：（），；", ":(),;"))
#: The same report with no colon after the account labels ("整改情况 已完成整改。").
HEAD_RESULTS_NO_COLON = (HEAD_RESULTS.replace("情况：已", "情况 已").replace("情况：正在", "情况 正在")
                         .replace("进展：已", "进展 已"))

AREA_HEADINGS = """\
关于巡察反馈意见整改进展情况的通报

根据工作安排，现将整改进展通报如下。针对巡察反馈的2个大方面5个大项，我们梳理出整改措施6条。目前已经整改完成3项，占比60.0%；长期建设2项，占比40.0%。

一、党的建设方面存在的问题
（一）基层党组织活动不规范。
整改情况：已整改到位。2025年1月起各支部按月开展主题党日活动。
（二）党员教育管理不到位。
①流动党员底数不清。
整改情况：已完成整改。2025年2月完成流动党员排查登记。
②发展党员程序不严。
整改情况：已整改到位并长期坚持。每批发展对象均经支委会集体审查。
（三）谈心谈话开展不经常。
整改情况：已完成整改。建立谈心谈话台账，2025年3月完成全覆盖谈话。
二、业务工作方面存在的问题
（一）服务窗口办事效率不高。
整改情况：已完成。推行一次性告知制度，2025年4月办理时限压缩三分之一。
（二）制度修订滞后。
整改情况：已完成整改并长期坚持。每年一季度集中清理修订制度。
"""

NOTICE = """\
关于召开巡察整改工作推进会的通知

各部门：
为推进巡察反馈问题整改，定于2025年3月10日下午召开推进会。现将有关事项通知如下：
一、会议时间
2025年3月10日下午3:00
二、参会人员
各部门主要负责人
三、会议内容
（一）通报反馈问题整改进展情况；
（二）部署下一步整改工作。
四、有关要求
1.请各部门做好汇报准备。
"""

#: The 问题清单 table: 方面 written once for a block of rows (merged), results in 完成情况.
PROBLEM_LIST_ROWS = [
    ("1", "制度建设", "采购制度未及时修订", "修订采购管理办法", "资产处", "2025年6月底", "已完成"),
    ("2", "制度建设", "合同台账不完整", "补齐合同台账", "法务办", "2025年5月", "正在推进"),
    ("3", "作风建设", "窗口服务态度生硬", "开展窗口服务培训", "办公室", "长期", "已完成并长期坚持"),
    ("4", "作风建设", "会议过多过长", "精简会议", "办公室", "2025年4月", "已办结"),
]


def build_problem_list_docx(path: Path) -> Path:
    """A Word document: a short narrative with its totals, then the 问题清单 as a table whose
    方面 cells are merged over their rows."""
    import docx

    document = docx.Document()
    document.add_paragraph("关于专项检查发现问题整改情况的报告")
    document.add_paragraph("专项检查共梳理问题清单4条，已办结2件、正在办理1件，长期坚持1件。")
    document.add_paragraph("附件：问题清单")
    header = ("序号", "方面", "问题", "整改措施", "责任单位", "完成时限", "完成情况")
    table = document.add_table(rows=1 + len(PROBLEM_LIST_ROWS), cols=len(header))
    for cell, value in zip(table.rows[0].cells, header, strict=True):
        cell.text = value
    for row, values in zip(table.rows[1:], PROBLEM_LIST_ROWS, strict=True):
        for position, (cell, value) in enumerate(zip(row.cells, values, strict=True)):
            if position != 1:
                cell.text = value
    for first in (1, 3):  # 方面 merged over two rows each, written once
        merged = table.cell(first, 1).merge(table.cell(first + 1, 1))
        merged.text = PROBLEM_LIST_ROWS[first - 1][1]
    document.save(str(path))
    return path


def build_letter_docx(path: Path) -> Path:
    """A Word document that is not a report: a letter with no numbered list."""
    import docx

    document = docx.Document()
    document.add_paragraph("致全体教职工的一封信")
    document.add_paragraph("各位老师：新学期伊始，感谢大家一年来的辛勤付出。")
    document.add_paragraph("祝工作顺利！")
    document.save(str(path))
    return path
