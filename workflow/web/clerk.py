"""The 整改办's pages (reviewers and admins): campaigns with their figures and a form to create
one; importing a ledger or report with a preview that lists every problem and writes only on
confirm (the file kept on the server meanwhile, unknown people addable from the preview);
people (add, edit, deactivate, delegates, password reset, import with a preview); the report and
digest; a whole year's holiday notice; and the dead messages, retried in bulk.

Handlers are thin: each checks the role and CSRF, calls a service, and renders. A refused form
is shown again with what was typed and the reason next to the field."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload
from starlette.datastructures import FormData, UploadFile

from workflow.calendar_store import list_days
from workflow.errors import ImportRejected, InputError
from workflow.holiday_notice import notice_year, parse_notice
from workflow.lifecycle import CHANNEL_LABELS, PREFERENCE_LABELS, ROLE_LABELS, Role
from workflow.models import Campaign, Person
from workflow.outbox import dead_messages, explain_failure, retry_dead
from workflow.passwords import hash_password
from workflow.services.campaigns import (
    acceptor_labels,
    campaign_figures,
    create_campaign,
    get_campaign,
    seen_campaigns,
)
from workflow.services.holidays import enter_notice
from workflow.services.imports import file_kind, refusal_errors, unknown_people
from workflow.services.people import (
    add_person,
    check_may_manage,
    check_unit_allowed,
    find_person,
    import_people,
    read_people_csv,
    set_delegate,
    update_person,
)
from workflow.services.visibility import foreign_units
from workflow.web.api import Id
from workflow.web.auth import check_csrf, page_person
from workflow.web.context import Web, web_of
from workflow.web.office import (
    calendar_of,
    campaign_digest,
    configured_days,
    digest_html,
    require_clerk,
    run_import,
    send_campaign_digest,
    uploads,
)
from workflow.web.pages import flash, page
from workflow.workcalendar import YearSource

router = APIRouter(include_in_schema=False)
IMPORT_PURPOSE = "campaign-import"
PEOPLE_PURPOSE = "people-import"
TEMPORARY_PASSWORD_BYTES = 9  # 12 characters


def clerk_person(request: Request, session: Session, what: str) -> Person:
    return require_clerk(page_person(request, session), what)


async def checked_form(request: Request) -> FormData:
    form = await request.form()
    check_csrf(request, form.get("csrf_token"))
    return form


def text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def form_date(value: str, field: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InputError(f"日期「{value}」无效，应为 YYYY-MM-DD", field=field) from None


def split_names(value: str) -> list[str]:
    return [part.strip() for part in value.replace("，", ",").replace("、", ",").split(",")
            if part.strip()]


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def people_options(session: Session, viewer: Person, today: date) -> list[Person]:
    """The active people ``viewer`` may pick (not those inside another inspected unit)."""
    hidden = foreign_units(session, viewer, today)
    return [p for p in session.scalars(select(Person).where(Person.active.is_(True))
                                       .order_by(Person.name)) if p.unit_id not in hidden]


@contextmanager
def rolled_back(web: Web) -> Iterator[Session]:
    """A session whose writes are undone at the end (previews and dry runs)."""
    with web.sessions() as session:
        try:
            yield session
        finally:
            session.rollback()


# ------------------------------------------------------------------ campaigns


def _campaigns_page(web: Web, request: Request, session: Session, person: Person,
                    values: dict[str, str], error: InputError | None) -> Response:
    return web.render(request, "clerk_campaigns.html", page(
        request, person, "clerk",
        figures=campaign_figures(session, web.today(), seen_campaigns(web.scope(session, person))),
        people=people_options(session, person, web.today()), values=values, error=error,
        sub="campaigns"), status_code=error.http_status if error else 200)


@router.get("/campaigns")
def campaigns(request: Request) -> Response:
    web = web_of(request)
    with web.transaction() as session:
        person = clerk_person(request, session, "管理整改任务")
        return _campaigns_page(web, request, session, person, {}, None)


@router.post("/campaigns")
async def campaign_create(request: Request) -> Response:
    web = web_of(request)
    form = await checked_form(request)
    values = {k: text(form, k) for k in ("title", "first_responsible", "feedback_date",
                                         "acceptors", "inspected_unit")}
    try:
        with web.transaction() as session:
            creator = clerk_person(request, session, "新建整改任务")
            campaign = create_campaign(
                session, title=values["title"], now=web.now(),
                first_responsible=values["first_responsible"] or None,
                feedback_date=form_date(values["feedback_date"], "feedback_date"),
                acceptors=split_names(values["acceptors"]),
                inspected_unit=values["inspected_unit"] or None, creator=creator)
            campaign_id, title = campaign.id, campaign.title
    except InputError as exc:
        with web.transaction() as session:
            person = clerk_person(request, session, "新建整改任务")
            return _campaigns_page(web, request, session, person, values, exc)
    flash(request, "ok", f"已新建整改任务「{title}」。下一步：导入整改台账或反馈意见。")
    return redirect(f"/campaigns/{campaign_id}/import")


@router.get("/campaigns/{campaign_id}")
def campaign_page(campaign_id: Id, request: Request) -> Response:
    web = web_of(request)
    with web.transaction() as session:
        person = clerk_person(request, session, "查看整改任务")
        campaign = get_campaign(session, campaign_id, web.scope(session, person))
        digest = campaign_digest(web, session, campaign_id).as_json()
        acceptors = acceptor_labels(session, campaign.acceptors)
        return web.render(request, "clerk_campaign.html", page(
            request, person, "clerk", campaign=campaign, digest=digest, acceptors=acceptors,
            sub="campaigns"))


@router.get("/campaigns/{campaign_id}/digest")
def campaign_digest_page(campaign_id: Id, request: Request) -> Response:
    web = web_of(request)
    with web.transaction() as session:
        person = clerk_person(request, session, "查看周报")
        get_campaign(session, campaign_id, web.scope(session, person))
        html = digest_html(web, campaign_digest(web, session, campaign_id))
    return HTMLResponse(html)


@router.post("/campaigns/{campaign_id}/digest/send")
async def campaign_digest_send(campaign_id: Id, request: Request) -> Response:
    web = web_of(request)
    await checked_form(request)
    with web.transaction(write_lock=True) as session:
        person = clerk_person(request, session, "发送周报")
        get_campaign(session, campaign_id, web.scope(session, person))
        run = send_campaign_digest(web, session, campaign_id)
    if run.messages:
        flash(request, "ok", f"本周周报已写入发件箱：{run.readers} 位读者，{len(run.messages)} 条消息，"
                             "将在发送时段内发出。")
    else:
        flash(request, "error", f"没有写入新的周报：{run.readers} 位读者中，本周已发过 "
                                f"{run.skipped_existing} 条，{run.empty} 位没有内容。")
    return redirect(f"/campaigns/{campaign_id}")


# ------------------------------------------------------------------ imports with a preview


def _import_page(web: Web, request: Request, session: Session, person: Person,
                 campaign: Campaign, **values: Any) -> Response:
    context = {"campaign": campaign, "upload": None, "outcome": None, "refusal": None,
               "errors": [], "unknown": [], "person_form": {}, "person_error": None,
               "upload_error": None, "roles": ROLE_LABELS, "sub": "campaigns", **values}
    status = 200
    for key in ("upload_error", "person_error"):
        if context[key] is not None:
            status = context[key].http_status
    return web.render(request, "clerk_import.html", page(request, person, "clerk", **context),
                      status_code=status)


@router.get("/campaigns/{campaign_id}/import")
def import_page(campaign_id: Id, request: Request, upload: str = "") -> Response:
    web = web_of(request)
    return _import_preview(web, request, campaign_id, upload)


def _import_preview(web: Web, request: Request, campaign_id: int, token: str,
                    **values: Any) -> Response:
    """The upload form, or (with a kept upload) the dry run's preview or its problems; the
    dry run's writes are rolled back."""
    with rolled_back(web) as session:
        person = clerk_person(request, session, "导入台账")
        campaign = get_campaign(session, campaign_id, web.scope(session, person))
        if not token:
            return _import_page(web, request, session, person, campaign, **values)
        kept = uploads(web).get(token, purpose=IMPORT_PURPOSE, person_id=person.id,
                                campaign_id=campaign_id)
        try:
            outcome = run_import(web, session, campaign, kept.path, dry_run=True)
            found: dict[str, Any] = {"outcome": outcome}
        except InputError as exc:
            if exc.http_status != 422:
                raise
            found = {"refusal": exc, "errors": refusal_errors(exc),
                     "unknown": unknown_people(exc)}
        session.rollback()
        return _import_page(web, request, session, person, campaign, upload=kept,
                            **found, **values)


@router.post("/campaigns/{campaign_id}/import")
async def import_upload(campaign_id: Id, request: Request) -> Response:
    web = web_of(request)
    form = await checked_form(request)
    file = form.get("file")
    with web.transaction() as session:
        person = clerk_person(request, session, "导入台账")
        get_campaign(session, campaign_id, web.scope(session, person))
        person_id = person.id
    try:
        if not isinstance(file, UploadFile) or not file.filename:
            raise InputError("请选择要导入的文件", field="file")
        file_kind(file.filename)
        kept = uploads(web).save(file.filename, file.file, purpose=IMPORT_PURPOSE,
                                 person_id=person_id, campaign_id=campaign_id)
    except InputError as exc:
        return _import_preview(web, request, campaign_id, "", upload_error=exc)
    return redirect(f"/campaigns/{campaign_id}/import?upload={kept.token}")


@router.post("/campaigns/{campaign_id}/import/confirm")
async def import_confirm(campaign_id: Id, request: Request) -> Response:
    web = web_of(request)
    form = await checked_form(request)
    token = text(form, "upload")
    store = uploads(web)
    try:
        with web.transaction(write_lock=True) as session:
            person = clerk_person(request, session, "导入台账")
            campaign = get_campaign(session, campaign_id, web.scope(session, person))
            kept = store.get(token, purpose=IMPORT_PURPOSE, person_id=person.id,
                             campaign_id=campaign_id)
            outcome = run_import(web, session, campaign, kept.path, dry_run=False)
    except ImportRejected:
        # Something changed since the preview (a person deactivated): show the problems again.
        return redirect(f"/campaigns/{campaign_id}/import?upload={token}")
    store.discard(kept)
    doc = outcome.document
    flash(request, "ok", f"已导入「{kept.filename}」：{doc['areas']} 个方面、{doc['problems']} 个问题、"
                         f"{doc['measures']} 项整改措施。")
    return redirect(f"/campaigns/{campaign_id}")


@router.post("/campaigns/{campaign_id}/import/person")
async def import_add_person(campaign_id: Id, request: Request) -> Response:
    """Add a person the ledger names, then show the same upload's preview again."""
    web = web_of(request)
    form = await checked_form(request)
    token = text(form, "upload")
    values = {k: text(form, k) for k in ("name", "email", "role", "unit", "key")}
    try:
        with web.transaction() as session:
            actor = clerk_person(request, session, "添加人员")
            uploads(web).get(token, purpose=IMPORT_PURPOSE, person_id=actor.id,
                             campaign_id=campaign_id)
            roles = [values["role"]]
            check_may_manage(actor, None, roles)
            check_unit_allowed(session, values["unit"], foreign_units(session, actor, web.today()))
            added = add_person(session, name=values["name"], email=values["email"],
                               roles=roles, unit=values["unit"] or None)
            name = added.name
    except InputError as exc:
        return _import_preview(web, request, campaign_id, token, person_form=values,
                               person_error=exc)
    flash(request, "ok", f"已添加人员 {name}。")
    return redirect(f"/campaigns/{campaign_id}/import?upload={token}")


# ------------------------------------------------------------------ people


def _people_page(web: Web, request: Request, session: Session, person: Person,
                 values: dict[str, Any], error: InputError | None) -> Response:
    hidden = foreign_units(session, person, web.today())
    everyone = [p for p in session.scalars(select(Person).options(
        joinedload(Person.unit), joinedload(Person.delegate)).order_by(Person.id)).all()
        if p.unit_id not in hidden]
    return web.render(request, "clerk_people.html", page(
        request, person, "clerk", people=everyone, values=values, error=error,
        roles=ROLE_LABELS, today=web.today(), sub="people"),
        status_code=error.http_status if error else 200)


@router.get("/people")
def people(request: Request) -> Response:
    web = web_of(request)
    with web.transaction() as session:
        person = clerk_person(request, session, "管理人员")
        return _people_page(web, request, session, person, {"roles": ["owner"]}, None)


@router.post("/people")
async def people_add(request: Request) -> Response:
    web = web_of(request)
    form = await checked_form(request)
    values: dict[str, Any] = {k: text(form, k) for k in ("name", "email", "unit", "wecom_id",
                                                         "mobile")}
    values["roles"] = [str(r) for r in form.getlist("roles")]
    password = form.get("password")
    try:
        with web.transaction() as session:
            actor = clerk_person(request, session, "添加人员")
            check_may_manage(actor, None, values["roles"])
            check_unit_allowed(session, values["unit"], foreign_units(session, actor, web.today()))
            password_hash = hash_password(password) if isinstance(password, str) and password else None
            added = add_person(session, name=values["name"], email=values["email"],
                               roles=values["roles"], wecom_id=values["wecom_id"],
                               mobile=values["mobile"], unit=values["unit"] or None,
                               password_hash=password_hash)
            name = added.name
    except InputError as exc:
        with web.transaction() as session:
            person = clerk_person(request, session, "添加人员")
            return _people_page(web, request, session, person, values, exc)
    flash(request, "ok", f"已添加人员 {name}。")
    return redirect("/people")


def _target(web: Web, session: Session, person_id: int, actor: Person) -> Person:
    """The person to manage; one inside another inspected unit does not exist for ``actor``."""
    target = session.get(Person, person_id)
    if target is None or target.unit_id in foreign_units(session, actor, web.today()):
        raise InputError(f"找不到人员：{person_id}", field="person")
    return target


def _person_page(web: Web, request: Request, session: Session, actor: Person, target: Person,
                 values: dict[str, Any] | None = None, error: InputError | None = None,
                 password: str | None = None) -> Response:
    shown = values or {"name": target.name, "roles": list(target.roles or []),
                       "unit": target.unit.name if target.unit else "",
                       "wecom_id": target.wecom_id or "", "mobile": target.mobile or "",
                       "channel": target.channel_preference}
    response = web.render(request, "clerk_person.html", page(
        request, actor, "clerk", target=target, values=shown, error=error, roles=ROLE_LABELS,
        preferences=PREFERENCE_LABELS, people=people_options(session, actor, web.today()), today=web.today(),
        password=password, sub="people"), status_code=error.http_status if error else 200)
    if password:
        response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/people/{person_id}")
def person_page(person_id: Id, request: Request) -> Response:
    web = web_of(request)
    with web.transaction() as session:
        actor = clerk_person(request, session, "管理人员")
        return _person_page(web, request, session, actor, _target(web, session, person_id, actor))


@router.post("/people/{person_id}")
async def person_edit(person_id: Id, request: Request) -> Response:
    web = web_of(request)
    form = await checked_form(request)
    values: dict[str, Any] = {k: text(form, k) for k in ("name", "unit", "wecom_id", "mobile",
                                                         "channel")}
    values["roles"] = [str(r) for r in form.getlist("roles")]
    try:
        with web.transaction() as session:
            actor = clerk_person(request, session, "修改人员")
            target = _target(web, session, person_id, actor)
            check_may_manage(actor, target, values["roles"])
            check_unit_allowed(session, values["unit"], foreign_units(session, actor, web.today()))
            update_person(session, target, name=values["name"], roles=values["roles"],
                          unit=values["unit"], wecom_id=values["wecom_id"],
                          mobile=values["mobile"], channel=values["channel"] or None)
            name = target.name
    except InputError as exc:
        with web.transaction() as session:
            actor = clerk_person(request, session, "修改人员")
            return _person_page(web, request, session, actor, _target(web, session, person_id, actor),
                                values, exc)
    flash(request, "ok", f"已保存 {name} 的信息。")
    return redirect(f"/people/{person_id}")


@router.post("/people/{person_id}/active")
async def person_active(person_id: Id, request: Request) -> Response:
    web = web_of(request)
    form = await checked_form(request)
    active = text(form, "active") == "1"
    with web.transaction() as session:
        actor = clerk_person(request, session, "停用或启用人员")
        target = _target(web, session, person_id, actor)
        check_may_manage(actor, target)
        if target.id == actor.id and not active:
            raise InputError("不能停用自己的账号", field="active")
        update_person(session, target, active=active)
        name = target.name
    flash(request, "ok", f"已{'启用' if active else '停用'} {name}。"
                         + ("" if active else "停用后不能登录办理，也不再收到消息。"))
    return redirect(f"/people/{person_id}")


@router.post("/people/{person_id}/delegate")
async def person_delegate(person_id: Id, request: Request) -> Response:
    web = web_of(request)
    form = await checked_form(request)
    delegate_key = text(form, "delegate")
    with web.transaction() as session:
        actor = clerk_person(request, session, "设置代理")
        target = _target(web, session, person_id, actor)
        check_may_manage(actor, target)
        delegate = find_person(session, delegate_key) if delegate_key else None
        until = form_date(text(form, "until"), "until")
        if delegate is not None and until is not None and until < web.today():
            raise InputError(f"代理截止日期 {until} 早于今天", field="until")
        set_delegate(session, target, delegate, until)
        message = (f"{target.name} 的工作由 {delegate.name} 代理至 {until}。" if delegate
                   else f"已取消 {target.name} 的代理。")
    flash(request, "ok", message)
    return redirect(f"/people/{person_id}")


@router.post("/people/{person_id}/password")
async def person_password(person_id: Id, request: Request) -> Response:
    """A new temporary password, shown once on this page (never stored in clear or in a
    cookie); tokens and sessions made with the old one stop working."""
    web = web_of(request)
    await checked_form(request)
    password = secrets.token_urlsafe(TEMPORARY_PASSWORD_BYTES)
    with web.transaction() as session:
        actor = clerk_person(request, session, "重置密码")
        target = _target(web, session, person_id, actor)
        check_may_manage(actor, target)
        update_person(session, target, password_hash=hash_password(password))
        return _person_page(web, request, session, actor, target, password=password)


# ------------------------------------------------------------------ people files


def _people_import_page(web: Web, request: Request, session: Session, person: Person,
                        **values: Any) -> Response:
    context = {"upload": None, "added": [], "errors": [], "refusal": None, "upload_error": None,
               "roles": ROLE_LABELS, "sub": "people", **values}
    status = context["upload_error"].http_status if context["upload_error"] else 200
    return web.render(request, "clerk_people_import.html",
                      page(request, person, "clerk", **context), status_code=status)


@router.get("/people/import/file")
def people_import_page(request: Request, upload: str = "") -> Response:
    web = web_of(request)
    return _people_preview(web, request, upload)


def _people_preview(web: Web, request: Request, token: str, **values: Any) -> Response:
    with rolled_back(web) as session:
        actor = clerk_person(request, session, "导入人员")
        if not token:
            return _people_import_page(web, request, session, actor, **values)
        kept = uploads(web).get(token, purpose=PEOPLE_PURPOSE, person_id=actor.id)
        try:
            rows = read_people_csv(kept.path.read_bytes(), kept.filename)
            added = import_people(session, rows, kept.filename,
                                  allow_admin=actor.has_role(Role.ADMIN),
                                  hidden_units=foreign_units(session, actor, web.today()))
            found: dict[str, Any] = {"added": [
                {"name": p.name, "email": p.email, "roles": list(p.roles),
                 "unit": p.unit.name if p.unit else ""} for p in added]}
        except InputError as exc:
            found = {"refusal": exc, "errors": refusal_errors(exc)}
        return _people_import_page(web, request, session, actor, upload=kept, **found, **values)


@router.post("/people/import/file")
async def people_import_upload(request: Request) -> Response:
    web = web_of(request)
    form = await checked_form(request)
    file = form.get("file")
    with web.transaction() as session:
        person_id = clerk_person(request, session, "导入人员").id
    try:
        if not isinstance(file, UploadFile) or not file.filename:
            raise InputError("请选择要导入的文件", field="file")
        if not file.filename.lower().endswith(".csv"):
            raise InputError("人员名单须为 .csv 文件（Excel 中“另存为 CSV”）", field="file")
        kept = uploads(web).save(file.filename, file.file, purpose=PEOPLE_PURPOSE,
                                 person_id=person_id)
    except InputError as exc:
        return _people_preview(web, request, "", upload_error=exc)
    return redirect(f"/people/import/file?upload={kept.token}")


@router.post("/people/import/confirm")
async def people_import_confirm(request: Request) -> Response:
    web = web_of(request)
    form = await checked_form(request)
    token = text(form, "upload")
    store = uploads(web)
    try:
        with web.transaction() as session:
            actor = clerk_person(request, session, "导入人员")
            kept = store.get(token, purpose=PEOPLE_PURPOSE, person_id=actor.id)
            rows = read_people_csv(kept.path.read_bytes(), kept.filename)
            count = len(import_people(session, rows, kept.filename,
                                      allow_admin=actor.has_role(Role.ADMIN),
                                  hidden_units=foreign_units(session, actor, web.today())))
    except ImportRejected:
        return redirect(f"/people/import/file?upload={token}")
    store.discard(kept)
    flash(request, "ok", f"已从「{kept.filename}」导入 {count} 名人员。")
    return redirect("/people")


# ------------------------------------------------------------------ calendar


def _calendar_page(web: Web, request: Request, session: Session, person: Person,
                   **values: Any) -> Response:
    calendar = calendar_of(web, session)
    this_year = web.today().year
    years = {this_year, this_year + 1} | {d.year for d in calendar.overrides}
    coverage = calendar.coverage(years)
    context = {"year": str(this_year + 1), "notice": "", "festivals": None, "entered": None,
               "errors": [], "error": None, "confirmed": False, "coverage": coverage,
               "days": list_days(session), "fallback": YearSource.FALLBACK.value, "sub": "calendar", **values}
    status = context["error"].http_status if context["error"] else 200
    return web.render(request, "clerk_calendar.html", page(request, person, "clerk", **context),
                      status_code=status)


@router.get("/calendar")
def calendar(request: Request) -> Response:
    web = web_of(request)
    with web.transaction() as session:
        person = clerk_person(request, session, "录入节假日")
        return _calendar_page(web, request, session, person)


def _year(value: str, notice: str) -> int:
    if not value:
        found = notice_year(notice)
        if found is None:
            raise InputError("请填写年份", field="year")
        return found
    if not value.isdigit() or not 2000 <= int(value) <= 2200:
        raise InputError(f"年份「{value}」无效", field="year")
    return int(value)


@router.post("/calendar")
async def calendar_enter(request: Request) -> Response:
    """Preview (``confirm`` absent: a dry run) or enter a pasted holiday notice."""
    web = web_of(request)
    form = await checked_form(request)
    notice = str(form.get("notice") or "")
    year_text = text(form, "year")
    confirm = text(form, "confirm") == "1"
    values: dict[str, Any] = {"notice": notice, "year": year_text}
    try:
        festivals = parse_notice(notice, _year(year_text, notice))
    except InputError as exc:
        with web.transaction() as session:
            person = clerk_person(request, session, "录入节假日")
            return _calendar_page(web, request, session, person, error=exc,
                                  errors=refusal_errors(exc), **values)
    with web.transaction(write_lock=True) if confirm else rolled_back(web) as session:
        person = clerk_person(request, session, "录入节假日")
        entered = enter_notice(session, festivals, now=web.now(),
                               configured=configured_days(web), actor=person,
                               dry_run=not confirm)
        return _calendar_page(web, request, session, person, festivals=festivals,
                              entered=entered, confirmed=confirm, **values)


# ------------------------------------------------------------------ outbox


@router.get("/outbox")
def outbox(request: Request, channel: str = "", error: str = "") -> Response:
    web = web_of(request)
    channel = channel if channel in CHANNEL_LABELS else ""
    error = error.strip()[:200]
    with web.transaction() as session:
        person = clerk_person(request, session, "处理发送失败的消息")
        dead = dead_messages(session, channel=channel or None, error=error or None)
        shown = [{"message": m, "why": explain_failure(m.last_error)} for m in dead[:500]]
        return web.render(request, "clerk_outbox.html", page(
            request, person, "clerk", shown=shown, total=len(dead), channel=channel,
            error=error, channels=CHANNEL_LABELS, sub="outbox"))


@router.post("/outbox/retry")
async def outbox_retry(request: Request) -> Response:
    web = web_of(request)
    form = await checked_form(request)
    channel = text(form, "channel")
    error = text(form, "error")[:200]
    if channel and channel not in CHANNEL_LABELS:
        raise InputError(f"未知渠道「{channel}」", field="channel")
    with web.transaction() as session:
        clerk_person(request, session, "重试发送失败的消息")
        count = retry_dead(session, web.now(), channel=channel or None, error=error or None)
    flash(request, "ok" if count else "error",
          f"已重新排队 {count} 条消息，将在下次发送时重试。" if count else "没有符合条件的失败消息。")
    return redirect("/outbox")

