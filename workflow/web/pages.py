"""Pages for people: 我的事项, 台账 (with Excel export), the measure page, evidence downloads and
待我销号. Handlers read the request, call services in one transaction, and render."""

from __future__ import annotations

import io
import re
from datetime import date, datetime
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, RedirectResponse, Response, StreamingResponse
from sqlalchemy import String, cast, or_, select
from sqlalchemy.orm import Session, joinedload, selectinload
from starlette.datastructures import FormData, UploadFile

from workflow.errors import InputError, NotFound, RectiflowError
from workflow.evidence import StoredFile
from workflow.ledger import (
    SORTS,
    MeasureFilter,
    acceptance_dict,
    deadline_health,
    ledger_page,
    measure_query,
)
from workflow.lifecycle import (
    DOCUMENT_KINDS,
    KIND_LABELS,
    NOTICE_READERS,
    NOTICE_REPLIERS,
    RECHECK_RESULTS,
    STATE_LABELS,
    TRANSITIONS,
    Action,
    Kind,
    Need,
    Relation,
    Role,
    State,
    SystemAction,
    available_actions,
    parse_action,
)
from workflow.models import (
    Area,
    Campaign,
    Evidence,
    HistoryEntry,
    Measure,
    Person,
    ProgressReport,
    Unit,
)
from workflow.services.measures import (
    ActionRequest,
    load_measure,
    perform,
    relations_with_delegation,
    report_progress,
)
from workflow.services.notices import list_notices
from workflow.services.people import principals_for
from workflow.services.visibility import Scope, foreign_units
from workflow.services.worklist import closure_queue, my_work
from workflow.web.api import Id, named_people_are_input
from workflow.web.auth import check_csrf, csrf_token, page_person
from workflow.web.context import Web, web_of

router = APIRouter(include_in_schema=False)

ERROR_TITLES = {400: "请求有误", 401: "需要登录", 403: "无权操作", 404: "找不到", 409: "无法执行",
                410: "链接已失效", 422: "输入有误", 429: "请稍后再试"}
#: Relations that may write a progress report without a state change (``report_progress``).
PROGRESS_RELATIONS = frozenset({Relation.OWNER, Relation.UNIT_MEMBER, Relation.ADMIN,
                                Relation.LEADER, Relation.ASSISTING_MEMBER})
PER_PAGE = 50


def error_page(request: Request, exc: RectiflowError) -> Response:
    web = web_of(request)
    match = re.match(r"^/measures/(\d+)/", request.url.path)
    context = {"title": getattr(exc, "title", None) or ERROR_TITLES.get(exc.http_status, "出错了"),
               "message": str(exc), "status": exc.http_status,
               "back": f"/measures/{match.group(1)}" if match else None, "person": None}
    return web.render(request, "error.html", context, status_code=exc.http_status)


def flash(request: Request, kind: str, text: str) -> None:
    # Assigned, not appended in place: the session middleware writes the cookie only when a key
    # is set, so a second flash before the next page would otherwise be lost.
    request.session["flash"] = [*request.session.get("flash", []), [kind, text]]


def page(request: Request, person: Person, nav: str, **values: Any) -> dict[str, Any]:
    """The context every signed-in page gets: the person, the CSRF token, flashes, the nav."""
    return {"person": person, "csrf": csrf_token(request), "nav": nav,
            "flashes": request.session.pop("flash", []), **values}


def _int(value: str | None) -> int | None:
    """A database id or number from a form or query; anything else is ignored (None)."""
    try:
        number = int(value) if value not in (None, "") else None
    except ValueError:
        return None
    return number if number is None or 0 <= number < 2**31 else None


def _choice(value: str | None, enum: type[State] | type[Kind]) -> Any:
    try:
        return enum(value) if value else None
    except ValueError:
        return None


def _day(value: str | None) -> date | None:
    """A date from a query (``YYYY-MM-DD``); anything else is ignored (None), as ``_int``."""
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


#: Ledger filters that the dashboard's figures link with and the filter form does not show:
#: name → how the ledger says it.
LINKED_FILTERS = {"inspected_unit": "被巡察单位", "area_title": "方面", "open": "仅未完成",
                  "due_from": "完成时限自", "due_to": "完成时限至",
                  "closed_from": "销号日期自", "closed_to": "销号日期至"}


def ledger_filter(request: Request) -> tuple[MeasureFilter, dict[str, str]]:
    q = request.query_params
    flt = MeasureFilter(
        campaign_id=_int(q.get("campaign")), area_id=_int(q.get("area")),
        unit_id=_int(q.get("unit")), leader_id=_int(q.get("leader")),
        state=_choice(q.get("state"), State), kind=_choice(q.get("kind"), Kind),
        overdue=q.get("overdue") == "1",
        area_title=(q.get("area_title") or "").strip() or None,
        inspected_unit=(q.get("inspected_unit") or "").strip() or None,
        due_from=_day(q.get("due_from")), due_to=_day(q.get("due_to")),
        closed_from=_day(q.get("closed_from")), closed_to=_day(q.get("closed_to")),
        open_only=q.get("open") == "1")
    shown = {k: q.get(k, "") for k in ("campaign", "area", "unit", "leader", "state", "kind",
                                       "overdue", "sort", "dir")}
    shown.update({
        "area_title": flt.area_title or "", "inspected_unit": flt.inspected_unit or "",
        "open": "1" if flt.open_only else "",
        **{k: getattr(flt, k).isoformat() if getattr(flt, k) else ""
           for k in ("due_from", "due_to", "closed_from", "closed_to")}})
    return flt, shown


#: Up to this many campaigns, the 方面, units and leaders of all are offered without choosing
#: a campaign first.
CHOICES_ACROSS_CAMPAIGNS = 20


def _options(session: Session, campaign_id: int | None, scope: Scope,
             hidden: set[int]) -> dict[str, Any]:
    """The filter's choices; nothing of another inspected unit (its campaigns, areas, units,
    leaders) is offered to someone whose scope stops at their own."""
    areas = select(Area.id, Area.title, Area.campaign_id).order_by(Area.campaign_id, Area.position)
    if campaign_id is not None:
        areas = areas.where(Area.campaign_id == campaign_id)
    campaigns = select(Campaign.id, Campaign.title).order_by(Campaign.id)
    if not scope.everything and scope.unit_campaigns is not None:
        seen = set(scope.unit_campaigns | scope.campaigns) | set(session.scalars(
            select(Measure.campaign_id).where(or_(Measure.owner_id.in_(scope.people),
                                                  Measure.leader_id.in_(scope.people)))
            .distinct()))
        campaigns = campaigns.where(Campaign.id.in_(seen))
        areas = areas.where(Area.campaign_id.in_(seen))
    listed = session.execute(campaigns).all()
    if campaign_id is None and len(listed) > CHOICES_ACROSS_CAMPAIGNS:
        # 200 inspected units: their 方面, units and leaders are offered once a campaign is
        # chosen (thousands of choices make a page nobody can use, and slow to write)
        return {"campaigns": listed, "areas": [], "units": [], "leaders": []}
    # the leaders by a text match on the stored role list, then exactly: an installation of
    # 200 inspected units has thousands of people and a few hundred leaders
    leaders = [p for p in session.execute(
        select(Person.id, Person.name, Person.roles, Person.unit_id)
        .where(cast(Person.roles, String).like(f'%"{Role.LEADER.value}"%'))
        .order_by(Person.name))
        if Role.LEADER in (p.roles or ()) and p.unit_id not in hidden]
    return {
        "campaigns": listed,
        "areas": session.execute(areas).all(),
        "units": [u for u in session.execute(select(Unit.id, Unit.name).order_by(Unit.name)).all()
                  if u.id not in hidden],
        "leaders": leaders,
    }


@router.get("/ledger")
def ledger(request: Request) -> Response:
    web = web_of(request)
    flt, shown = ledger_filter(request)
    sort = shown["sort"] if shown["sort"] in SORTS else "seq"
    descending = shown["dir"] == "desc"
    today = web.today()
    with web.transaction() as session:
        person = page_person(request, session)
        scope = web.scope(session, person)
        result = ledger_page(session, flt, today, scope=scope.condition(),
                             sort=sort, descending=descending,
                             page=_int(request.query_params.get("page")) or 1, per_page=PER_PAGE)
        rows = [(m, deadline_health(m.state, m.deadline, today)) for m in result.measures]
        base = {k: v for k, v in shown.items() if v}

        def link(**changes: Any) -> str:
            merged = {**base, **{k: str(v) for k, v in changes.items() if v not in (None, "")}}
            for key, value in changes.items():
                if value in (None, ""):
                    merged.pop(key, None)
            return "/ledger?" + urlencode(merged)

        return web.render(request, "ledger.html", page(
            request, person, "ledger", rows=rows, result=result, shown=shown, sort=sort,
            descending=descending, link=link, today=today, export="/ledger.xlsx?" + urlencode(base),
            states=list(State), kinds=list(Kind), due_text=web.due_text(session),
            linked=[(key, word, shown[key]) for key, word in LINKED_FILTERS.items()
                    if shown[key]],
            folded=not any(shown[k] for k in ("campaign", "area", "unit", "leader", "state",
                                              "kind", "overdue")),
            **_options(session, flt.campaign_id, scope,
                       foreign_units(session, person, today))))


@router.get("/ledger.xlsx")
def ledger_xlsx(request: Request) -> Response:
    from openpyxl import Workbook

    from workflow.spreadsheet import append_row

    web = web_of(request)
    flt, _shown = ledger_filter(request)
    today = web.today()
    with web.transaction() as session:
        person = page_person(request, session)
        query = measure_query(flt, today)
        condition = web.scope(session, person).condition()
        if condition is not None:
            query = query.where(condition)
        book = Workbook(write_only=True)
        sheet = book.create_sheet("整改台账")
        append_row(sheet, ["编号", "序号", "方面", "问题", "整改措施", "责任领导", "责任部门", "责任人",
                      "完成时限", "原定时限", "整改类型", "状态", "是否逾期"])
        for m in session.scalars(query).unique():
            append_row(sheet, [
                m.id, m.seq, m.problem.area.title, m.problem.text, m.title,
                m.leader.name if m.leader else "", m.unit.name if m.unit else "",
                m.owner.name if m.owner else "", m.deadline, m.original_deadline or m.deadline,
                KIND_LABELS[Kind(m.kind)], STATE_LABELS[State(m.state)],
                "是" if deadline_health(m.state, m.deadline, today) == "red" else "否"])
    buffer = io.BytesIO()
    book.save(buffer)
    buffer.seek(0)
    name = f"整改台账-{today.isoformat()}.xlsx"
    return StreamingResponse(buffer, media_type=(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}"})


@router.get("/my")
def my(request: Request) -> Response:
    web = web_of(request)
    today = web.today()
    with web.transaction() as session:
        person = page_person(request, session)
        sections = my_work(session, person.id, today, web.policies)
        return web.render(request, "my.html", page(
            request, person, "my", sections=sections, today=today, health=deadline_health,
            due_text=web.due_text(session)))


def _visible(web: Web, session: Session, person: Person, measure_id: int) -> Measure:
    measure = load_measure(session, measure_id)
    if not web.scope(session, person).sees(measure):
        raise NotFound("措施", measure_id)
    return measure


@router.get("/measures/{measure_id}")
def measure_page(measure_id: Id, request: Request) -> Response:
    web = web_of(request)
    today = web.today()
    with web.transaction() as session:
        person = page_person(request, session)
        measure = _visible(web, session, person, measure_id)
        rels = relations_with_delegation(session, person, measure, today)
        acceptance = acceptance_dict(session, measure)
        offered = available_actions(
            State(measure.state), rels, pending_extension=measure.extension_deadline is not None,
            with_acceptors=acceptance is not None)
        if acceptance is not None and _accepted_already(session, person, acceptance, today):
            offered = [a for a in offered if a is not Action.VERIFY]
        actions = [TRANSITIONS[a] for a in offered]
        history = session.scalars(
            select(HistoryEntry).options(joinedload(HistoryEntry.actor),
                                         joinedload(HistoryEntry.on_behalf_of))
            .where(HistoryEntry.measure_id == measure.id).order_by(HistoryEntry.seq)).all()
        reports = session.scalars(
            select(ProgressReport).options(selectinload(ProgressReport.evidence),
                                           joinedload(ProgressReport.author))
            .where(ProgressReport.measure_id == measure.id).order_by(ProgressReport.id)).all()
        deadlines = [e for e in history
                     if e.action in (Action.EXTEND, Action.APPROVE_EXTENSION,
                                     SystemAction.RECOMPUTE_DEADLINE)]
        urges = [e for e in history if e.action == Action.URGE]
        rechecks = [e for e in history if e.action == Action.RECHECK]
        can_report = bool(rels & PROGRESS_RELATIONS) and (
            measure.state != State.CLOSED or measure.kind == Kind.LONG_TERM)
        # 督办 documents: for the leader, the 整改办 and the unit (NOTICE_READERS)
        notices = list_notices(session, measure_id=measure.id) if rels & NOTICE_READERS else []
        return web.render(request, "measure.html", page(
            request, person, "ledger", measure=measure, actions=actions, history=history,
            reports=reports, extensions=deadlines, can_report=can_report, Need=Need,
            urges=urges, rechecks=rechecks, acceptance=_with_times(acceptance),
            RECHECK_RESULTS=RECHECK_RESULTS,
            notices=notices, can_reply=bool(rels & NOTICE_REPLIERS),
            DOCUMENT_KINDS=DOCUMENT_KINDS,
            relations=sorted(r.label for r in rels),
            health=deadline_health(measure.state, measure.deadline, today),
            max_bytes=web.settings.evidence_max_bytes, today=today,
            due_text=web.due_text(session)))


def _with_times(acceptance: dict[str, Any] | None) -> dict[str, Any] | None:
    """The acceptance document with its times as datetimes, for the ``local`` filter."""
    if acceptance is None:
        return None
    return {**acceptance, "acceptances": [
        {**a, "at": datetime.fromisoformat(a["at"])} for a in acceptance["acceptances"]]}


def _accepted_already(session: Session, person: Person, acceptance: dict[str, Any],
                      today: date) -> bool:
    """Whether ``person`` (or someone they stand in for) has accepted the current submission."""
    emails = {p.email for p in principals_for(session, person, today)}
    return any(a["by"] in emails for a in acceptance["acceptances"])


def _uploads(form: FormData) -> list[UploadFile]:
    return [f for f in form.getlist("evidence")
            if isinstance(f, UploadFile) and f.filename]


def _store(web: Web, uploads: list[UploadFile]) -> list[StoredFile]:
    return [web.evidence.store(upload.filename or "file", upload.file) for upload in uploads]


def _date(value: object) -> date | None:
    if value in (None, ""):
        return None
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise InputError(f"日期「{value}」无效，应为 YYYY-MM-DD", field="deadline") from None


@router.post("/measures/{measure_id}/actions/{action_name}")
async def measure_action(measure_id: Id, action_name: str, request: Request) -> Response:
    web = web_of(request)
    form = await request.form()
    check_csrf(request, form.get("csrf_token"))
    action = parse_action(action_name)
    uploads = _uploads(form)
    with web.evidence.removed_on_error(), web.transaction() as session:
        person = page_person(request, session)
        _visible(web, session, person, measure_id)
        with named_people_are_input():
            outcome = perform(session, ActionRequest(
                measure_id=measure_id, action=action, actor=person,
                comment=str(form.get("comment") or "") or None,
                deadline=_date(form.get("deadline")),
                owner=str(form.get("owner") or "").strip() or None,
                expected_version=_int(str(form.get("version") or "")),
                result=str(form.get("result") or "").strip() or None,
                evidence=_store(web, uploads)), now=web.now(), policies=web.policies)
        state = STATE_LABELS[State(outcome.measure.state)]
        waiting = len(outcome.entry.data.get("remaining") or ())
    if waiting:  # 三方验收: one acceptance of several
        flash(request, "ok", f"已记录您的验收，尚有 {waiting} 位验收人未验收，当前状态：{state}。")
    else:
        result = RECHECK_RESULTS.get(str(outcome.entry.data.get("result")), "")
        done = TRANSITIONS[action].label + (f"（{result}）" if result else "")
        flash(request, "ok", f"已{done}，当前状态：{state}。")
    return RedirectResponse(f"/measures/{measure_id}", status_code=303)


@router.post("/measures/{measure_id}/progress")
async def measure_progress(measure_id: Id, request: Request) -> Response:
    web = web_of(request)
    form = await request.form()
    check_csrf(request, form.get("csrf_token"))
    uploads = _uploads(form)
    with web.evidence.removed_on_error(), web.transaction() as session:
        person = page_person(request, session)
        _visible(web, session, person, measure_id)
        report_progress(session, measure_id=measure_id, actor=person,
                        text=str(form.get("text") or ""), files=_store(web, uploads),
                        now=web.now())
    flash(request, "ok", "进展已报送。")
    return RedirectResponse(f"/measures/{measure_id}", status_code=303)


@router.get("/evidence/{evidence_id}")
def evidence(evidence_id: Id, request: Request) -> Response:
    web = web_of(request)
    with web.transaction() as session:
        person = page_person(request, session)
        found = session.scalar(select(Evidence).options(joinedload(Evidence.report))
                               .where(Evidence.id == evidence_id))
        if found is None:
            raise NotFound("佐证材料", evidence_id)
        try:
            _visible(web, session, person, found.report.measure_id)
        except NotFound:
            raise NotFound("佐证材料", evidence_id) from None
        path = web.evidence.path_of(found.stored_path)
        name, content_type = found.filename, found.content_type
    if not path.is_file():
        raise NotFound("佐证材料文件", name)
    inline = content_type in ("application/pdf", "image/png", "image/jpeg", "image/gif",
                              "image/webp")
    return FileResponse(path, media_type=content_type, filename=name,
                        content_disposition_type="inline" if inline else "attachment",
                        headers={"X-Content-Type-Options": "nosniff",
                                 "Content-Security-Policy": "sandbox"})


@router.get("/to-close")
def to_close(request: Request) -> Response:
    web = web_of(request)
    today = web.today()
    with web.transaction() as session:
        person = page_person(request, session)
        items = closure_queue(session, person.id, today)
        return web.render(request, "to_close.html", page(request, person, "to_close",
                                                          items=items, today=today))


@router.post("/to-close")
async def close_many(request: Request) -> Response:
    """Bulk sign-off: each picked ``id:version`` is closed in its own transaction, so one that
    changed meanwhile does not hold back the others."""
    web = web_of(request)
    form = await request.form()
    check_csrf(request, form.get("csrf_token"))
    picked: list[tuple[int, int | None]] = []
    for raw in form.getlist("pick"):
        id_text, _, version_text = str(raw).partition(":")
        if (number := _int(id_text)) is not None:
            picked.append((number, _int(version_text)))
    if not picked:
        flash(request, "error", "请先勾选要销号的措施。")
        return RedirectResponse("/to-close", status_code=303)
    closed, refused = 0, []
    for measure_id, version in picked:
        try:
            with web.transaction() as session:
                person = page_person(request, session)
                _visible(web, session, person, measure_id)
                perform(session, ActionRequest(measure_id=measure_id, action=Action.CLOSE,
                                               actor=person, expected_version=version),
                        now=web.now())
            closed += 1
        except RectiflowError as exc:
            refused.append(str(exc))
    if closed:
        flash(request, "ok", f"已销号 {closed} 项。")
    for reason in refused:
        flash(request, "error", reason)
    return RedirectResponse("/to-close", status_code=303)
