"""``/approve/{token}``: the one-time link in a message. GET shows what will happen and changes
nothing (mail scanners open links); POST acts as the person the link was made for."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from workflow.models import ProgressReport
from workflow.services.approvals import inspect, redeem
from workflow.web.auth import check_csrf, csrf_token
from workflow.web.context import web_of

router = APIRouter(include_in_schema=False)


@router.get("/approve/{token}")
def confirm(token: str, request: Request) -> Response:
    web = web_of(request)
    with web.transaction() as session:
        view = inspect(session, token, web.now())
        reports = session.scalars(
            select(ProgressReport).options(selectinload(ProgressReport.evidence))
            .where(ProgressReport.measure_id == view.measure.id)
            .order_by(ProgressReport.id.desc()).limit(3)).all()
        context = {"view": view, "measure": view.measure, "reports": reports,
                   "area": view.measure.problem.area.title, "csrf": csrf_token(request),
                   "token": token, "person": None}
        return web.render(request, "approve.html", context)


@router.post("/approve/{token}")
async def approve(token: str, request: Request) -> Response:
    web = web_of(request)
    form = await request.form()
    check_csrf(request, form.get("csrf_token"))
    with web.transaction() as session:
        outcome = redeem(session, token, web.now())
        context = {"measure": outcome.measure, "label": outcome.entry.action,
                   "state": outcome.measure.state, "person": None}
    return web.render(request, "approve_done.html", context)
