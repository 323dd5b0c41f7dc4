"""督办 documents on the web: the list (``/notices``), the Word download (``/notices/{id}``, the
link escalation messages carry), the reply (回执) form; and the same as JSON under ``/api``.

Scope as for measures: a document of a measure someone may not see does not exist for them
(404); one they see but may not read (a colleague of another role) is refused (403).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from workflow.errors import NotFound
from workflow.lifecycle import DOCUMENT_KINDS, DocumentKind
from workflow.models import Campaign, Measure, OfficialNotice, Person
from workflow.services.notices import (
    check_reader,
    issue_by_hand,
    load_notice,
    may_read,
    notice_dict,
    notice_docx,
    notice_filename,
    record_reply,
)
from workflow.web.api import ERRORS, Credentials, Id, QueryId, _no_nul, _person, visible_measure
from workflow.web.auth import check_csrf, page_person
from workflow.web.context import Web, web_of
from workflow.web.pages import _int, flash, page

router = APIRouter()
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


def visible_notice(web: Web, session: Session, person: Person, notice_id: int) -> OfficialNotice:
    """The document if ``person`` may read it: 404 outside their scope, 403 if they see the
    measure but may not read its documents."""
    notice = load_notice(session, notice_id)
    if not web.scope(session, person).sees(notice.measure):
        raise NotFound("督办文书", notice_id)
    check_reader(session, person, notice, web.today())
    return notice


def readable_notices(web: Web, session: Session, person: Person,
                     campaign_id: int | None = None) -> list[OfficialNotice]:
    """The documents ``person`` may read, in issue order."""
    if campaign_id is not None and session.get(Campaign, campaign_id) is None:
        raise NotFound("整改任务", campaign_id)
    query = (select(OfficialNotice).join(Measure, OfficialNotice.measure_id == Measure.id)
             .options(joinedload(OfficialNotice.measure).joinedload(Measure.campaign),
                      joinedload(OfficialNotice.replied_by))
             .order_by(OfficialNotice.id))
    if campaign_id is not None:
        query = query.where(OfficialNotice.campaign_id == campaign_id)
    condition = web.scope(session, person).condition()
    if condition is not None:
        query = query.where(condition)
    today = web.today()
    return [n for n in session.scalars(query).unique() if may_read(session, person, n, today)]


def docx_response(notice: OfficialNotice) -> Response:
    return Response(notice_docx(notice), media_type=DOCX, headers={
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(notice_filename(notice))}",
        "X-Content-Type-Options": "nosniff"})


# ------------------------------------------------------------------ pages


@router.get("/notices", include_in_schema=False)
def notices_page(request: Request) -> Response:
    web = web_of(request)
    campaign_id = _int(request.query_params.get("campaign"))
    with web.transaction() as session:
        person = page_person(request, session)
        shown = readable_notices(web, session, person, campaign_id)
        return web.render(request, "notices.html", page(
            request, person, "notices", notices=shown, DOCUMENT_KINDS=DOCUMENT_KINDS))


@router.get("/notices/{notice_id}", include_in_schema=False)
def notice_download(notice_id: Id, request: Request) -> Response:
    web = web_of(request)
    with web.transaction() as session:
        person = page_person(request, session)
        return docx_response(visible_notice(web, session, person, notice_id))


@router.post("/notices/{notice_id}/reply", include_in_schema=False)
async def notice_reply_form(notice_id: Id, request: Request) -> Response:
    web = web_of(request)
    form = await request.form()
    check_csrf(request, form.get("csrf_token"))
    with web.transaction() as session:
        person = page_person(request, session)
        notice = visible_notice(web, session, person, notice_id)
        record_reply(session, notice_id, actor=person, text=str(form.get("comment") or ""),
                     now=web.now())
        measure_id, number = notice.measure_id, notice.number
    flash(request, "ok", f"已登记督办文书{number}的回执。")
    return RedirectResponse(f"/measures/{measure_id}", status_code=303)


# ------------------------------------------------------------------ API


class ReplyIn(BaseModel):
    comment: str = Field(max_length=5000, description="回执内容")

    _clean = field_validator("comment")(_no_nul)


class NoticeOut(BaseModel):
    id: int
    measure_id: int
    campaign_id: int
    kind: str
    kind_label: str
    number: str
    stage: str
    created_at: str
    unit: str | None
    reply_due: str | None
    reply: dict[str, Any] | None


@router.get("/api/notices", response_model=list[NoticeOut], tags=["api"],
            responses={k: ERRORS[k] for k in (401, 404)})
def api_notices(request: Request, campaign: QueryId = None,
                credentials: Credentials = None) -> list[dict[str, Any]]:
    """本人可读的督办文书（与 `rectiflow notice list --json` 同形）。"""
    web = web_of(request)
    with web.transaction() as session:
        person = _person(web, session, credentials)
        return [notice_dict(n) for n in readable_notices(web, session, person, campaign)]


@router.get("/api/notices/{notice_id}", response_model=NoticeOut, tags=["api"],
            responses={k: ERRORS[k] for k in (401, 403, 404)})
def api_notice(notice_id: Id, request: Request,
               credentials: Credentials = None) -> dict[str, Any]:
    """一份督办文书。"""
    web = web_of(request)
    with web.transaction() as session:
        person = _person(web, session, credentials)
        return notice_dict(visible_notice(web, session, person, notice_id))


@router.get("/api/notices/{notice_id}/document", tags=["api"],
            responses={200: {"content": {DOCX: {}}}, **{k: ERRORS[k] for k in (401, 403, 404)}})
def api_notice_document(notice_id: Id, request: Request,
                        credentials: Credentials = None) -> Response:
    """督办文书的 Word 文件（与 `rectiflow notice get` 相同）。"""
    web = web_of(request)
    with web.transaction() as session:
        person = _person(web, session, credentials)
        return docx_response(visible_notice(web, session, person, notice_id))


@router.post("/api/notices/{notice_id}/reply", response_model=NoticeOut, tags=["api"],
             responses=ERRORS)
def api_notice_reply(notice_id: Id, body: ReplyIn, request: Request,
                     credentials: Credentials = None) -> dict[str, Any]:
    """登记回执（责任人、责任部门成员、整改办、管理员；只能登记一次，重复登记 422）。"""
    web = web_of(request)
    with web.transaction() as session:
        person = _person(web, session, credentials)
        visible_notice(web, session, person, notice_id)
        return notice_dict(record_reply(session, notice_id, actor=person, text=body.comment,
                                        now=web.now()))


class IssueIn(BaseModel):
    kind: DocumentKind = Field(description="notice（督办通知书）、reminder（督办提醒书）、"
                                           "warning（督办告诫书）、accountability（问责建议书）")


@router.post("/api/measures/{measure_id}/notices", response_model=NoticeOut, status_code=201,
             tags=["api"], responses=ERRORS)
def api_issue_notice(measure_id: Id, body: IssueIn, request: Request,
                     credentials: Credentials = None) -> dict[str, Any]:
    """手工签发督办文书（巡察办、本单位整改办、管理员）；同一措施、同一完成时限、同一种类只签发一次，
    再次签发返回已有的文书。看不到的措施 404，无权签发 403，已完成的措施 422。"""
    web = web_of(request)
    with web.transaction() as session:
        person = _person(web, session, credentials)
        visible_measure(web, session, person, measure_id)
        days = web.runtime.reminder_context(session).days
        issued = issue_by_hand(session, measure_id, body.kind, actor=person, now=web.now(),
                               days=days)
        return notice_dict(load_notice(session, issued.id))
