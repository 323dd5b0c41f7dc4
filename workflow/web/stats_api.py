"""``GET /api/stats?by=unit|leader|area|campaign|inspected_unit``: the figures of the measures the reader may
see, grouped (design.md, "Contracts of the office-tool capabilities"). Bearer token or the page
session; anyone signed in may ask, and gets only their own scope's groups and figures."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.security import HTTPAuthorizationCredentials
from sqlalchemy.orm import Session

from workflow.lifecycle import Kind
from workflow.models import Person
from workflow.services.dashboard import GROUPINGS
from workflow.web.api import ERRORS, Credentials, ErrorOut, token_or_session_person
from workflow.web.context import Web, web_of

router = APIRouter(prefix="/api", tags=["统计"])


def reader(web: Web, session: Session, request: Request,
           credentials: HTTPAuthorizationCredentials | None) -> Person:
    """Who asks (``token_or_session_person``; the statistics are a read)."""
    return token_or_session_person(web, session, request, credentials)


@router.get("/stats", responses={401: ERRORS[401],
                                 422: {"model": ErrorOut, "description": "by 取值不对"}})
def stats(request: Request,
          by: str = Query("unit", description="分组：" + "、".join(
              f"{key}（{word}）" for key, word in GROUPINGS.items())),
          credentials: Credentials = None) -> list[dict[str, Any]]:
    """按部门、责任领导、方面、整改任务或被巡察单位分组的完成与逾期情况，只含本人可见的整改措施。
    按被巡察单位分组时另有催办次数（urges）、回头看发现反弹（relapses）、排名（rank）和各整改任务的
    同样数字（campaigns）。"""
    web = web_of(request)
    with web.transaction() as session:
        person = reader(web, session, request, credentials)
        days = web.runtime.reminder_context(session).days
        return web.figures.rows(session, web.scope(session, person), by, web.today(), days,
                                stagnation=web.policies.effective(Kind.DEADLINE).stagnation)
