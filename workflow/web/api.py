"""The JSON API (design.md, HTTP contract): tokens, the ledger and actions, on the same rules
as the pages and the CLI. 401 no or bad token; 403 not permitted; 404 a measure the person may
not see (or that does not exist); 409 not allowed in this state or changed meanwhile; 422 bad
input."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.orm import Session

from workflow.errors import InputError, NotFound, RectiflowError
from workflow.ledger import MeasureFilter, measure_detail, measure_dict, measure_query
from workflow.lifecycle import Action, Kind, State, parse_action
from workflow.models import Measure, Person
from workflow.services.measures import ActionRequest, load_measure, perform
from workflow.web.auth import authenticate, check_csrf, client_address, session_person
from workflow.web.context import Web, web_of

router = APIRouter(prefix="/api", tags=["api"])
bearer = HTTPBearer(auto_error=False, description="POST /api/token 取得的令牌")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Security(bearer)]
#: Ids are database integers: larger numbers are bad input, not a database error.
Id = Annotated[int, Path(ge=1, le=2**31 - 1)]
QueryId = Annotated[int | None, Query(ge=1, le=2**31 - 1)]


class Unauthorized(RectiflowError):
    """Raised when an API request has no token, or one that is bad or expired."""

    http_status = 401

    def __init__(self) -> None:
        super().__init__("缺少有效的访问令牌（Authorization: Bearer …），请先 POST /api/token。")


class ErrorOut(BaseModel):
    detail: str
    field: str | None = None


def _no_nul(value: str | None) -> str | None:
    """PostgreSQL text cannot hold NUL characters: refuse them as bad input (422)."""
    if value is not None and "\x00" in value:
        raise ValueError("不能包含空字符（NUL）")
    return value


class TokenIn(BaseModel):
    email: str = Field(max_length=254)
    password: str = Field(max_length=1024)

    _clean = field_validator("email", "password")(_no_nul)


class TokenOut(BaseModel):
    token: str
    expires_in: int


class DeadlineRuleOut(BaseModel):
    counted_from: date
    workdays: int


class MeasureOut(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: int
    campaign_id: int
    seq: str | None
    area: str
    problem: str
    title: str
    kind: Kind
    state: State
    deadline: date | None
    deadline_provisional: bool
    #: Set when the deadline is counted "N working days after feedback" (and follows the calendar).
    deadline_rule: DeadlineRuleOut | None = None
    original_deadline: date | None
    owner: str | None
    leader: str | None
    unit: str | None
    overdue: bool
    version: int


class HistoryOut(BaseModel):
    seq: int
    action: str
    from_: str | None = Field(alias="from")
    to: str
    actor: str | None
    on_behalf_of: str | None
    comment: str | None
    data: dict[str, Any]
    at: str


class EvidenceOut(BaseModel):
    filename: str
    size: int
    sha256: str
    content_type: str


class ProgressOut(BaseModel):
    text: str
    author: str | None
    at: str
    evidence: list[EvidenceOut]


class ExtensionRequestOut(BaseModel):
    deadline: date
    reason: str
    by: str | None
    at: str


class RecheckOut(BaseModel):
    result: str | None
    at: str
    by: str | None
    comment: str | None


class AcceptorOut(BaseModel):
    acceptor: str
    key: str
    accepted: bool


class AcceptanceOut(BaseModel):
    acceptor: str
    key: str
    by: str | None
    by_name: str | None
    at: str


class MeasureDetailOut(MeasureOut):
    extension_request: ExtensionRequestOut | None = None
    urges: int = 0
    assisting_units: list[str] = []
    rechecks: list[RecheckOut] = []
    acceptors: list[AcceptorOut] | None = None
    acceptances: list[AcceptanceOut] | None = None
    history: list[HistoryOut]
    progress: list[ProgressOut]


class ActionIn(BaseModel):
    comment: str | None = Field(default=None, max_length=10_000,
                                description="说明或理由（提交、退回、重新打开、延期时必填）")
    deadline: date | None = Field(default=None, description="新的完成时限（延期时必填）")
    owner: str | None = Field(default=None, max_length=254, description="新的责任人邮箱（改派时必填）")
    version: int | None = Field(default=None, description="期望的版本号；与当前版本不符时返回 409")
    result: str | None = Field(default=None, max_length=16,
                               description="回头看结论：ok（巩固良好）或 relapse（出现反弹，须写 comment）")

    _clean = field_validator("comment", "owner", "result")(_no_nul)


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "缺少或无效的令牌"},
    403: {"model": ErrorOut, "description": "无权执行"},
    404: {"model": ErrorOut, "description": "措施不存在或无权查看"},
    409: {"model": ErrorOut, "description": "当前状态不允许，或已被他人修改"},
    422: {"description": "输入有误"},
}


def _person(web: Web, session: Session, credentials: HTTPAuthorizationCredentials | None
            ) -> Person:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized()
    person = web.tokens.person(session, credentials.credentials)
    if person is None:
        raise Unauthorized()
    return person


def token_or_session_person(web: Web, session: Session, request: Request,
                            credentials: HTTPAuthorizationCredentials | None) -> Person:
    """Who asks: by bearer token, else by the page session (a write from a page must carry the
    session's CSRF token in ``X-CSRF-Token``); 401 for nobody."""
    if credentials is not None:
        return _person(web, session, credentials)
    person = session_person(request, session)
    if person is None:
        raise Unauthorized()
    if request.method not in ("GET", "HEAD"):
        check_csrf(request, request.headers.get("x-csrf-token"))
    return person


@contextmanager
def named_people_are_input() -> Iterator[None]:
    """An unknown person named in the input (a new owner) is bad input (422), not a missing
    resource (404)."""
    try:
        yield
    except NotFound as exc:
        if exc.kind == "措施":
            raise
        raise InputError(str(exc), field="owner") from exc


def visible_measure(web: Web, session: Session, person: Person, measure_id: int) -> Measure:
    """The measure if ``person`` may see it; otherwise it does not exist for them."""
    measure = load_measure(session, measure_id)
    if not web.scope(session, person).sees(measure):
        raise NotFound("措施", measure_id)
    return measure


@router.post("/token", response_model=TokenOut, responses={401: ERRORS[401],
             429: {"model": ErrorOut, "description": "登录失败次数过多"}})
def issue_token(body: TokenIn, request: Request) -> dict[str, Any]:
    """用邮箱和密码换取访问令牌（Bearer）。"""
    web = web_of(request)
    with web.transaction() as session:
        person = authenticate(web, session, body.email, body.password, client_address(request))
        return {"token": web.tokens.issue(person), "expires_in": web.tokens.max_age}


@router.get("/measures", response_model=list[MeasureOut], responses={401: ERRORS[401]})
def measures(request: Request, campaign: QueryId = None, state: State | None = None,
             kind: Kind | None = None, overdue: bool = False, unit: QueryId = None,
             leader: QueryId = None, owner: QueryId = None,
             credentials: Credentials = None
             ) -> list[dict[str, Any]]:
    """本人可见的措施（与 `rectiflow measure list --json` 同形）。"""
    web = web_of(request)
    today = web.today()
    with web.transaction() as session:
        person = _person(web, session, credentials)
        flt = MeasureFilter(campaign_id=campaign, state=state, kind=kind, overdue=overdue,
                            unit_id=unit, leader_id=leader, owner_id=owner)
        query = measure_query(flt, today)
        condition = web.scope(session, person).condition()
        if condition is not None:
            query = query.where(condition)
        return [measure_dict(m, today) for m in session.scalars(query).unique()]


@router.get("/measures/{measure_id}", response_model=MeasureDetailOut,
            responses={k: ERRORS[k] for k in (401, 404)})
def measure(measure_id: Id, request: Request,
            credentials: Credentials = None
            ) -> dict[str, Any]:
    """一项措施，含历史记录和进展（与 `rectiflow measure show --json` 同形）。"""
    web = web_of(request)
    with web.transaction() as session:
        person = _person(web, session, credentials)
        visible_measure(web, session, person, measure_id)
        return measure_detail(session, measure_id, web.today())


@router.post("/measures/{measure_id}/actions/{action}", response_model=MeasureDetailOut,
             responses=ERRORS)
def act(measure_id: Id, action: str, request: Request, body: ActionIn | None = None,
        credentials: Credentials = None) -> dict[str, Any]:
    """执行一项操作（start、submit、reject、verify、close、reopen、extend、reassign）。"""
    web = web_of(request)
    body = body or ActionIn()
    with web.transaction() as session:
        person = _person(web, session, credentials)
        visible_measure(web, session, person, measure_id)
        with named_people_are_input():
            perform(session, ActionRequest(
                measure_id=measure_id, action=parse_action(action), actor=person,
                comment=body.comment, deadline=body.deadline, owner=body.owner,
                expected_version=body.version, result=body.result), now=web.now(),
                policies=web.policies)
        return measure_detail(session, measure_id, web.today())


class UrgeIn(BaseModel):
    comment: str = Field(min_length=1, max_length=2_000, description="催办内容，随消息发给责任人")

    _clean = field_validator("comment")(_no_nul)


@router.post("/measures/{measure_id}/urge", response_model=MeasureDetailOut,
             responses={**ERRORS, 429: {"model": ErrorOut,
                                         "description": "冷却时间内已催办过；说明何时可再催办"}})
def urge(measure_id: Id, body: UrgeIn, request: Request,
         credentials: Credentials = None) -> dict[str, Any]:
    """催办：整改办、责任领导或第一责任人立即给责任人发消息（第二次起同时告知责任领导）。"""
    web = web_of(request)
    with web.transaction() as session:
        person = _person(web, session, credentials)
        visible_measure(web, session, person, measure_id)
        perform(session, ActionRequest(measure_id=measure_id, action=Action.URGE, actor=person,
                                       comment=body.comment), now=web.now(),
                policies=web.policies)
        return measure_detail(session, measure_id, web.today())
