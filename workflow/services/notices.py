"""督办 documents: issued by the sweep when an escalation stage names one, numbered per kind and
year, read, downloaded as Word, and answered (回执).

Issuing runs in the sweep's transaction. A document's number comes from ``notice_counter``
(``UPDATE … SET last = last + n … RETURNING last``): on PostgreSQL the row lock makes a second
transaction wait for the first to commit and then read its number, so two issuers never give the
same number; the unique (kind, year, seq) constraint guards it besides. A number is never given
again: the counter only grows, and a rolled-back transaction rolls back its document with it.
``stage_key`` (measure, deadline, stage) makes the same stage issue its document once, however
many sweeps reach it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy import Table, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, joinedload

from workflow import gongwen
from workflow.errors import InputError, NotFound, NotPermitted
from workflow.lifecycle import (
    DOCUMENT_KINDS,
    NOTICE_ISSUERS,
    NOTICE_READERS,
    NOTICE_REPLIERS,
    STATE_LABELS,
    DocumentKind,
    Relation,
    State,
)
from workflow.models import Campaign, Measure, NoticeCounter, OfficialNotice, Person, Problem
from workflow.reminders import WorkdayIndex
from workflow.services.measures import relations_with_delegation
from workflow.services.people import find_person
from workflow.timeutil import local_date

#: Who issues a campaign's documents when it names no supervising office.
DEFAULT_ISSUER = "整改工作领导小组办公室"
REPLY_LIMIT = 5000
#: ids or keys looked up per statement: a sweep issues the documents of a whole burst in one
#: call, and a statement carries at most 32,766 parameters on SQLite and 65,535 on PostgreSQL
CHUNK = 1000


@dataclass(frozen=True)
class DocumentRequest:
    """A stage the sweep reached that names a document: for this measure, this kind."""

    measure_id: int
    kind: DocumentKind
    stage: str       # the rule, ``overdue:1``
    stage_key: str   # measure, deadline and stage: the document is issued once for it
    deadline: date
    reply_days: int


@dataclass(frozen=True)
class IssuedNotice:
    """What a message needs to link to a document."""

    id: int
    kind: str
    number: str
    new: bool = False  # issued by this call, not found issued before

    def as_payload(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "number": self.number,
                "label": DOCUMENT_KINDS[DocumentKind(self.kind)].label}


def format_number(year: int, seq: int) -> str:
    """〔2026〕7号 (六角括号, as GB/T 9704 writes 发文字号)."""
    return f"〔{year}〕{seq}号"


def allocate_numbers(session: Session, kind: DocumentKind, year: int, count: int = 1) -> range:
    """The next ``count`` numbers of ``kind`` in ``year``, taken in the caller's transaction
    with one statement (a burst issues thousands at once)."""
    table = NoticeCounter.__table__
    dialect = sqlite if session.get_bind().dialect.name == "sqlite" else postgresql
    session.execute(dialect.insert(table)  # type: ignore[arg-type]
                    .values(kind=kind.value, year=year, last=0)
                    .on_conflict_do_nothing(index_elements=["kind", "year"]))
    last = int(session.scalar(
        update(table).where(table.c.kind == kind.value, table.c.year == year)  # type: ignore[arg-type]
        .values(last=table.c.last + count).returning(table.c.last)) or 0)
    return range(last - count + 1, last + 1)


def allocate_number(session: Session, kind: DocumentKind, year: int) -> int:
    """The next number of ``kind`` in ``year``."""
    return allocate_numbers(session, kind, year, 1)[0]


def _facts(measure: Measure, campaign: Campaign, request: DocumentRequest, today: date,
           days: WorkdayIndex) -> tuple[dict[str, Any], date]:
    """What the document says, as of its issue."""
    reply_due = days.nth_after(today, request.reply_days)
    original = measure.original_deadline or request.deadline
    return {
        "campaign": campaign.title,
        "unit": measure.unit.name if measure.unit else None,
        "owner": measure.owner.name if measure.owner else None,
        "leader": measure.leader.name if measure.leader else None,
        "area": measure.problem.area.title,
        "problem": measure.problem.text,
        "measure": measure.title,
        "seq": measure.seq,
        "state": STATE_LABELS[State(measure.state)],
        "original_deadline": original.isoformat(),
        "deadline": request.deadline.isoformat(),
        "days_overdue": days.count_between(request.deadline, today),
        "issued_on": today.isoformat(),
        "reply_due": reply_due.isoformat(),
        "issuer": campaign.supervising_office or DEFAULT_ISSUER,
    }, reply_due


def issue_notices(session: Session, requests: Sequence[DocumentRequest], *, now: datetime,
                  days: WorkdayIndex) -> dict[str, IssuedNotice]:
    """Issue the documents ``requests`` name (those issued before are found, not issued again);
    returns every request's document by its ``stage_key``."""
    if not requests:
        return {}
    keys = sorted({r.stage_key for r in requests})
    found: dict[str, IssuedNotice] = {}
    for start in range(0, len(keys), CHUNK):
        for key, nid, kind, number in session.execute(
                select(OfficialNotice.stage_key, OfficialNotice.id, OfficialNotice.kind,
                       OfficialNotice.number)
                .where(OfficialNotice.stage_key.in_(keys[start:start + CHUNK]))):
            found[key] = IssuedNotice(nid, kind, number)
    wanted = {r.stage_key: r for r in requests if r.stage_key not in found}
    if not wanted:
        return found
    measure_ids = sorted({r.measure_id for r in wanted.values()})
    measures: dict[int, Measure] = {}
    for start in range(0, len(measure_ids), CHUNK):
        measures.update((m.id, m) for m in session.scalars(
            select(Measure).options(joinedload(Measure.unit), joinedload(Measure.owner),
                                    joinedload(Measure.leader), joinedload(Measure.campaign),
                                    joinedload(Measure.problem).joinedload(Problem.area))
            .where(Measure.id.in_(measure_ids[start:start + CHUNK]))).unique())
    today = local_date(now)
    ordered = sorted(wanted.values(), key=lambda r: (r.measure_id, r.stage_key))
    numbers: dict[str, int] = {}
    for kind in DocumentKind:  # numbers follow the measures' order within each kind
        of_kind = [r for r in ordered if r.kind is kind]
        if of_kind:
            taken = allocate_numbers(session, kind, today.year, len(of_kind))
            numbers.update(zip((r.stage_key for r in of_kind), taken, strict=True))
    rows: list[dict[str, Any]] = []
    for request in ordered:
        measure = measures[request.measure_id]
        facts, reply_due = _facts(measure, measure.campaign, request, today, days)
        seq = numbers[request.stage_key]
        rows.append({"measure_id": measure.id, "campaign_id": measure.campaign_id,
                     "kind": request.kind.value, "year": today.year, "seq": seq,
                     "number": format_number(today.year, seq), "stage": request.stage,
                     "stage_key": request.stage_key, "facts": facts, "created_at": now,
                     "reply_due": reply_due})
    # One executemany, then the new ids read back by their unique stage keys: SQLite cannot
    # batch INSERT ... RETURNING in parameter order (one statement a row for a burst's
    # thousands of documents).
    session.execute(insert(cast(Table, OfficialNotice.__table__)), rows)
    by_key = {row["stage_key"]: row for row in rows}
    new_keys = sorted(by_key)
    for start in range(0, len(new_keys), CHUNK):
        for key, notice_id in session.execute(
                select(OfficialNotice.stage_key, OfficialNotice.id)
                .where(OfficialNotice.stage_key.in_(new_keys[start:start + CHUNK]))):
            row = by_key[key]
            found[key] = IssuedNotice(notice_id, row["kind"], row["number"], new=True)
    return found


#: Working days a unit has to answer a document issued by hand.
HAND_REPLY_DAYS = 5


def issue_by_hand(session: Session, measure_id: int, kind: DocumentKind, *,
                  actor: str | Person, now: datetime, days: WorkdayIndex,
                  reply_days: int = HAND_REPLY_DAYS) -> IssuedNotice:
    """Issue a 督办 document for an open measure by hand (the 巡察办, the campaign's 整改办 or
    an admin), numbered like the sweep's. Once per measure, deadline and kind: asking again
    returns the document already issued."""
    measure = session.get(Measure, measure_id)
    if measure is None:
        raise NotFound("整改措施", measure_id)
    person = actor if isinstance(actor, Person) else find_person(session, actor)
    label = DOCUMENT_KINDS[kind].label
    if not relations_with_delegation(session, person, measure, local_date(now)) & NOTICE_ISSUERS:
        raise NotPermitted(person.name, f"签发{label}", measure_id,
                           [r.label for r in Relation if r in NOTICE_ISSUERS])
    if State(measure.state) not in (State.ASSIGNED, State.IN_PROGRESS):
        raise InputError(f"措施 {measure_id} 当前为「{STATE_LABELS[State(measure.state)]}」，"
                         f"只有未完成的措施可以签发{label}", field="kind")
    deadline = measure.deadline or local_date(now)
    key = f"{measure_id}|{deadline.isoformat()}|manual:{kind.value}"
    issued = issue_notices(session, [DocumentRequest(
        measure_id=measure_id, kind=kind, stage=f"manual:{kind.value}", stage_key=key,
        deadline=deadline, reply_days=reply_days)], now=now, days=days)
    return issued[key]


# ------------------------------------------------------------------ reading and answering


def notice_dict(notice: OfficialNotice) -> dict[str, Any]:
    """The contract shape (``notice list --json``) and a little more."""
    return {
        "id": notice.id,
        "measure_id": notice.measure_id,
        "campaign_id": notice.campaign_id,
        "kind": notice.kind,
        "kind_label": DOCUMENT_KINDS[DocumentKind(notice.kind)].label,
        "number": notice.number,
        "stage": notice.stage,
        "created_at": notice.created_at.isoformat(),
        "unit": notice.facts.get("unit"),
        "reply_due": notice.reply_due.isoformat() if notice.reply_due else None,
        "reply": None if notice.replied_at is None else {
            "text": notice.reply_text,
            "by": notice.replied_by.email if notice.replied_by else None,
            "at": notice.replied_at.isoformat()},
    }


def list_notices(session: Session, *, campaign_id: int | None = None,
                 measure_id: int | None = None) -> Sequence[OfficialNotice]:
    """Documents in issue order, of one campaign or measure or all."""
    query = (select(OfficialNotice).options(joinedload(OfficialNotice.replied_by))
             .order_by(OfficialNotice.id))
    if campaign_id is not None:
        if session.get(Campaign, campaign_id) is None:
            raise NotFound("整改任务", campaign_id)
        query = query.where(OfficialNotice.campaign_id == campaign_id)
    if measure_id is not None:
        query = query.where(OfficialNotice.measure_id == measure_id)
    return session.scalars(query).all()


def load_notice(session: Session, notice_id: int) -> OfficialNotice:
    notice = session.scalar(select(OfficialNotice).options(
        joinedload(OfficialNotice.measure).joinedload(Measure.campaign),
        joinedload(OfficialNotice.replied_by)).where(OfficialNotice.id == notice_id))
    if notice is None:
        raise NotFound("督办文书", notice_id)
    return notice


def may_read(session: Session, person: Person, notice: OfficialNotice, on: date) -> bool:
    """The measure's leader, first responsible, owner and unit, the 整改办 and admins."""
    return bool(relations_with_delegation(session, person, notice.measure, on) & NOTICE_READERS)


def check_reader(session: Session, person: Person, notice: OfficialNotice, on: date) -> None:
    if not may_read(session, person, notice, on):
        raise NotPermitted(person.name, "查看督办文书", notice.measure_id,
                           [r.label for r in Relation if r in NOTICE_READERS])


def record_reply(session: Session, notice_id: int, *, actor: str | Person, text: str,
                 now: datetime) -> OfficialNotice:
    """Record the unit's written reply (回执) to a document, once."""
    notice = load_notice(session, notice_id)
    person = actor if isinstance(actor, Person) else find_person(session, actor)
    rels = relations_with_delegation(session, person, notice.measure, local_date(now))
    if not rels & NOTICE_REPLIERS:
        raise NotPermitted(person.name, "登记回执", notice.measure_id,
                           [r.label for r in Relation if r in NOTICE_REPLIERS])
    text = (text or "").strip()
    if not text:
        raise InputError("回执内容不能为空", field="comment")
    if len(text) > REPLY_LIMIT:
        raise InputError(f"回执过长（{len(text)} 字，最多 {REPLY_LIMIT} 字）", field="comment")
    if notice.replied_at is not None:
        raise InputError(f"督办文书 {notice.id}（{notice.number}）已于 "
                         f"{local_date(notice.replied_at)} 登记回执，不能重复登记", field="comment")
    notice.reply_text, notice.replied_at, notice.replied_by = text, now, person
    session.flush()
    return notice


# ------------------------------------------------------------------ the Word file


def _cn_date(iso: str) -> str:
    day = date.fromisoformat(iso)
    return f"{day.year}年{day.month}月{day.day}日"


def notice_paragraphs(notice: OfficialNotice) -> list[gongwen.Paragraph]:
    """The document: title, number, the unit addressed, the facts, what is required and by
    when, and the people responsible."""
    P, R = gongwen.Paragraph, gongwen.Part
    form = DOCUMENT_KINDS[DocumentKind(notice.kind)]
    f = notice.facts
    unit = f.get("unit") or f.get("owner") or "责任单位"
    deadlines = f"原定完成时限为{_cn_date(f['original_deadline'])}"
    if f["deadline"] != f["original_deadline"]:
        deadlines += f"，现完成时限为{_cn_date(f['deadline'])}"
    seq = f"（台账序号{f['seq']}）" if f.get("seq") else ""
    facts = (f"你单位承担的{gongwen.subject_of(f['campaign'])}整改措施“{f['measure']}”{seq}，"
             f"{deadlines}。"
             f"截至{_cn_date(f['issued_on'])}，该措施已逾期{f['days_overdue']}个工作日，"
             f"仍未完成整改（当前状态：{f['state']}）。")
    problem = f"该措施针对的问题：{f['area']}——{f['problem']}"
    requirement = form.requirement.format(reply_due=_cn_date(f["reply_due"]), issuer=f["issuer"])
    people = "；".join(part for part in (
        f"责任领导：{f['leader']}" if f.get("leader") else "",
        f"责任人：{f['owner']}" if f.get("owner") else "") if part)
    shown = [P(R.TITLE, form.label), P(R.NUMBER, notice.number), P(R.BLANK),
             P(R.ADDRESSEE, f"{unit}："), P(R.BODY, facts), P(R.BODY, problem.rstrip("。") + "。"),
             P(R.BODY, requirement)]
    if people:
        shown.append(P(R.BODY, people + "。"))
    return shown


def notice_docx(notice: OfficialNotice) -> bytes:
    form = DOCUMENT_KINDS[DocumentKind(notice.kind)]
    return gongwen.write(notice_paragraphs(notice), title=f"{form.label}（{notice.number}）",
                         signer=notice.facts["issuer"],
                         date_text=_cn_date(notice.facts["issued_on"]))


def notice_filename(notice: OfficialNotice) -> str:
    form = DOCUMENT_KINDS[DocumentKind(notice.kind)]
    return f"{form.label}{notice.number}.docx"

