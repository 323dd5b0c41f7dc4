"""Documents for the report importer's tests, written in the style of real reports; none is a
seed. Also a .docx built the way a Word user writes one."""

from __future__ import annotations

from pathlib import Path

#: A rectification report: non-problem sections numbered like the problem part, full- and
#: half-width punctuation, every result marker, sub-items in three styles, an area whose text
#: stands directly under it, a numbered list running on inside a progress text, extra blank
#: lines, and totals that disagree with the list in one place (8 measures stated, 7 listed).
REPORT = """\
关于第三轮巡察反馈意见整改情况的报告

根据校党委统一部署，校党委第二巡察组于2024年3月对我处开展巡察，并于2024年5月反馈了巡察意见。现将整改情况报告如下。

一、组织整改落实情况
（一）提高政治站位。处党支部召开专题会议，研究部署整改工作。
（二）压实整改责任。建立整改台账，对账销号。

二、反馈问题整改情况
（一）反馈问题：政治理论学习有差距
1.学习制度不健全。未制定年度学习计划。
整改结果：完成
整改情况：2024年6月制定了年度学习计划；2024年7月18日、10月11日组织集中学习。


2、学习形式单一。集中学习以读文件为主。
整改结果:已完成
整改进展情况:2024年9月开展研讨交流2次。
(二)反馈问题:制度执行不严格
1.采购程序不规范
问题表现(1)：询价记录不全。
整改结果：基本完成，长期建设。
整改情况：修订了采购管理办法。
问题表现（2）：验收人数不足。
整改结果：已完成整改并长期坚持
整改情况：①建立三人验收制度；
②每月抽查验收记录；
③ 2024年10月起纳入考核。
2.合同审核超时。
整改结果 暂未完成
整改措施：梳理合同清单，明确审核时限。
整改情况：2024年11月已梳理完毕，正在推进。

（三）反馈问题：作风建设有短板
2023年以来，部分窗口服务态度生硬，群众反映较多。
问题①：窗口服务不规范。
整改结果：完成
整改情况：2024年8月开展窗口服务培训。
问题②：投诉处理不及时。
整改情况：建立投诉台账，24小时内回应。

三、巡察整改成效
针对巡察组反馈的3个方面、5项问题，制定整改措施8条。目前已整改完成3项，长期建设1项，未完成1项。
（一）制度更完善。修订制度5项。

四、下一步工作安排
（一）巩固整改成果。
（二）建立长效机制。
"""

#: A progress report in the other common shape: "1.针对…问题。" with (1) items, an area with
#: (1) items directly, no 整改结果 at all, and a first paragraph that swallowed "一、".
PROGRESS_REPORT = """\
根据区委统一部署，区委巡察组对中心开展了巡察。一、整改工作开展情况
（一）党组落实整改情况。将巡察反馈的2方面5个问题逐一分解。
（二）整改事项完成情况。整改方案中制定的6条整改措施，已落实6条。
二、反馈意见整改进展情况
（一）关于贯彻落实上级部署不到位方面问题
1.针对学习不深入问题。
（1）中心组学习有差距。
整改进展情况：制定年度学习方案，2024年10月开展学习。
（2）节约型机关创建有短板。
整改进展情况：2024年12月6日公布了创建结果。
2.针对餐厅服务质量有待提升问题。
整改进展情况：每季度开展满意度调查。
（二）关于巡察整改不彻底方面问题
(1)固定资产管理不到位。
整改进展情况：已补记固定资产。
(2)合同签订不规范。
整改进展情况：建立合同审核机制。
三、今后整改工作打算
（一）深化整改落实。
（二）严格责任追究。
"""

#: A feedback list as the inspection team sends it: no results, no progress.
FEEDBACK = """\
校党委第一巡察组关于巡察后勤处党委的反馈意见
一、贯彻落实党的路线方针政策方面存在的问题
（一）学习贯彻不深入。
1.理论学习中心组学习不规范。
2.传达学习上级精神不及时。
（二）服务保障不到位。
1.维修响应慢。
二、全面从严治党方面存在的问题
（一）廉洁风险防控不力。
1.采购程序不规范。
2.合同管理松散。
"""

#: A work plan whose problems are a table (cells on tab-led lines, rows between blank lines).
PLAN = """\
后勤领域专项治理工作方案
一、组织机构
学校成立专项治理工作领导小组。
二、组织实施责任分工
1.校办负责制定工作方案。
2.财务处负责对收费问题进行自查。
附件：专项治理责任清单

\t整治类别
\t自查自纠主要内容
\t责任单位

\t食堂管理及食品安全
\t对食堂食品安全情况进行自查。
\t后勤集团

\t财务收费及经费管理
\t对各类收费情况进行自查。
\t财务处
"""

#: A year's work summary: numbered like a report, mentions its rectification, lists no problem.
SUMMARY = """\
2021年工作总结
一、落实主体责任情况
1.加强党史学习教育。组织集中学习12次。
2.推动巡察整改落实。巡察组反馈的五个方面17个问题已全部完成整改。
二、下一步工作方向
1.加强队伍建设。
"""


def lines(text: str) -> list[str]:
    return text.splitlines()


def _add_numbering(document, fmt: str, text: str) -> str:
    """Add a one-level Word list (format, level text) to the document; return its numId."""
    from docx.oxml import parse_xml
    from docx.oxml.ns import nsdecls

    numbering = document.part.numbering_part.element
    abstract_id = str(900 + len(numbering.findall(
        "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}abstractNum")))
    abstract = parse_xml(
        f'<w:abstractNum {nsdecls("w")} w:abstractNumId="{abstract_id}"><w:lvl w:ilvl="0">'
        f'<w:start w:val="1"/><w:numFmt w:val="{fmt}"/><w:lvlText w:val="{text}"/></w:lvl>'
        f'</w:abstractNum>')
    numbering.insert(0, abstract)
    num_id = str(800 + int(abstract_id) - 900)
    numbering.append(parse_xml(f'<w:num {nsdecls("w")} w:numId="{num_id}">'
                               f'<w:abstractNumId w:val="{abstract_id}"/></w:num>'))
    return num_id


def _numbered(document, text: str, num_id: str):
    from docx.oxml import parse_xml
    from docx.oxml.ns import nsdecls

    paragraph = document.add_paragraph(text)
    paragraph._p.get_or_add_pPr().append(parse_xml(
        f'<w:numPr {nsdecls("w")}><w:ilvl w:val="0"/><w:numId w:val="{num_id}"/></w:numPr>'))
    return paragraph


def build_docx(path: Path) -> Path:
    """A report as a Word user writes it: typed numbers, Word's automatic numbers, and a table."""
    import docx

    document = docx.Document()
    document.add_paragraph("关于巡察反馈意见整改情况的报告")
    sections = _add_numbering(document, "chineseCounting", "%1、")
    circled = _add_numbering(document, "decimalEnclosedCircle", "问题%1：")
    _numbered(document, "组织整改落实情况", sections)
    document.add_paragraph("（一）提高政治站位。召开专题会议。")
    _numbered(document, "反馈问题整改情况", sections)
    document.add_paragraph("（一）反馈问题：学习有差距")
    document.add_paragraph("1.学习制度不健全。")
    document.add_paragraph("整改结果：完成")
    document.add_paragraph("整改情况：2024年6月制定了学习计划。")
    document.add_paragraph("2.工作效能有待提升。")
    _numbered(document, "合同审核超时。", circled)
    document.add_paragraph("整改结果：基本完成，长期建设")
    _numbered(document, "资产移交滞后。", circled)
    document.add_paragraph("整改结果：暂未完成")
    document.add_paragraph("整改情况：2024年12月5日完成交接。")
    _numbered(document, "巡察整改成效", sections)
    document.add_paragraph("针对反馈的2个方面、3项问题，制定整改措施4条。")
    document.add_paragraph("附件：整改责任清单")
    table = document.add_table(rows=3, cols=3)
    for row, cells in zip(table.rows, [("整治类别", "主要内容", "责任单位"),
                                       ("食堂管理", "对食堂食品安全进行自查。", "后勤集团"),
                                       ("收费管理", "对各类收费进行自查。", "财务处")], strict=True):
        for cell, value in zip(row.cells, cells, strict=True):
            cell.text = value
    document.save(str(path))
    return path
