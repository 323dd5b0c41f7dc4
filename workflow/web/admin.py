"""Admin pages: people and units, delegation (代理), calendar overrides, the reminder policy as
read from config, the dead-letter list with retry, and the sweep preview."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload

from notifications.deliverer import retry_dead, retry_message
from workflow.calendar_store import add_days, list_days, load_calendar, remove_day
from workflow.errors import InputError, NotPermitted
from workflow.lifecycle import CHANNEL_LABELS, Kind, OutboxStatus, Role
from workflow.models import Measure, OutboxMessage, Person, Unit
from workflow.outbox import message_dict
from workflow.reminders import URGENCY_LABELS
from workflow.services.deadlines import recompute_deadlines
from workflow.services.people import find_person, get_or_create_unit, set_delegate
from workflow.services.reminding import sweep_round
from workflow.timeutil import SHANGHAI, local_date
from workflow.web.api import Id
from workflow.web.auth import check_csrf, page_person
from workflow.web.context import Web, web_of
from workflow.web.pages import _date, flash, page
from workflow.workcalendar import overrides_from_toml

router = APIRouter(prefix="/admin", include_in_schema=False)


def admin_person(request: Request, session: Session) -> Person:
    person = page_person(request, session)
    if not person.has_role(Role.ADMIN):
        raise NotPermitted(person.name, "进入管理页面", None, ["管理员"])
    return person


@router.get("")
def people(request: Request) -> Response:
    web = web_of(request)
    with web.transaction() as session:
        person = admin_person(request, session)
        everyone = session.scalars(select(Person).options(
            joinedload(Person.unit), joinedload(Person.delegate)).order_by(Person.id)).all()
        units = session.scalars(select(Unit).options(joinedload(Unit.parent))
                                .order_by(Unit.name)).all()
        counts = dict(session.execute(select(Measure.unit_id, func.count())
                                      .group_by(Measure.unit_id)).all())
        return web.render(request, "admin_people.html", page(
            request, person, "admin", people=everyone, units=units, counts=counts,
            today=web.today()))


@router.post("/delegation")
async def delegation(request: Request) -> Response:
    web = web_of(request)
    form = await request.form()
    check_csrf(request, form.get("csrf_token"))
    with web.transaction() as session:
        admin_person(request, session)
        who = find_person(session, str(form.get("person") or ""))
        delegate_key = str(form.get("delegate") or "").strip()
        delegate = find_person(session, delegate_key) if delegate_key else None
        until = _date(form.get("until"))
        if until is not None and until < web.today():
            raise InputError(f"代理截止日期 {until} 早于今天", field="until")
        set_delegate(session, who, delegate, until)
        text = (f"{who.name} 的工作由 {delegate.name} 代理至 {until}。" if delegate
                else f"已取消 {who.name} 的代理。")
    flash(request, "ok", text)
    return RedirectResponse("/admin", status_code=303)


@router.post("/units")
async def add_unit(request: Request) -> Response:
    web = web_of(request)
    form = await request.form()
    check_csrf(request, form.get("csrf_token"))
    with web.transaction() as session:
        admin_person(request, session)
        parent_id = str(form.get("parent") or "")
        parent = session.get(Unit, int(parent_id)) if parent_id.isdigit() else None
        unit = get_or_create_unit(session, str(form.get("name") or ""), parent)
        name = unit.name
    flash(request, "ok", f"部门「{name}」已保存。")
    return RedirectResponse("/admin", status_code=303)


@router.get("/calendar")
def calendar(request: Request) -> Response:

    web = web_of(request)
    with web.transaction() as session:
        person = admin_person(request, session)
        days = list_days(session)
        return web.render(request, "admin_calendar.html", page(request, person, "admin",
                                                                days=days))


def _recompute_deadlines(web: Web, session: Session, admin: Person) -> list[str]:
    """Count the deadlines given as "N working days after feedback" again on the calendar as it
    now stands; the summary lines for the flash message."""

    calendar = load_calendar(session, overrides_from_toml(web.policies.calendar))
    recomputed = recompute_deadlines(session, calendar, actor=admin, now=web.now())
    return recomputed.summary_lines(limit=5)  # a flash message lives in the session cookie


@router.post("/calendar")
async def calendar_add(request: Request) -> Response:

    web = web_of(request)
    form = await request.form()
    check_csrf(request, form.get("csrf_token"))
    day = _date(form.get("day"))
    if day is None:
        raise InputError("请填写日期", field="day")
    with web.transaction(write_lock=True) as session:
        admin = admin_person(request, session)
        add_days(session, [day], form.get("kind") == "workday", str(form.get("note") or ""),
                 now=web.now())
        recomputed = _recompute_deadlines(web, session, admin)
    flash(request, "ok", " ".join([f"{day} 已录入。", *recomputed]))
    return RedirectResponse("/admin/calendar", status_code=303)


@router.post("/calendar/{day}/delete")
async def calendar_remove(day: str, request: Request) -> Response:

    web = web_of(request)
    form = await request.form()
    check_csrf(request, form.get("csrf_token"))
    parsed = _date(day)
    assert parsed is not None
    with web.transaction(write_lock=True) as session:
        admin = admin_person(request, session)
        remove_day(session, parsed)
        recomputed = _recompute_deadlines(web, session, admin)
    flash(request, "ok", " ".join([f"已删除 {parsed} 的录入。", *recomputed]))
    return RedirectResponse("/admin/calendar", status_code=303)


@router.get("/policy")
def policy(request: Request) -> Response:
    web = web_of(request)
    with web.transaction() as session:
        person = admin_person(request, session)
        effective = [(kind, web.policies.effective(kind)) for kind in Kind]
        return web.render(request, "admin_policy.html", page(
            request, person, "admin", effective=effective,
            source=web.settings.config_file.name if web.settings.config_file else None))


@router.get("/outbox")
def outbox(request: Request) -> Response:
    web = web_of(request)
    with web.transaction() as session:
        person = admin_person(request, session)
        dead = session.scalars(select(OutboxMessage).where(OutboxMessage.status == OutboxStatus.DEAD)
                               .order_by(OutboxMessage.id.desc()).limit(500)).all()
        pending = session.scalar(select(func.count()).where(OutboxMessage.status == OutboxStatus.PENDING))
        return web.render(request, "admin_outbox.html", page(
            request, person, "admin", dead=[message_dict(m) for m in dead], pending=pending,
            channels=CHANNEL_LABELS))


@router.post("/outbox/{message_id}/retry")
async def outbox_retry(message_id: Id, request: Request) -> Response:

    web = web_of(request)
    form = await request.form()
    check_csrf(request, form.get("csrf_token"))
    with web.transaction() as session:
        admin_person(request, session)
        retry_message(session, message_id, web.now())
    flash(request, "ok", f"消息 {message_id} 已重新排队，将在下次发送时重试。")
    return RedirectResponse("/admin/outbox", status_code=303)


@router.post("/outbox/retry-dead")
async def outbox_retry_dead(request: Request) -> Response:
    """Every dead message (of one channel, when the form names one) back in the queue."""
    web = web_of(request)
    form = await request.form()
    check_csrf(request, form.get("csrf_token"))
    channel = str(form.get("channel") or "") or None
    with web.transaction() as session:
        admin_person(request, session)
        count = retry_dead(session, web.now(), channel)
    which = f"{CHANNEL_LABELS.get(channel, channel)}渠道" if channel else ""
    flash(request, "ok", f"已重新排队{which}发送失败的消息 {count} 条，将在下次发送时重试。")
    return RedirectResponse("/admin/outbox", status_code=303)


def preview_time(now: datetime, start_hour: int, start_minute: int) -> datetime:
    """Tomorrow at the send window's opening, Beijing time."""
    tomorrow = local_date(now) + timedelta(days=1)
    return datetime(tomorrow.year, tomorrow.month, tomorrow.day, start_hour, start_minute,
                    tzinfo=SHANGHAI)


@router.get("/sweep-preview")
def sweep_preview(request: Request) -> Response:
    """Runs tomorrow morning's sweep in a transaction that is rolled back: nothing is written."""
    web = web_of(request)
    with web.sessions() as session:
        person = admin_person(request, session)
        ctx = web.runtime.reminder_context(session)
        at = preview_time(web.now(), ctx.base.window_start.hour, ctx.base.window_start.minute)
        result = sweep_round(session, ctx, now=at, group_robot=web.runtime.group_robot)
        shown: list[dict[str, Any]] = [
            {**message_dict(m), "items": m.payload.get("items", []), "name": m.payload.get("name")}
            for m in result.messages]
        ids = {i["measure_id"] for m in shown for i in m["items"]}
        titles = dict(session.execute(select(Measure.id, Measure.title)
                                      .where(Measure.id.in_(ids))).all()) if ids else {}
        response = web.render(request, "admin_preview.html", page(
            request, person, "admin", at=at, messages=shown, titles=titles,
            measures=result.sweep.measures, urgency=URGENCY_LABELS, channels=CHANNEL_LABELS))
        session.rollback()
    return response
