"""The clerk's JSON API (design.md, "Contracts of the office-tool capabilities"): campaigns,
imports with a dry run, people, the report and the digest. Bearer token or the page session
(then a POST carries the session's CSRF token in ``X-CSRF-Token``); only reviewers (整改办) and
admins: anyone else gets 403, a campaign that does not exist 404."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Query, Request, UploadFile
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from workflow.errors import InputError
from workflow.models import Person
from workflow.passwords import hash_password
from workflow.services.campaigns import (
    campaign_figures,
    create_campaign,
    get_campaign,
    seen_campaigns,
)
from workflow.services.imports import file_kind, refusal_errors
from workflow.services.people import (
    add_person,
    check_may_manage,
    check_unit_allowed,
    parse_roles,
)
from workflow.services.visibility import foreign_units
from workflow.web.api import ERRORS, Credentials, ErrorOut, Id, _no_nul, token_or_session_person
from workflow.web.context import Web, web_of
from workflow.web.office import (
    campaign_digest,
    report_file,
    require_clerk,
    run_import,
    uploads,
)

router = APIRouter(prefix="/api", tags=["整改办"])
CLERK_ERRORS: dict[int | str, dict[str, Any]] = {
    401: ERRORS[401], 403: {"model": ErrorOut, "description": "只有整改办或管理员可以"},
    422: {"description": "输入有误（errors 逐项列出行、列、值和原因）"}}


def clerk(web: Web, session: Session, request: Request, credentials: Any, what: str) -> Person:
    """The reviewer or admin asking (``token_or_session_person``)."""
    person = token_or_session_person(web, session, request, credentials)
    return require_clerk(person, what)


class CampaignIn(BaseModel):
    title: str = Field(max_length=300, description="整改任务名称")
    first_responsible: str | None = Field(default=None, max_length=254,
                                          description="第一责任人（邮箱或姓名）")
    feedback_date: date | None = Field(default=None, description="反馈日期")
    acceptors: list[str] = Field(default_factory=list, max_length=50,
                                 description="验收人（三方验收）：人员（邮箱或姓名）或角色"
                                             "（reviewer/整改办、leader/责任领导、first_responsible/第一责任人）")
    inspected_unit: str | None = Field(default=None, max_length=200,
                                       description="被巡察单位（单位名称）；不填则属于整个系统")

    _clean = field_validator("title", "first_responsible", "inspected_unit")(_no_nul)


class CreatedOut(BaseModel):
    id: int


class PersonIn(BaseModel):
    name: str = Field(max_length=100)
    email: str = Field(max_length=254)
    roles: list[str] = Field(min_length=1, max_length=5,
                             description="owner、reviewer、leader、admin、viewer 或中文角色名")
    unit: str | None = Field(default=None, max_length=200)
    wecom_id: str | None = Field(default=None, max_length=64)
    mobile: str | None = Field(default=None, max_length=32)
    password: str | None = Field(default=None, max_length=1024, description="登录密码（至少 8 位）")

    _clean = field_validator("name", "email", "unit", "wecom_id", "mobile", "password")(_no_nul)


def person_json(person: Person) -> dict[str, Any]:
    return {"id": person.id, "name": person.name, "email": person.email,
            "wecom_id": person.wecom_id, "mobile": person.mobile, "roles": person.roles,
            "unit": person.unit.name if person.unit else None,
            "delegate": person.delegate.email if person.delegate else None,
            "delegate_until": person.delegate_until.isoformat() if person.delegate_until else None,
            "active": person.active}


@router.get("/campaigns", responses=CLERK_ERRORS)
def campaigns(request: Request, credentials: Credentials = None) -> list[dict[str, Any]]:
    """整改任务及其进度（与 `rectiflow campaign list --json` 同形，另有 closed、open、overdue）。"""
    web = web_of(request)
    with web.transaction() as session:
        person = clerk(web, session, request, credentials, "查看整改任务")
        seen = seen_campaigns(web.scope(session, person))
        return [{**f.campaign, "closed": f.closed, "open": f.open, "overdue": f.overdue,
                 "completion_rate": round(f.completion_rate, 4)}
                for f in campaign_figures(session, web.today(), seen)]


@router.post("/campaigns", status_code=201, response_model=CreatedOut,
             responses={**CLERK_ERRORS, 409: {"model": ErrorOut, "description": "名称已存在"}})
def new_campaign(body: CampaignIn, request: Request,
                 credentials: Credentials = None) -> dict[str, int]:
    """新建整改任务。"""
    web = web_of(request)
    with web.transaction() as session:
        creator = clerk(web, session, request, credentials, "新建整改任务")
        campaign = create_campaign(session, title=body.title, now=web.now(),
                                   first_responsible=body.first_responsible,
                                   feedback_date=body.feedback_date, acceptors=body.acceptors,
                                   inspected_unit=body.inspected_unit, creator=creator)
        return {"id": campaign.id}


@router.post("/campaigns/{campaign_id}/imports", responses={
    **CLERK_ERRORS, 404: {"model": ErrorOut, "description": "整改任务不存在"}})
def import_into(campaign_id: Id, request: Request, file: Annotated[UploadFile, File()],
                dry_run: Annotated[bool, Query(description="true：只检查，不写入")] = True,
                credentials: Credentials = None) -> Response:
    """导入台账（.xlsx/.csv）或整改报告（.docx/.txt）；与 `rectiflow import --json` 同形。
    有错误时 422，errors 逐项给出 row、field、value、message，不写入任何数据。"""
    web = web_of(request)
    with web.transaction() as session:
        person = clerk(web, session, request, credentials, "导入台账")
        scope = web.scope(session, person)
        campaign = get_campaign(session, campaign_id, scope)
        person_id = person.id
    store = uploads(web)
    try:
        file_kind(file.filename or "")
        upload = store.save(file.filename or "", file.file, purpose="api-import",
                            person_id=person_id, campaign_id=campaign_id)
    except InputError as exc:
        return _refused(exc)
    try:
        with web.transaction() as session:
            campaign = get_campaign(session, campaign_id, scope)
            try:
                outcome = run_import(web, session, campaign, upload.path, dry_run=dry_run)
            except InputError as exc:
                session.rollback()
                if exc.http_status != 422:
                    raise
                return _refused(exc)
            if dry_run:
                session.rollback()
            return JSONResponse(outcome.document)
    finally:
        store.discard(upload)


def _refused(exc: InputError) -> JSONResponse:
    return JSONResponse({"detail": str(exc), "field": exc.field, "errors": refusal_errors(exc)},
                        status_code=422)


@router.get("/campaigns/{campaign_id}/report", responses={
    **CLERK_ERRORS, 404: {"model": ErrorOut, "description": "整改任务不存在"}})
def report(campaign_id: Id, request: Request,
           format: Literal["docx", "md", "xlsx"] = "docx",  # noqa: A002 - the contract's name
           credentials: Credentials = None) -> Response:
    """整改情况报告（docx、md）或整改台账（xlsx），与 `rectiflow report` 相同。"""
    web = web_of(request)
    with web.transaction() as session:
        person = clerk(web, session, request, credentials, "导出整改情况报告")
        get_campaign(session, campaign_id, web.scope(session, person))
        return report_file(web, session, campaign_id, format).response()


@router.get("/campaigns/{campaign_id}/digest", responses={
    **CLERK_ERRORS, 404: {"model": ErrorOut, "description": "整改任务不存在"}})
def digest(campaign_id: Id, request: Request, credentials: Credentials = None) -> dict[str, Any]:
    """整改进展周报的统计（与 `rectiflow digest --campaign ID --json` 同形）。"""
    web = web_of(request)
    with web.transaction() as session:
        person = clerk(web, session, request, credentials, "查看周报")
        get_campaign(session, campaign_id, web.scope(session, person))
        return campaign_digest(web, session, campaign_id, limit=None).as_json()


@router.get("/people", responses=CLERK_ERRORS)
def people(request: Request, credentials: Credentials = None) -> list[dict[str, Any]]:
    """全部人员（与 `rectiflow user list --json` 同形）。"""
    web = web_of(request)
    with web.transaction() as session:
        person = clerk(web, session, request, credentials, "查看人员")
        hidden = foreign_units(session, person, web.today())
        everyone = session.scalars(select(Person).options(
            joinedload(Person.unit), joinedload(Person.delegate)).order_by(Person.id)).all()
        return [person_json(p) for p in everyone if p.unit_id not in hidden]


@router.post("/people", status_code=201, responses={
    **CLERK_ERRORS, 409: {"model": ErrorOut, "description": "邮箱已被使用"}})
def new_person(body: PersonIn, request: Request, credentials: Credentials = None
               ) -> dict[str, Any]:
    """添加一名人员；邮箱重复时 409。只有管理员可以添加管理员。"""
    web = web_of(request)
    with web.transaction() as session:
        actor = clerk(web, session, request, credentials, "添加人员")
        roles = parse_roles(body.roles)
        check_may_manage(actor, None, roles)
        check_unit_allowed(session, body.unit, foreign_units(session, actor, web.today()))
        password_hash = hash_password(body.password) if body.password else None
        person = add_person(session, name=body.name, email=body.email, roles=roles,
                            wecom_id=body.wecom_id, mobile=body.mobile, unit=body.unit,
                            password_hash=password_hash)
        return person_json(person)
