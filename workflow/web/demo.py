"""``rectiflow serve --demo``: a realistic demo campaign with a measure in every state, and a
login for every role. Loading twice changes nothing but the demo passwords."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from workflow import events
from workflow.importers.ledger import LedgerRow, write_rows
from workflow.lifecycle import Action, Kind, Relation, Role
from workflow.models import Campaign, Measure, Person
from workflow.passwords import hash_password
from workflow.services.measures import ActionRequest, perform
from workflow.services.people import add_person, get_or_create_unit
from workflow.timeutil import local_date

DEMO_CAMPAIGN = "（演示）校党委第三轮巡察反馈问题整改"
DEMO_PASSWORD = "demo-2026"


@dataclass(frozen=True)
class DemoLogin:
    role: str
    name: str
    email: str


#: (name, email, roles, unit, what they do in the demo)
PEOPLE = [
    ("王书记", "shuji@demo.rectiflow.cn", (Role.LEADER,), "后勤党总支", "第一责任人"),
    ("李处长", "chuzhang@demo.rectiflow.cn", (Role.LEADER,), "后勤处", "责任领导"),
    ("赵主任", "zhengaiban@demo.rectiflow.cn", (Role.REVIEWER,), "整改办", "整改办（核验）"),
    ("陈经理", "shitang@demo.rectiflow.cn", (Role.OWNER,), "饮食服务中心", "责任人（饮食服务中心）"),
    ("刘科长", "wuye@demo.rectiflow.cn", (Role.OWNER,), "物业管理科", "责任人（物业管理科）"),
    ("周干事", "ganshi@demo.rectiflow.cn", (Role.OWNER,), "饮食服务中心", "责任部门成员"),
    ("系统管理员", "admin@demo.rectiflow.cn", (Role.ADMIN,), "整改办", "管理员"),
    ("孙同志", "chakan@demo.rectiflow.cn", (Role.VIEWER,), None, "只读查看"),
    ("吴主任", "xunchaban@demo.rectiflow.cn", (Role.SUPERVISOR,), "党委巡察办",
     "巡察办（督导催办）"),
]

# (area, problem, measure, owner email, unit, days from today to the deadline, kind, steps)
A1 = "（一）学习贯彻党的创新理论有差距"
A2 = "（二）落实全面从严治党责任有短板"
A3 = "（三）后勤服务保障存在薄弱环节"
P1 = "理论学习中心组学习计划性不强，学习内容与后勤工作结合不紧"
MEASURES = [
    (A1, P1, "制定年度理论学习计划，每季度开展一次专题研讨",
     "shitang", "饮食服务中心", 20, Kind.DEADLINE, ["start"]),
    (A1, P1, "建立学习台账，按月通报学习情况",
     "shitang", "饮食服务中心", -6, Kind.DEADLINE, ["start"]),
    (A1, "“第一议题”制度落实不到位", "修订党总支会议议事规则，将“第一议题”列为固定议程",
     "shitang", "饮食服务中心", 3, Kind.IMMEDIATE, []),
    (A2, "食堂原材料采购管理不规范，存在廉洁风险", "修订食堂原材料采购管理办法，实行询价比价和集体决策",
     "shitang", "饮食服务中心", 10, Kind.DEADLINE, ["start", "submit"]),
    (A2, "食堂原材料采购管理不规范，存在廉洁风险", "开展采购领域廉洁风险排查，形成风险点清单",
     "shitang", "饮食服务中心", 5, Kind.DEADLINE, ["start", "submit", "verify"]),
    (A2, "物业服务合同履约监管不严", "对物业服务合同开展履约评价，评价结果与费用支付挂钩",
     "wuye", "物业管理科", -2, Kind.DEADLINE, ["start", "submit", "verify"]),
    (A2, "物业服务合同履约监管不严", "建立物业服务月度考核制度",
     "wuye", "物业管理科", -20, Kind.DEADLINE, ["start", "submit", "verify", "close"]),
    (A2, "干部谈心谈话开展不经常", "班子成员每半年与分管科室负责人谈心谈话一次",
     "wuye", "物业管理科", 40, Kind.LONG_TERM, ["start", "submit", "reject"]),
    (A3, "学生公寓维修响应不及时", "开通24小时报修平台，一般维修48小时内办结",
     "wuye", "物业管理科", -12, Kind.DEADLINE, ["start", "extend"]),
    (A3, "学生公寓维修响应不及时", "每学期开展一次公寓设施安全检查",
     "wuye", "物业管理科", 60, Kind.LONG_TERM, ["start", "submit", "verify", "close"]),
    (A3, "食堂饭菜价格和质量学生满意度不高", "建立伙食价格监测和学生满意度测评机制",
     "shitang", "饮食服务中心", 1, Kind.DEADLINE, ["start"]),
    (A3, "食堂饭菜价格和质量学生满意度不高", "成立学生伙食管理委员会，每月召开一次座谈会",
     "shitang", "饮食服务中心", -1, Kind.IMMEDIATE, []),
]
COMMENTS = {
    "submit": "已按要求完成，相关制度文件已印发，会议纪要和签到表附后。",
    "reject": "佐证材料不全：缺少谈心谈话记录，请补充后重新提交。",
    "extend": "涉及信息化平台采购，需走招标程序，申请延期。",
}


def _people(session: Session, password_hash: str) -> dict[str, Person]:
    found: dict[str, Person] = {}
    for name, email, roles, unit, _label in PEOPLE:
        person = session.scalar(select(Person).where(Person.email == email))
        if person is None:
            person = add_person(session, name=name, email=email, roles=roles, unit=unit)
        person.password_hash = password_hash
        found[email.split("@")[0]] = person
    return found


def load_demo(session: Session, now: datetime) -> list[DemoLogin]:
    """Create the demo campaign once; set every demo person's password; return the logins."""
    hq = get_or_create_unit(session, "后勤处")
    for unit in ("饮食服务中心", "物业管理科"):
        get_or_create_unit(session, unit, hq)
    get_or_create_unit(session, "后勤党总支")
    people = _people(session, hash_password(DEMO_PASSWORD))
    logins = [DemoLogin(label, name, email) for name, email, _r, _u, label in PEOPLE]
    if session.scalar(select(Campaign.id).where(Campaign.title == DEMO_CAMPAIGN)) is not None:
        return logins
    today = local_date(now)
    created = now - timedelta(days=45)
    campaign = Campaign(title=DEMO_CAMPAIGN, feedback_date=today - timedelta(days=45),
                        first_responsible_id=people["shuji"].id, created_at=created)
    session.add(campaign)
    session.flush()
    rows = [LedgerRow(row=i + 2, seq=str(i + 1), area=area, problem=problem, title=title,
                      leader_id=people["chuzhang"].id, unit=unit, owner_id=people[owner].id,
                      deadline=today + timedelta(days=days), kind=kind)
            for i, (area, problem, title, owner, unit, days, kind, _steps) in enumerate(MEASURES)]
    # The demo's past weeks happened before it started: its history is written, but nobody is
    # told of it now (a "新交办" 45 days late, a 销号 of two weeks ago); the sweeps take it from here.
    with events.silenced(session):
        _play_history(session, campaign, rows, created, people)
    return logins


def _play_history(session: Session, campaign: Campaign, rows: list[LedgerRow],
                  created: datetime, people: dict[str, Person]) -> None:
    write_rows(session, campaign, rows, created)
    measures = session.scalars(select(Measure).where(Measure.campaign_id == campaign.id)
                               .order_by(Measure.id)).all()
    # who does each step, and the demo person in each relation besides the measure's owner
    actors = {Action.START: Relation.OWNER, Action.SUBMIT: Relation.OWNER,
              Action.VERIFY: Relation.REVIEWER, Action.REJECT: Relation.REVIEWER,
              Action.CLOSE: Relation.LEADER, Action.EXTEND: Relation.LEADER}
    played_by = {Relation.REVIEWER: people["zhengaiban"], Relation.LEADER: people["chuzhang"]}
    for measure, spec in zip(measures, MEASURES, strict=True):
        for step, action in enumerate(spec[7]):
            who = actors[Action(action)]
            actor = measure.owner if who is Relation.OWNER else played_by[who]
            assert actor is not None
            deadline: date | None = (measure.deadline + timedelta(days=30)
                                     if action == Action.EXTEND and measure.deadline else None)
            perform(session, ActionRequest(
                measure_id=measure.id, action=Action(action), actor=actor,
                comment=COMMENTS.get(action), deadline=deadline),
                now=created + timedelta(days=10 + step * 7))
